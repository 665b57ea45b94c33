//! Channels on Redis: the channel commit (one run of the commit script) and the reads of
//! channels, members, memberships, messages, invites and events.

use async_trait::async_trait;
use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, Invite, InviteSid, Member,
    Message, MessageSid, ServiceSid,
};
use redis::AsyncCommands;
use serde::de::DeserializeOwned;

use super::{decode, encode, RedisStore};
use crate::error::{Conflict, StoreError};
use crate::traits::*;

impl RedisStore {
    /// Records named by "CH:ID" entries of a per-user index, from each channel's hash `field`.
    async fn cross_channel<T: DeserializeOwned>(
        &self,
        entries: Vec<String>,
        field: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some((ch, id)) = entry.split_once(':') else {
                continue;
            };
            let Ok(ch) = ch.parse::<ChannelSid>() else {
                continue;
            };
            if let Some(record) = self.hget_json(&self.channel_key(ch, field), id).await? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A page of a channel's members or invites (`kind` is `member` or `invite`), all or only
    /// those of `identities`, in creation order.
    async fn channel_records<T: DeserializeOwned>(
        &self,
        channel: ChannelSid,
        kind: &str,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let order = self.channel_key(channel, &format!("{kind}-order"));
        let records = self.channel_key(channel, &format!("{kind}s"));
        if identities.is_empty() {
            return self.page_hash(&order, &records, page).await;
        }
        let ids = self.channel_key(channel, &format!("{kind}-ids"));
        self.by_identities(&ids, &order, &records, identities, page)
            .await
    }

    /// A page of a user's memberships or invites across the service (`index` is `memberships`
    /// or `user-invites`, `field` the per-channel hash holding the records).
    async fn user_records<T: DeserializeOwned>(
        &self,
        service: ServiceSid,
        identity: &str,
        index: &str,
        field: &str,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let (entries, next) = self
            .page_ids(&self.key(&format!("{index}:{service}:{identity}")), page)
            .await?;
        Ok(Page {
            items: self.cross_channel(entries, field).await?,
            next,
        })
    }

    pub(super) async fn delete_channel_keys(
        &self,
        ch: ChannelSid,
        service: ServiceSid,
    ) -> Result<(), StoreError> {
        let _: String = self
            .commit
            .arg(&self.options.prefix)
            .arg(ch.to_string())
            .arg(service.to_string())
            .arg("")
            .arg("DELETE_CHANNEL")
            .arg("")
            .arg("")
            .arg("")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

// === impl ChannelStore ===

#[async_trait]
impl ChannelStore for RedisStore {
    async fn commit(&self, commit: &ChannelCommit) -> Result<(), StoreError> {
        let channel = &commit.channel;
        let mut invocation = self.commit.prepare_invoke();
        invocation
            .arg(&self.options.prefix)
            .arg(channel.sid.to_string())
            .arg(channel.service_sid.to_string())
            .arg(commit.fence.map(|f| f.to_string()).unwrap_or_default());
        let mut op = |name: &str, a: String, b: String, c: String| {
            invocation.arg(name).arg(a).arg(b).arg(c);
        };
        let removed = commit
            .events
            .iter()
            .any(|e| matches!(e.kind, ChannelEventKind::ChannelRemoved { .. }));
        if removed {
            op(
                "DELETE_CHANNEL",
                String::new(),
                String::new(),
                String::new(),
            );
        } else {
            // Most commits (messages, members) change neither the channel's kind nor its unique
            // name: their row is only replaced, three or four Redis calls fewer per message.
            op(
                if commit.may_rename() {
                    "CHANNEL"
                } else {
                    "CHANNEL_ROW"
                },
                channel.kind.as_str().to_owned(),
                channel.unique_name.clone().unwrap_or_default(),
                encode(channel)?,
            );
            for event in &commit.events {
                match &event.kind {
                    ChannelEventKind::MemberJoined { member }
                    | ChannelEventKind::MemberUpdated { member, .. } => op(
                        "PUT_MEMBER",
                        member.sid.to_string(),
                        member.identity.clone(),
                        encode(member)?,
                    ),
                    ChannelEventKind::MemberLeft { member } => op(
                        "DEL_MEMBER",
                        member.sid.to_string(),
                        member.identity.clone(),
                        String::new(),
                    ),
                    ChannelEventKind::MessageAdded { message }
                    | ChannelEventKind::MessageUpdated { message, .. } => op(
                        "PUT_MESSAGE",
                        message.index.to_string(),
                        message.sid.to_string(),
                        encode(message)?,
                    ),
                    ChannelEventKind::MessageRemoved { message } => op(
                        "DEL_MESSAGE",
                        message.index.to_string(),
                        message.sid.to_string(),
                        String::new(),
                    ),
                    ChannelEventKind::InviteCreated { invite } => op(
                        "PUT_INVITE",
                        invite.sid.to_string(),
                        invite.identity.clone(),
                        encode(invite)?,
                    ),
                    ChannelEventKind::InviteRemoved { invite, .. } => op(
                        "DEL_INVITE",
                        invite.sid.to_string(),
                        invite.identity.clone(),
                        String::new(),
                    ),
                    ChannelEventKind::ChannelCreated { .. }
                    | ChannelEventKind::ChannelUpdated { .. }
                    | ChannelEventKind::ChannelRemoved { .. } => {}
                }
                op(
                    "EVENT",
                    event.seq.to_string(),
                    self.options.event_retention.to_string(),
                    encode(event)?,
                );
            }
        }
        for job in &commit.jobs {
            op(
                "JOB",
                job.sid.to_string(),
                format!("{}:{}", commit.jobs_due.millis(), job.created.millis()),
                encode(job)?,
            );
        }
        let started = std::time::Instant::now();
        let outcome: String = invocation.invoke_async(&mut self.conn()).await?;
        if let Some(m) = &self.metrics {
            m.write_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_size.observe(1.0);
        }
        match outcome.as_str() {
            "OK" => Ok(()),
            "CONFLICT" => Err(StoreError::Conflict(Conflict::ChannelUniqueName)),
            "FENCED" => Err(StoreError::Fenced),
            other => Err(StoreError::Backend(format!(
                "commit script answered {other}"
            ))),
        }
    }

    async fn load_channel(&self, sid: ChannelSid) -> Result<Option<ChannelSnapshot>, StoreError> {
        let Some(channel) = self
            .get_json::<Channel>(&self.channel_key(sid, "ch"))
            .await?
        else {
            return Ok(None);
        };
        let member_ids: Vec<String> = self
            .conn()
            .zrange(self.channel_key(sid, "member-order"), 0, -1)
            .await?;
        let members = self
            .hmget_json(&self.channel_key(sid, "members"), &member_ids)
            .await?;
        let invite_ids: Vec<String> = self
            .conn()
            .zrange(self.channel_key(sid, "invite-order"), 0, -1)
            .await?;
        let invites = self
            .hmget_json(&self.channel_key(sid, "invites"), &invite_ids)
            .await?;
        Ok(Some(ChannelSnapshot {
            channel,
            members,
            invites,
        }))
    }

    async fn get_channel(
        &self,
        service: ServiceSid,
        sid: ChannelSid,
    ) -> Result<Option<Channel>, StoreError> {
        Ok(self
            .get_json::<Channel>(&self.channel_key(sid, "ch"))
            .await?
            .filter(|c| c.service_sid == service))
    }

    async fn get_channel_by_unique_name(
        &self,
        service: ServiceSid,
        unique_name: &str,
    ) -> Result<Option<Channel>, StoreError> {
        let sid: Option<String> = self
            .conn()
            .hget(self.key(&format!("uniq:{service}")), unique_name)
            .await?;
        match sid.and_then(|s| s.parse::<ChannelSid>().ok()) {
            Some(sid) => self.get_channel(service, sid).await,
            None => Ok(None),
        }
    }

    async fn list_channels(
        &self,
        service: ServiceSid,
        types: &[ChannelType],
        page: &PageRequest,
    ) -> Result<Page<Channel>, StoreError> {
        let wants_public = types.contains(&ChannelType::Public);
        let wants_private = types.contains(&ChannelType::Private);
        let order = match (wants_public, wants_private) {
            (true, false) => self.key(&format!("channels:{service}:public")),
            (false, true) => self.key(&format!("channels:{service}:private")),
            _ => self.key(&format!("channels:{service}")),
        };
        let (ids, next) = self.page_ids(&order, page).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(sid) = id.parse::<ChannelSid>() {
                if let Some(channel) = self
                    .get_json::<Channel>(&self.channel_key(sid, "ch"))
                    .await?
                {
                    items.push(channel);
                }
            }
        }
        Ok(Page { items, next })
    }

    async fn get_member(
        &self,
        channel: ChannelSid,
        key: &MemberKey,
    ) -> Result<Option<Member>, StoreError> {
        let sid = match key {
            MemberKey::Sid(sid) => sid.to_string(),
            MemberKey::Identity(identity) => {
                let sid: Option<String> = self
                    .conn()
                    .hget(self.channel_key(channel, "member-ids"), identity)
                    .await?;
                match sid {
                    Some(sid) => sid,
                    None => return Ok(None),
                }
            }
        };
        self.hget_json(&self.channel_key(channel, "members"), &sid)
            .await
    }

    async fn list_members(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        self.channel_records(channel, "member", identities, page)
            .await
    }

    async fn list_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        self.user_records(service, identity, "memberships", "members", page)
            .await
    }

    async fn count_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .zcard(self.key(&format!("memberships:{service}:{identity}")))
            .await?)
    }

    async fn get_message(
        &self,
        channel: ChannelSid,
        sid: MessageSid,
    ) -> Result<Option<Message>, StoreError> {
        let index: Option<String> = self
            .conn()
            .hget(self.channel_key(channel, "msg-sids"), sid.to_string())
            .await?;
        match index {
            Some(index) => {
                self.hget_json(&self.channel_key(channel, "msgs"), &index)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn list_messages(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        self.page_hash(
            &self.channel_key(channel, "msg-order"),
            &self.channel_key(channel, "msgs"),
            page,
        )
        .await
    }

    async fn count_messages_after(
        &self,
        channel: ChannelSid,
        after: Option<u64>,
    ) -> Result<u64, StoreError> {
        let min = after.map_or("-inf".to_owned(), |a| format!("({a}"));
        Ok(self
            .conn()
            .zcount(self.channel_key(channel, "msg-order"), min, "+inf")
            .await?)
    }

    async fn get_invite(
        &self,
        channel: ChannelSid,
        sid: InviteSid,
    ) -> Result<Option<Invite>, StoreError> {
        self.hget_json(&self.channel_key(channel, "invites"), &sid.to_string())
            .await
    }

    async fn list_invites(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        self.channel_records(channel, "invite", identities, page)
            .await
    }

    async fn list_user_invites(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        self.user_records(service, identity, "user-invites", "invites", page)
            .await
    }

    async fn events_after(
        &self,
        channel: ChannelSid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChannelEvent>, StoreError> {
        let rows: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.channel_key(channel, "events"))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        rows.iter().map(|r| decode(r)).collect()
    }
}
