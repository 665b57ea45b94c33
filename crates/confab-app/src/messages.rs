//! Message use cases: sending, reading history, editing, removing, and the read horizon.

use confab_cluster::{ChannelOp, MessageChange};
use confab_domain::{
    Caller, Channel, ChannelCommand, ChannelEventKind, ChannelSid, ConsumptionUpdate, MediaSid,
    Member, MemberRef, Message, MessageMedia, MessageSid, PostMessage, UpdateMember,
};
use confab_store::{PageRequest, PageStart};

use crate::channels::UserRef;
use crate::lookup::find_event;
use crate::{App, AppError, AppResult};

/// What a user sends.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// The text.
    pub body: String,
    /// Attributes JSON text.
    pub attributes: Option<String>,
    /// The sender's idempotency key.
    pub client_id: Option<String>,
    /// A media the sender uploaded, to attach.
    pub media: Option<MediaSid>,
}

/// Which way a history page goes from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Older messages, ending at the anchor (the newest when there is none).
    Backwards,
    /// Newer messages, starting at the anchor (the oldest when there is none).
    Forward,
}

/// A page of history, ascending by index.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The messages.
    pub items: Vec<Message>,
    /// Whether older messages exist.
    pub has_prev: bool,
    /// Whether newer messages exist.
    pub has_next: bool,
}

/// What a message adds to a reply: its body as JSON escapes it (a control character takes six
/// bytes), its attributes, and its other fields.
fn reply_bytes(message: &Message) -> usize {
    let escaped = |text: &str| {
        text.len()
            + text
                .bytes()
                .map(|b| match b {
                    b'"' | b'\\' => 1,
                    0..=0x1f => 5,
                    _ => 0,
                })
                .sum::<usize>()
    };
    escaped(&message.body) + message.attributes.as_str().len() + 256
}

/// Trims an ascending page to at most `limit` bytes, keeping at least one message: the newest
/// ones going backwards, the oldest going forward. Returns whether it cut anything.
fn keep_within(items: &mut Vec<Message>, limit: usize, direction: Direction) -> bool {
    let mut total = 0;
    let keep = match direction {
        Direction::Forward => items
            .iter()
            .take_while(|m| {
                total += reply_bytes(m);
                total <= limit
            })
            .count(),
        Direction::Backwards => items
            .iter()
            .rev()
            .take_while(|m| {
                total += reply_bytes(m);
                total <= limit
            })
            .count(),
    }
    .max(1)
    .min(items.len());
    let cut = keep < items.len();
    match direction {
        Direction::Forward => items.truncate(keep),
        Direction::Backwards => {
            items.drain(..items.len() - keep);
        }
    }
    cut
}

impl App {
    /// The user sends a message; returns it as stored.
    pub async fn send_message(
        &self,
        caller: &Caller,
        key: &str,
        message: NewMessage,
    ) -> AppResult<Message> {
        let user = UserRef::of(caller)?;
        let channel = self.channel_sid(user.service, key).await?;
        let command = ChannelCommand::PostMessage(PostMessage {
            author: Some(user.identity.to_owned()),
            require_member: true,
            body: message.body,
            attributes: message.attributes,
            date_created: None,
            date_updated: None,
            last_updated_by: None,
            client_id: message.client_id.filter(|c| !c.is_empty()),
            media: message
                .media
                .map(|sid| Box::new(MessageMedia::requested(sid))),
        });
        let events = self
            .execute(caller, channel, ChannelOp::Apply(command))
            .await?;
        find_event(&events, |k| match k {
            ChannelEventKind::MessageAdded { message } => Some(message.clone()),
            _ => None,
        })
    }

    /// A page of a channel's history for one of its members.
    pub async fn history(
        &self,
        user: UserRef<'_>,
        key: &str,
        size: usize,
        anchor: Option<u64>,
        direction: Direction,
    ) -> AppResult<HistoryPage> {
        let (channel, _) = self.member_channel(user, key).await?;
        let size = size.clamp(1, self.limits.max_page_size);
        let store = &self.store;
        if direction == Direction::Forward {
            let start = match anchor {
                Some(a) if a > 0 => PageStart::After((a - 1).to_string()),
                _ => PageStart::First,
            };
            let page = store
                .list_messages(
                    channel.sid,
                    &PageRequest {
                        size,
                        start,
                        descending: false,
                    },
                )
                .await?;
            let has_prev = match page.items.first() {
                Some(first) => {
                    let before = PageRequest {
                        size: 1,
                        start: PageStart::After(first.index.to_string()),
                        descending: true,
                    };
                    !store
                        .list_messages(channel.sid, &before)
                        .await?
                        .items
                        .is_empty()
                }
                None => false,
            };
            let mut items = page.items;
            let cut = keep_within(&mut items, self.limits.max_reply_bytes, Direction::Forward);
            return Ok(HistoryPage {
                has_next: page.next.is_some() || cut,
                items,
                has_prev,
            });
        }
        let start = match anchor {
            Some(a) => PageStart::After(a.saturating_add(1).to_string()),
            None => PageStart::First,
        };
        let page = store
            .list_messages(
                channel.sid,
                &PageRequest {
                    size,
                    start,
                    descending: true,
                },
            )
            .await?;
        let mut items = page.items;
        items.reverse();
        let cut = keep_within(
            &mut items,
            self.limits.max_reply_bytes,
            Direction::Backwards,
        );
        let newest = channel.last_message.map(|m| m.index);
        let has_next = match (items.last(), newest) {
            (Some(last), Some(newest)) => last.index < newest,
            _ => false,
        };
        Ok(HistoryPage {
            items,
            has_prev: page.next.is_some() || cut,
            has_next,
        })
    }

