//! The Sync API that twilio-chat calls through twilsock ("cds"): reads of the objects of the
//! view (`GET /v3/{Maps,Lists,Documents}/{id}` and their `Items`) and subscriptions
//! (`POST /v4/Subscriptions`, answered in [`super::replay`]; docs/twilio-client-protocol.md,
//! §4). Every read is a realtime read operation of the
//! session's user, so it sees what the realtime API would let the user see.

use confab_app::AppError;
use confab_protocol::realtime::Request;
use serde_json::{json, Value};

use super::sync::{
    channel_data, descriptor, list_item, map_descriptor, map_item, member_data, message_data,
    user_channel_data, user_info_items, SyncKind, SyncObject,
};
use super::{HttpAnswer, Tunnelled, TwilsockSession};

/// Sync's error for an object that is not there (or not the caller's to see).
fn not_found() -> HttpAnswer {
    HttpAnswer {
        status: 404,
        body: json!({"message": "The requested resource was not found", "code": 54100, "status": 404}),
    }
}

/// A page of keyed items in key order, as the client asks for one (`Key`, `From` inclusive,
/// `Order`, `PageSize`), with its `meta`.
fn page_by_key(
    mut items: Vec<(String, Value)>,
    request: &Tunnelled,
) -> (Vec<(String, Value)>, Value) {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(key) = request.param("Key") {
        items.retain(|(k, _)| k == key);
        return (items, json!({"previous_token": null, "next_token": null}));
    }
    let descending = request.param("Order") == Some("desc");
    if descending {
        items.reverse();
    }
    let size = request
        .param("PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let start = match request.param("From") {
        Some(from) => items
            .iter()
            .position(|(k, _)| {
                if descending {
                    k.as_str() <= from
                } else {
                    k.as_str() >= from
                }
            })
            .unwrap_or(items.len()),
        None => 0,
    };
    let end = (start + size).min(items.len());
    let meta = json!({
        "previous_token": (start > 0).then_some("p"),
        "next_token": (end < items.len()).then_some("n"),
    });
    (items[start..end].to_vec(), meta)
}

impl TwilsockSession {
    /// Answers one call of the Sync API; `path` is what follows `/v3/` or `/v4/`.
    pub(super) async fn cds(&mut self, request: &Tunnelled, path: &[String]) -> HttpAnswer {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let result = match (request.method.as_str(), path.as_slice()) {
            ("GET", [collection, id]) => self.read_object(collection, id, request).await,
            ("GET", [collection, id, "Items"]) => self.read_items(collection, id, request).await,
            ("GET", ["Lists", _, "Items", key]) if key.parse::<u64>().is_err() => {
                return not_found();
            }
            ("GET", [collection, id, "Items", key]) => {
                let mut request = request.clone();
                let name = if *collection == "Lists" {
                    "Index"
                } else {
                    "Key"
                };
                request.params.insert(name.into(), (*key).to_owned());
                self.read_items(collection, id, &request).await
            }
            ("POST", ["Subscriptions"]) => return self.subscribe(request).await,
            _ => return HttpAnswer::error(&AppError::not_found(&request.path)),
        };
        match result {
            Ok(Some(answer)) => answer,
            Ok(None) => not_found(),
            Err(e) if e.status == 404 || e.status == 403 => not_found(),
            Err(e) => HttpAnswer::error(&e),
        }
    }

    pub(super) fn object(&self, collection: &str, id: &str) -> Option<SyncObject> {
        let object = SyncObject::parse(SyncKind::parse(collection)?, id)?;
        // A user's channels are its own business.
        match &object {
            SyncObject::UserChannels(identity) if identity != self.identity() => None,
            _ => Some(object),
        }
    }

    /// The channel (its realtime view) an object belongs to, read as the user; authorizes.
    pub(super) async fn channel_view(&mut self, channel: &str) -> Result<Value, AppError> {
        self.run(Request::GetChannel {
            channel: channel.to_owned(),
        })
        .await
    }

    async fn read_object(
        &mut self,
        collection: &str,
        id: &str,
        request: &Tunnelled,
    ) -> Result<Option<HttpAnswer>, AppError> {
        let Some(object) = self.object(collection, id) else {
            return Ok(None);
        };
        let base = self.links.cds();
        let body = match &object {
            SyncObject::Channel(channel) => {
                let view = self.channel_view(channel).await?;
                let seq = view["lastSeq"].as_u64().unwrap_or_default();
                let mut d = descriptor(&base, &object, seq);
                d["data"] = channel_data(&view);
                d
            }
            SyncObject::Messages(channel) | SyncObject::Roster(channel) => {
                let view = self.channel_view(channel).await?;
                if matches!(object, SyncObject::Messages(_)) && view["status"] != "joined" {
                    return Err(AppError::not_member());
                }
                descriptor(&base, &object, view["lastSeq"].as_u64().unwrap_or_default())
            }
            SyncObject::UserChannels(_) | SyncObject::UserInfo(_) => {
                let at = self.user_clock_now();
                let items = if request.param("Include") == Some("items") {
                    let (items, _) = self.user_object_items(&object).await?;
                    Some(
                        items
                            .into_iter()
                            .map(|(k, data)| map_item(&base, &object, &k, data, at))
                            .collect(),
                    )
                } else {
                    // Read for its errors (an unknown user).
                    self.user_object_items(&object).await?;
                    None
                };
                map_descriptor(&base, &object, at, items)
            }
        };
        Ok(Some(HttpAnswer { status: 200, body }))
    }

