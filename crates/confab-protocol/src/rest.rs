//! The JSON bodies of the Twilio Chat v2 REST API, with snake_case fields, `attributes` as JSON
//! strings, absolute `url`s and `links` on the node's public base URL.

use confab_domain::{
    AccountSid, Channel, ChannelWebhook, Credential, Invite, Media, Member, Message,
    NotificationSetting, Role, Service, User,
};
use serde_json::{json, Value};

use crate::time::format_twilio as date;

/// Where resources live: the node's public base URL and the account that owns everything.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Public base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    /// The account SID shown as `account_sid`.
    pub account: AccountSid,
}

impl Urls {
    /// `{base}/v2/Services/{sid}`.
    pub fn service(&self, sid: impl std::fmt::Display) -> String {
        format!("{}/v2/Services/{sid}", self.base)
    }

    /// `{base}/v2/Services/{service}/Channels/{channel}`.
    pub fn channel(
        &self,
        service: impl std::fmt::Display,
        channel: impl std::fmt::Display,
    ) -> String {
        format!("{}/Channels/{channel}", self.service(service))
    }

    /// `{base}/v2/Services/{service}/Users/{user}`.
    pub fn user(&self, service: impl std::fmt::Display, user: impl std::fmt::Display) -> String {
        format!("{}/Users/{user}", self.service(service))
    }
}

/// A Twilio error body.
pub fn error(code: u32, message: &str, status: u16) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

fn notification(n: &NotificationSetting, with_badge: bool) -> Value {
    let mut v = json!({"enabled": n.enabled, "template": n.template, "sound": n.sound});
    if with_badge {
        v["badge_count_enabled"] = json!(n.badge_count_enabled.unwrap_or(false));
    }
    v
}

/// A service.
pub fn service(s: &Service, urls: &Urls) -> Value {
    let url = urls.service(s.sid);
    json!({
        "sid": s.sid,
        "account_sid": urls.account,
        "friendly_name": s.friendly_name,
        "date_created": date(s.date_created),
        "date_updated": date(s.date_updated),
        "default_service_role_sid": s.default_service_role_sid,
        "default_channel_role_sid": s.default_channel_role_sid,
        "default_channel_creator_role_sid": s.default_channel_creator_role_sid,
        "read_status_enabled": s.read_status_enabled,
        "reachability_enabled": s.reachability_enabled,
        "typing_indicator_timeout": s.typing_indicator_timeout,
        "consumption_report_interval": s.consumption_report_interval,
        "limits": {
            "channel_members": s.limits.channel_members,
            "user_channels": s.limits.user_channels,
        },
        "pre_webhook_url": s.webhooks.pre_webhook_url,
        "post_webhook_url": s.webhooks.post_webhook_url,
        "webhook_method": s.webhooks.method,
        "webhook_filters": s.webhooks.filters,
        "pre_webhook_retry_count": s.webhooks.pre_webhook_retry_count,
        "post_webhook_retry_count": s.webhooks.post_webhook_retry_count,
        "notifications": {
            "log_enabled": s.notifications.log_enabled,
            "new_message": notification(&s.notifications.new_message, true),
            "added_to_channel": notification(&s.notifications.added_to_channel, false),
            "removed_from_channel": notification(&s.notifications.removed_from_channel, false),
            "invited_to_channel": notification(&s.notifications.invited_to_channel, false),
        },
        "media": {
            "size_limit_mb": s.media_size_limit_mb,
            "compatibility_message": s.media_compatibility_message,
        },
        "url": url,
        "links": {
            "channels": format!("{url}/Channels"),
            "users": format!("{url}/Users"),
            "roles": format!("{url}/Roles"),
            "bindings": format!("{url}/Bindings"),
        },
    })
}

/// A role.
pub fn role(r: &Role, urls: &Urls) -> Value {
    json!({
        "sid": r.sid,
        "account_sid": urls.account,
        "service_sid": r.service_sid,
        "friendly_name": r.friendly_name,
        "type": r.kind,
        "permissions": r.permissions,
        "date_created": date(r.date_created),
        "date_updated": date(r.date_updated),
        "url": format!("{}/Roles/{}", urls.service(r.service_sid), r.sid),
    })
}

/// A user, with how many channels it belongs to and, where the service tracks reachability,
/// whether it is online (`is_notifiable` is then `false`: push notifications are not sent).
pub fn user(u: &User, joined_channels_count: u64, online: Option<bool>, urls: &Urls) -> Value {
    let url = urls.user(u.service_sid, u.sid);
    json!({
        "sid": u.sid,
        "account_sid": urls.account,
        "service_sid": u.service_sid,
        "attributes": u.attributes.as_str(),
        "friendly_name": u.friendly_name,
        "role_sid": u.role_sid,
        "identity": u.identity,
        "is_online": online,
        "is_notifiable": online.map(|_| false),
        "date_created": date(u.date_created),
        "date_updated": date(u.date_updated),
        "joined_channels_count": joined_channels_count,
        "links": {
            "user_channels": format!("{url}/Channels"),
            "user_bindings": format!("{url}/Bindings"),
        },
        "url": url,
    })
}