    /// The stored message at `index` of the channel (50500 when there is none).
    pub async fn message_at(&self, channel: ChannelSid, index: u64) -> AppResult<Message> {
        let page = PageRequest {
            size: 1,
            start: if index == 0 {
                PageStart::First
            } else {
                PageStart::After((index - 1).to_string())
            },
            descending: false,
        };
        self.store
            .list_messages(channel, &page)
            .await?
            .items
            .into_iter()
            .find(|m| m.index == index)
            .ok_or_else(AppError::message_not_found)
    }

    /// A message of a channel the user is a member of, by SID (50500 when there is none).
    pub async fn message_with_sid(
        &self,
        user: UserRef<'_>,
        key: &str,
        sid: MessageSid,
    ) -> AppResult<Message> {
        let (channel, _) = self.member_channel(user, key).await?;
        self.store
            .get_message(channel.sid, sid)
            .await?
            .ok_or_else(AppError::message_not_found)
    }

    /// The user changes the body or attributes of the message at `index`.
    pub async fn update_message(
        &self,
        caller: &Caller,
        key: &str,
        index: u64,
        body: Option<String>,
        attributes: Option<String>,
    ) -> AppResult<Message> {
        if body.is_none() && attributes.is_none() {
            return Err(AppError::invalid("updateMessage needs body or attributes"));
        }
        let user = UserRef::of(caller)?;
        let (channel, _) = self.member_channel(user, key).await?;
        let message = self.message_at(channel.sid, index).await?;
        let change = MessageChange {
            body,
            attributes,
            last_updated_by: Some(user.identity.to_owned()),
            ..MessageChange::default()
        };
        let op = ChannelOp::UpdateMessage {
            message: message.sid,
            change,
        };
        let events = self.execute(caller, channel.sid, op).await?;
        find_event(&events, |k| match k {
            ChannelEventKind::MessageUpdated { message, .. } => Some(message.clone()),
            _ => None,
        })
    }

    /// The user removes the message at `index`.
    pub async fn remove_message(&self, caller: &Caller, key: &str, index: u64) -> AppResult<()> {
        let user = UserRef::of(caller)?;
        let (channel, _) = self.member_channel(user, key).await?;
        let message = self.message_at(channel.sid, index).await?;
        let op = ChannelOp::RemoveMessage {
            message: message.sid,
        };
        self.execute(caller, channel.sid, op).await?;
        Ok(())
    }

    /// Moves the user's read horizon; returns the channel and the member after the change.
    pub async fn consume(
        &self,
        caller: &Caller,
        key: &str,
        update: ConsumptionUpdate,
    ) -> AppResult<(Channel, Member)> {
        let user = UserRef::of(caller)?;
        let (channel, member) = self.member_channel(user, key).await?;
        let command = ChannelCommand::UpdateMember(UpdateMember {
            member: MemberRef::Sid(member.sid),
            role_sid: None,
            attributes: None,
            consumption: Some(update),
            last_consumption_timestamp: None,
            notification_level: None,
            date_created: None,
            date_updated: None,
        });
        let events = self
            .execute(caller, channel.sid, ChannelOp::Apply(command))
            .await?;
        let member = find_event(&events, |k| match k {
            ChannelEventKind::MemberUpdated { member, .. } => Some(member.clone()),
            _ => None,
        })?;
        Ok((channel, member))
    }

    /// `getUnconsumedMessagesCount` as twilio-chat answers it: `None` while the member has no
    /// read horizon (not "every message"), else [`App::unread`].
    pub async fn unconsumed(&self, channel: &Channel, member: &Member) -> AppResult<Option<u64>> {
        match member.last_consumed_message_index {
            None => Ok(None),
            Some(_) => self.unread(channel, member).await.map(Some),
        }
    }

    /// How many messages of the channel come after the member's read horizon.
    pub async fn unread(&self, channel: &Channel, member: &Member) -> AppResult<u64> {
        Ok(self
            .store
            .count_messages_after(channel.sid, member.last_consumed_message_index)
            .await?)
    }
}
