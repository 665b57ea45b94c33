//! The Sync API that twilio-chat calls through twilsock ("cds"): reads of the objects of the
//! view (`GET /v3/{Maps,Lists,Documents}/{id}` and their `Items`) and subscriptions
//! (`POST /v4/Subscriptions`), with the replay from the client's `last_event_id` that the client
//! counts on (docs/twilio-client-protocol.md, §4). Every read is a realtime read operation of the
//! session's user, so it sees what the realtime API would let the user see.

use std::collections::HashSet;

use confab_app::AppError;
use confab_domain::ChannelSid;
use confab_protocol::realtime::{self as rt, Request};
use serde_json::{json, Value};

use super::events::{subscription_notice, translate, Notification};
use super::subscriptions::{Replay, Subscriptions};
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

    fn object(&self, collection: &str, id: &str) -> Option<SyncObject> {
        let object = SyncObject::parse(SyncKind::parse(collection)?, id)?;
        // A user's channels are its own business.
        match &object {
            SyncObject::UserChannels(identity) if identity != self.identity() => None,
            _ => Some(object),
        }
    }

    /// The channel (its realtime view) an object belongs to, read as the user; authorizes.
    async fn channel_view(&mut self, channel: &str) -> Result<Value, AppError> {
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
    async fn user_object_items(
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

    /// `POST /v4/Subscriptions`: answers at once, then replays what each object's subscriber
    /// missed since its `last_event_id` and confirms (or refuses) each subscription.
    async fn subscribe(&mut self, request: &Tunnelled) -> HttpAnswer {
        let body = &request.body;
        let correlation = body.get("correlation_id").cloned().unwrap_or(Value::Null);
        let action = body
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("establish");
        let mut seen = HashSet::new();
        let requests: Vec<Value> = body
            .get("requests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // The same object twice in a batch is one subscription.
            .filter(|r| seen.insert(r["object_sid"].as_str().unwrap_or_default().to_owned()))
            .cloned()
            .collect();
        // Each object is rated as an operation: a batch never needs more than a burst.
        let max_batch = 100.min(self.conn.state.realtime.ops_burst.max(1) as usize);
        if requests.len() > max_batch {
            return HttpAnswer::error(&AppError::invalid("Too many subscription requests"));
        }
        // Each object is an operation's work (the frame paid for one).
        let extra = u32::try_from(requests.len().saturating_sub(1)).unwrap_or(u32::MAX);
        if action != "cancel" && !self.bucket.take_n(extra) {
            return HttpAnswer::error(&AppError::too_many_requests());
        }
        let answer = HttpAnswer {
            status: 200,
            body: json!({"estimated_delivery_in_ms": 5000, "max_batch_size": max_batch, "ttl_in_s": -1}),
        };
        // What one request may replay in all: past it, a subscription is answered
        // "interrupted" and the client asks again (paced by the rate limit).
        let mut budget = self.conn.state.realtime.max_replay;
        let mut follow_ups = Vec::new();
        for r in &requests {
            let sid = r["object_sid"].as_str().unwrap_or_default().to_owned();
            let kind = r["object_type"].as_str().and_then(SyncKind::parse);
            if action == "cancel" {
                self.subscriptions(|s| s.cancel(&sid));
                follow_ups.push(subscription_notice(
                    "subscription_canceled",
                    &correlation,
                    json!({"object_sid": sid, "object_type": r["object_type"]}),
                ));
                continue;
            }
            let last = r["last_event_id"].as_u64().unwrap_or(0);
            let object = kind.and_then(|k| self.object(k.collection(), &sid));
            let Some(object) = object else {
                follow_ups.push(subscription_failed(
                    &correlation,
                    &sid,
                    &AppError::resource_not_found(),
                ));
                continue;
            };
            // Held from before the replay is read, so that no event falls between the two.
            if !self.subscriptions(|s| s.start(&sid)) {
                follow_ups.push(subscription_failed(
                    &correlation,
                    &sid,
                    &AppError::too_many_requests(),
                ));
                continue;
            }
            let established = |status: &str, last_event_id: u64| {
                subscription_notice(
                    "subscription_established",
                    &correlation,
                    json!({
                        "object_sid": sid,
                        "object_type": object.kind().name(),
                        "replay_status": status,
                        "last_event_id": last_event_id,
                    }),
                )
            };
            match self.replay(&object, last, budget).await {
                Ok(Some(replayed)) => {
                    budget = budget.saturating_sub(replayed.cost);
                    let notice = established("completed", replayed.newest.max(last));
                    let replay = Replay {
                        events: replayed.events,
                        up_to: replayed.up_to,
                        notice,
                        renumber_held: replayed.whole_user_state,
                    };
                    self.subscriptions(|s| s.replayed(&sid, replay));
                    self.replays_after_reply.push(sid);
                }
                Ok(None) => {
                    self.subscriptions(|s| s.cancel(&sid));
                    follow_ups.push(established("interrupted", last));
                }
                Err(e) => {
                    self.subscriptions(|s| s.cancel(&sid));
                    follow_ups.push(subscription_failed(&correlation, &sid, &e));
                }
            }
        }
        self.after_reply = follow_ups;
        answer
    }

    /// What the subscriber of `object` missed after `last`, in at most `budget` events (`None`
    /// past it).
    async fn replay(
        &mut self,
        object: &SyncObject,
        last: u64,
        budget: usize,
    ) -> Result<Option<Replayed>, AppError> {
        if let Some(channel) = object.channel() {
            return self
                .replay_channel_object(object, channel, last, budget)
                .await;
        }
        let id = object.id();
        let kept = {
            let mut state = self.view.lock().unwrap_or_else(|p| p.into_inner());
            // No await between the two reads: the writer cannot number an event in between.
            state
                .clock
                .since(&id, last)
                .map(|events| (events, state.clock.current()))
        };
        if let Some((events, now)) = kept {
            return Ok(Some(Replayed {
                cost: events.len(),
                events,
                up_to: now,
                newest: now,
                whole_user_state: false,
            }));
        }
        // Events of the object may be missing: its whole state, as updates numbered after
        // what happens while it is read.
        let (items, read_at) = self.user_object_items(object).await?;
        let mut state = self.view.lock().unwrap_or_else(|p| p.into_inner());
        let mut events = Vec::new();
        for (key, data) in items {
            let event_id = state.clock.tick();
            events.push(super::events::map_item_event(
                "map_item_updated",
                &id,
                event_id,
                &key,
                data,
                &Value::Null,
            ));
        }
        Ok(Some(Replayed {
            cost: events.len(),
            events,
            up_to: read_at,
            newest: state.clock.current(),
            whole_user_state: true,
        }))
    }

    /// A channel object's replay: the document as its current state; for the roster and the
    /// messages, only what a member saw happen is replayed, as a realtime resume allows it:
    /// every event after `last` still stored, all of them since the member joined (stored
    /// events keep deleted messages and earlier versions of edited ones). An invitee, a reader
    /// of a public channel, or a member too far behind gets the roster's current state
    /// instead; the messages list then has nothing to replay (its history is read by page).
    async fn replay_channel_object(
        &mut self,
        object: &SyncObject,
        channel: &str,
        last: u64,
        budget: usize,
    ) -> Result<Option<Replayed>, AppError> {
        let auth = self.conn.auth()?;
        let seen = self
            .conn
            .state
            .app
            .visible_channel(auth.user(), channel)
            .await?;
        if matches!(object, SyncObject::Messages(_)) && seen.member.is_none() {
            return Err(AppError::not_member());
        }
        let newest = seen.channel.last_seq;
        let sid: ChannelSid = seen.channel.sid;
        // A document's current state supersedes every event of it (and the writer keeps it to
        // push `lastMessage` changes).
        if matches!(object, SyncObject::Channel(_)) {
            let events = self.channel_object_state(object, channel, newest).await?;
            return Ok(Some(Replayed {
                cost: events.len(),
                events,
                up_to: newest,
                newest,
                whole_user_state: false,
            }));
        }
        let max = self.conn.state.realtime.max_replay as u64;
        let store = self.conn.state.store.clone();
        let mut replayable = false;
        if let Some(member) = &seen.member {
            if newest >= last && newest - last <= max {
                // Charged by what is read, whatever of it concerns this object.
                if newest - last > budget as u64 {
                    return Ok(None);
                }
                // The first event decides, as for a realtime resume, before the rest is read.
                replayable = newest == last
                    || store
                        .events_after(sid, last, 1)
                        .await?
                        .first()
                        .is_some_and(|e| e.seq == last + 1 && e.at >= member.date_created);
            }
        }
        let id = object.id();
        let mut events = Vec::new();
        let mut cost = 0;
        if replayable && newest > last {
            let wanted = usize::try_from(newest - last).unwrap_or(usize::MAX);
            cost = wanted;
            let stored = store.events_after(sid, last, wanted).await?;
            // Translated without the lock the writer takes for every event.
            let context = self
                .view
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .context
                .clone();
            for event in stored {
                let Some(frame) = rt::member_frame(&event) else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&frame) else {
                    continue;
                };
                // A scratch clock: replayed channel events touch no user object here.
                let mut scratch = super::subscriptions::UserClock::new(0, 1);
                events.extend(
                    translate(&frame, &context, &mut scratch)
                        .into_iter()
                        .filter(|n| n.object_id() == Some(id.as_str())),
                );
            }
        } else if !replayable {
            events = self.channel_object_state(object, channel, newest).await?;
            cost = events.len();
        }
        Ok(Some(Replayed {
            cost,
            events,
            up_to: newest,
            newest,
            whole_user_state: false,
        }))
    }

    /// A channel object's current state as events numbered `newest` (nothing for the messages
    /// list).
    async fn channel_object_state(
        &mut self,
        object: &SyncObject,
        channel: &str,
        newest: u64,
    ) -> Result<Vec<Notification>, AppError> {
        let id = object.id();
        Ok(match object {
            SyncObject::Channel(_) => {
                let view = self.channel_view(channel).await?;
                vec![super::events::document_updated(
                    &id,
                    newest,
                    channel_data(&view),
                    &view["dateUpdated"],
                )]
            }
            SyncObject::Roster(_) => {
                let members = self
                    .run(Request::GetMembers {
                        channel: channel.to_owned(),
                    })
                    .await?;
                members["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        super::events::map_item_event(
                            "map_item_updated",
                            &id,
                            newest,
                            m["sid"].as_str().unwrap_or_default(),
                            member_data(m),
                            &m["dateUpdated"],
                        )
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }
}

/// What a subscription's replay read.
struct Replayed {
    events: Vec<Notification>,
    /// Events read for it (charged against the request's replay budget).
    cost: usize,
    /// What the read reflects: live events above it are not covered.
    up_to: u64,
    /// The `last_event_id` the subscription is established with.
    newest: u64,
    /// A user object's whole state (numbered after events held while it was read).
    whole_user_state: bool,
}

impl TwilsockSession {
    /// Runs `f` on the connection's subscriptions (shared with its writer).
    fn subscriptions<T>(&self, f: impl FnOnce(&mut Subscriptions) -> T) -> T {
        let mut state = self.view.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state.subscriptions)
    }
}

fn subscription_failed(correlation: &Value, sid: &str, e: &AppError) -> Notification {
    let status = if e.status == 403 { 404 } else { e.status };
    subscription_notice(
        "subscription_failed",
        correlation,
        json!({
            "object_sid": sid,
            "error": {"message": e.message, "status": status, "code": 54100},
        }),
    )
}