/// A channel.
pub fn channel(c: &Channel, urls: &Urls) -> Value {
    let url = urls.channel(c.service_sid, c.sid);
    let mut links = json!({
        "webhooks": format!("{url}/Webhooks"),
        "messages": format!("{url}/Messages"),
        "invites": format!("{url}/Invites"),
        "members": format!("{url}/Members"),
    });
    if let Some(last) = c.last_message {
        links["last_message"] = json!(format!("{url}/Messages/{}", last.index));
    }
    json!({
        "sid": c.sid,
        "account_sid": urls.account,
        "service_sid": c.service_sid,
        "friendly_name": c.friendly_name,
        "unique_name": c.unique_name,
        "attributes": c.attributes.as_str(),
        "type": c.kind,
        "date_created": date(c.date_created),
        "date_updated": date(c.date_updated),
        "created_by": c.created_by,
        "members_count": c.members_count,
        "messages_count": c.messages_count,
        "url": url,
        "links": links,
    })
}

/// A member.
pub fn member(m: &Member, urls: &Urls) -> Value {
    json!({
        "sid": m.sid,
        "account_sid": urls.account,
        "channel_sid": m.channel_sid,
        "service_sid": m.service_sid,
        "identity": m.identity,
        "date_created": date(m.date_created),
        "date_updated": date(m.date_updated),
        "role_sid": m.role_sid,
        "last_consumed_message_index": m.last_consumed_message_index,
        "last_consumption_timestamp": m.last_consumption_timestamp.map(date),
        "url": format!("{}/Members/{}", urls.channel(m.service_sid, m.channel_sid), m.sid),
        "attributes": m.attributes.as_str(),
    })
}

/// A message.
pub fn message(m: &Message, urls: &Urls) -> Value {
    json!({
        "sid": m.sid,
        "account_sid": urls.account,
        "attributes": m.attributes.as_str(),
        "service_sid": m.service_sid,
        "to": m.channel_sid,
        "channel_sid": m.channel_sid,
        "date_created": date(m.date_created),
        "date_updated": date(m.date_updated),
        "last_updated_by": m.last_updated_by,
        "was_edited": m.was_edited,
        "from": m.author,
        "body": m.body,
        "index": m.index,
        "type": m.kind(),
        "media": m.media.as_ref().map(|media| json!({
            "sid": media.sid,
            "size": media.size,
            "content_type": media.content_type,
            "filename": media.filename,
        })),
        "url": format!("{}/Messages/{}", urls.channel(m.service_sid, m.channel_sid), m.sid),
    })
}

/// A media resource (Twilio's Media Content Service shape). `temporary_query` makes the content
/// path a signed URL (`Expires=…&Signature=…`).
pub fn media(m: &Media, urls: &Urls, temporary_query: &str) -> Value {
    let url = format!(
        "{}/v1/Services/{}/Media/{}",
        urls.base, m.service_sid, m.sid
    );
    json!({
        "sid": m.sid,
        "account_sid": urls.account,
        "service_sid": m.service_sid,
        "channel_sid": m.channel_sid,
        "message_sid": m.message_sid,
        "date_created": date(m.date_created),
        "date_upload_updated": date(m.date_created),
        "date_updated": date(m.date_updated),
        "size": m.size,
        "content_type": m.content_type,
        "filename": m.filename,
        "author": m.author.as_deref().unwrap_or(confab_domain::channel::ACCOUNT_NAME),
        "category": "media",
        "is_multipart_upstream": false,
        "url": url,
        "links": {
            "content": format!("{url}/Content"),
            "content_direct_temporary": format!("{url}/Content?{temporary_query}"),
        },
    })
}

/// An invite.
pub fn invite(i: &Invite, urls: &Urls) -> Value {
    json!({
        "sid": i.sid,
        "account_sid": urls.account,
        "channel_sid": i.channel_sid,
        "service_sid": i.service_sid,
        "identity": i.identity,
        "date_created": date(i.date_created),
        "date_updated": date(i.date_updated),
        "role_sid": i.role_sid,
        "created_by": i.created_by,
        "url": format!("{}/Invites/{}", urls.channel(i.service_sid, i.channel_sid), i.sid),
    })
}

/// A user's view of one channel it belongs to.
pub fn user_channel(user: &User, m: &Member, unread: Option<u64>, urls: &Urls) -> Value {
    let channel_url = urls.channel(m.service_sid, m.channel_sid);
    json!({
        "account_sid": urls.account,
        "service_sid": m.service_sid,
        "channel_sid": m.channel_sid,
        "user_sid": user.sid,
        "member_sid": m.sid,
        "status": "joined",
        "last_consumed_message_index": m.last_consumed_message_index,
        "unread_messages_count": unread,
        "notification_level": m.notification_level.as_deref().unwrap_or("default"),
        "url": format!("{}/Channels/{}", urls.user(user.service_sid, user.sid), m.channel_sid),
        "links": {
            "channel": channel_url,
            "member": format!("{channel_url}/Members/{}", m.sid),
        },
    })
}