    /// The whole state of a user's object, by key, and the event id it reflects.
    pub(super) async fn user_object_items(
        &mut self,
        object: &SyncObject,
    ) -> Result<(Vec<(String, Value)>, u64), AppError> {
        let at = self.user_clock_now();
        let items = match object {
            SyncObject::UserChannels(_) => {
                let channels = self.run(Request::GetSubscribedChannels {}).await?;
                channels["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let sid = c["sid"].as_str().unwrap_or_default().to_owned();
                        (sid, user_channel_data(c))
                    })
                    .collect()
            }
            SyncObject::UserInfo(identity) => {
                let user = self
                    .run(Request::GetUser {
                        identity: identity.clone(),
                    })
                    .await?;
                user_info_items(&user, self.reachability())
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok((items, at))
    }

    async fn read_items(
        &mut self,
        collection: &str,
        id: &str,
        request: &Tunnelled,
    ) -> Result<Option<HttpAnswer>, AppError> {
        let Some(object) = self.object(collection, id) else {
            return Ok(None);
        };
        let base = self.links.cds();
        let body = match &object {
            SyncObject::Channel(_) => return Ok(None),
            SyncObject::Messages(channel) => {
                let view = self.channel_view(channel).await?;
                let seq = view["lastSeq"].as_u64().unwrap_or_default();
                let (items, meta) = self.message_items(channel, request).await?;
                let items: Vec<Value> = items
                    .iter()
                    .map(|m| {
                        let index = m["index"].as_u64().unwrap_or_default();
                        list_item(&base, &object, index, message_data(m), seq)
                    })
                    .collect();
                json!({"items": items, "meta": meta})
            }
            SyncObject::Roster(channel) => {
                let view = self.channel_view(channel).await?;
                let seq = view["lastSeq"].as_u64().unwrap_or_default();
                let members = self
                    .run(Request::GetMembers {
                        channel: channel.clone(),
                    })
                    .await?;
                let items = members["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        (
                            m["sid"].as_str().unwrap_or_default().to_owned(),
                            member_data(m),
                        )
                    })
                    .collect();
                let (items, meta) = page_by_key(items, request);
                let items: Vec<Value> = items
                    .into_iter()
                    .map(|(k, data)| map_item(&base, &object, &k, data, seq))
                    .collect();
                json!({"items": items, "meta": meta})
            }
            SyncObject::UserChannels(_) | SyncObject::UserInfo(_) => {
                let (items, at) = self.user_object_items(&object).await?;
                let (items, meta) = page_by_key(items, request);
                let items: Vec<Value> = items
                    .into_iter()
                    .map(|(k, data)| map_item(&base, &object, &k, data, at))
                    .collect();
                json!({"items": items, "meta": meta})
            }
        };
        Ok(Some(HttpAnswer { status: 200, body }))
    }

    /// A page of a channel's messages as the list's items in the order asked for, with `meta`.
    async fn message_items(
        &mut self,
        channel: &str,
        request: &Tunnelled,
    ) -> Result<(Vec<Value>, Value), AppError> {
        let from = |name: &str| request.param(name).and_then(|s| s.parse::<u64>().ok());
        if let Some(index) = from("Index") {
            let page = self
                .run(Request::GetMessages {
                    channel: channel.to_owned(),
                    page_size: Some(1),
                    anchor: Some(index),
                    direction: Some("forward".into()),
                })
                .await?;
            let items: Vec<Value> = page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["index"].as_u64() == Some(index))
                .cloned()
                .collect();
            return Ok((items, json!({"previous_token": null, "next_token": null})));
        }
        let descending = request.param("Order") == Some("desc");
        let size = from("PageSize").map_or(50, |n| n as usize);
        let page = self
            .run(Request::GetMessages {
                channel: channel.to_owned(),
                page_size: Some(size),
                anchor: from("From"),
                direction: Some(if descending { "backwards" } else { "forward" }.into()),
            })
            .await?;
        let mut items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
        let older = page["hasPrevPage"].as_bool().unwrap_or(false);
        let newer = page["hasNextPage"].as_bool().unwrap_or(false);
        let (before, after) = if descending {
            items.reverse();
            (newer, older)
        } else {
            (older, newer)
        };
        let meta = json!({
            "previous_token": before.then_some("p"),
            "next_token": after.then_some("n"),
        });
        Ok((items, meta))
    }
}
