//! The Sync subscription request (`POST /v4/Subscriptions`, through [`super::cds`]) and what
//! each subscription replays from the client's `last_event_id`: a channel's events for a member
//! who saw them happen, else the object's current state; a user's own objects from the
//! session's kept events or whole (docs/twilio-client-protocol.md, §4).

use std::collections::HashSet;

use confab_app::AppError;
use confab_domain::ChannelSid;
use confab_protocol::realtime::{self as rt, Request};
use serde_json::{json, Value};

use super::events::{subscription_notice, translate, Notification};
use super::subscriptions::{Replay, Subscriptions};
use super::sync::{channel_data, member_data, SyncKind, SyncObject};
use super::{HttpAnswer, Tunnelled, TwilsockSession};

impl TwilsockSession {
    /// `POST /v4/Subscriptions`: answers at once, then replays what each object's subscriber
    /// missed since its `last_event_id` and confirms (or refuses) each subscription.
    pub(super) async fn subscribe(&mut self, request: &Tunnelled) -> HttpAnswer {
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