/// A user's view of a channel it is invited to (Twilio's UserChannel with `status` `invited`:
/// no membership, no read horizon).
pub fn user_channel_invited(user: &User, i: &Invite, urls: &Urls) -> Value {
    json!({
        "account_sid": urls.account,
        "service_sid": i.service_sid,
        "channel_sid": i.channel_sid,
        "user_sid": user.sid,
        "member_sid": null,
        "status": "invited",
        "last_consumed_message_index": null,
        "unread_messages_count": null,
        "notification_level": "default",
        "url": format!("{}/Channels/{}", urls.user(user.service_sid, user.sid), i.channel_sid),
        "links": {
            "channel": urls.channel(i.service_sid, i.channel_sid),
            "member": null,
        },
    })
}

/// A push credential (secrets are never returned).
pub fn credential(c: &Credential, urls: &Urls) -> Value {
    json!({
        "sid": c.sid,
        "account_sid": urls.account,
        "friendly_name": c.friendly_name,
        "type": c.kind,
        "sandbox": c.sandbox,
        "date_created": date(c.date_created),
        "date_updated": date(c.date_updated),
        "url": format!("{}/v2/Credentials/{}", urls.base, c.sid),
    })
}

/// A channel webhook.
pub fn webhook(w: &ChannelWebhook, urls: &Urls) -> Value {
    json!({
        "sid": w.sid,
        "account_sid": urls.account,
        "service_sid": w.service_sid,
        "channel_sid": w.channel_sid,
        "type": w.kind,
        "url": format!("{}/Webhooks/{}", urls.channel(w.service_sid, w.channel_sid), w.sid),
        "configuration": {
            "url": w.url,
            "method": w.method,
            "filters": w.filters,
            "triggers": w.triggers,
            "flow_sid": w.flow_sid,
            "retry_count": w.retry_count,
        },
        "date_created": date(w.date_created),
        "date_updated": date(w.date_updated),
    })
}

/// Paging `meta` of a list response.
#[derive(Debug, Clone)]
pub struct PageMeta {
    /// The list's absolute URL without query, e.g. `{base}/v2/Services`.
    pub list_url: String,
    /// Filters to keep in every page URL (e.g. `Type=public`), already encoded.
    pub filters: Vec<(String, String)>,
    /// The page number shown.
    pub page: u64,
    /// The page size.
    pub page_size: usize,
    /// The current page's token, if it was reached by one.
    pub page_token: Option<String>,
    /// The next page's token, if there is a next page.
    pub next_token: Option<String>,
    /// The key under which the items are listed (`channels`, `members`, ...).
    pub key: &'static str,
}

impl PageMeta {
    fn url(&self, page: u64, token: Option<&str>) -> String {
        let mut query = form_query(&self.filters);
        query.push_str(&format!("PageSize={}&Page={page}", self.page_size));
        if let Some(token) = token {
            query.push_str(&format!("&PageToken={token}"));
        }
        format!("{}?{query}", self.list_url)
    }
}

fn form_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}&", encode(k), encode(v)))
        .collect()
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A list page: `{key: items, meta: {...}}`.
pub fn page(items: Vec<Value>, meta: &PageMeta) -> Value {
    json!({
        meta.key: items,
        "meta": {
            "page": meta.page,
            "page_size": meta.page_size,
            "first_page_url": meta.url(0, None),
            // The page before, by number: the server reads `Page` without a token as an offset.
            "previous_page_url": meta.page.checked_sub(1).map(|previous| meta.url(previous, None)),
            "url": meta.url(meta.page, meta.page_token.as_deref()),
            "next_page_url": meta.next_token.as_deref().map(|t| meta.url(meta.page + 1, Some(t))),
            "key": meta.key,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_meta_has_absolute_urls_and_key() {
        let meta = PageMeta {
            list_url: "http://h/v2/Services/IS1/Channels".into(),
            filters: vec![("Type".into(), "public".into())],
            page: 0,
            page_size: 2,
            page_token: None,
            next_token: Some("PT9".into()),
            key: "channels",
        };
        let body = page(vec![json!(1), json!(2)], &meta);
        assert_eq!(body["meta"]["key"], "channels");
        assert_eq!(
            body["meta"]["next_page_url"],
            "http://h/v2/Services/IS1/Channels?Type=public&PageSize=2&Page=1&PageToken=PT9"
        );
        assert_eq!(body["channels"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["meta"]["previous_page_url"], Value::Null);
        let second = PageMeta {
            page: 1,
            page_token: Some("PT9".into()),
            ..meta
        };
        assert_eq!(
            page(vec![], &second)["meta"]["previous_page_url"],
            "http://h/v2/Services/IS1/Channels?Type=public&PageSize=2&Page=0"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
