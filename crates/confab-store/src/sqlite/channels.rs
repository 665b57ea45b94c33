//! The channel aggregate on SQLite: a commit (the channel row, its events and their effects, in
//! the writer's transaction) and the channel reads.

use async_trait::async_trait;
use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, Invite, InviteSid, Member,
    Message, MessageSid, ServiceSid,
};
use rusqlite::{params, Connection};

use super::changes::Changed;
use super::rows::*;
use super::{user_channels, SqliteStore};
use crate::error::{Conflict, StoreError};
use crate::traits::*;

pub(super) fn delete_channel_rows(conn: &Connection, sid: &str) -> Result<(), StoreError> {
    for table in [
        "members",
        "messages",
        "invites",
        "channel_events",
        "webhooks",
    ] {
        execute_cached(
            conn,
            &format!("DELETE FROM {table} WHERE channel_sid = ?1"),
            [sid],
        )?;
    }
    execute_cached(conn, "DELETE FROM channels WHERE sid = ?1", [sid])?;
    Ok(())
}

fn removes_channel(commit: &ChannelCommit) -> bool {
    commit
        .events
        .iter()
        .any(|e| matches!(e.kind, ChannelEventKind::ChannelRemoved { .. }))
}

/// Applies one channel commit inside the writer's transaction.
pub(super) fn commit_channel(
    conn: &Connection,
    commit: &ChannelCommit,
    retention: u64,
) -> Result<(), StoreError> {
    let channel = &commit.channel;
    let sid = channel.sid.to_string();
    super::jobs::put_jobs(conn, &commit.jobs, commit.jobs_due)?;
    if removes_channel(commit) {
        return delete_channel_rows(conn, &sid);
    }
    let data = encode(channel)?;
    // Most commits (messages, members) change neither the channel's kind nor its unique name:
    // setting only its record leaves the two indexes on them alone, where the upsert rewrote an
    // entry in each (two pages more per message, measured in the writer's log writes).
    let replaced = !commit.may_rename()
        && conn
            .prepare_cached("UPDATE channels SET data = ?2 WHERE sid = ?1")?
            .execute(params![sid, data])?
            == 1;
    if !replaced {
        conn.prepare_cached(
            "INSERT INTO channels (sid, service_sid, unique_name, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sid) DO UPDATE SET unique_name = excluded.unique_name,
                 kind = excluded.kind, data = excluded.data",
        )?
        .execute(params![
            sid,
            channel.service_sid.to_string(),
            channel.unique_name,
            channel.kind.as_str(),
            data
        ])
        .map_err(|e| {
            if is_unique_violation(&e, "channels.service_sid, channels.unique_name") {
                StoreError::Conflict(Conflict::ChannelUniqueName)
            } else {
                e.into()
            }
        })?;
    }
    for event in &commit.events {
        apply_event(conn, &sid, event)?;
        conn.prepare_cached(
            "INSERT INTO channel_events (channel_sid, seq, data) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![sid, event.seq as i64, encode(event)?])?;
    }
    // Pruning on every commit would cost a delete per message; every 64th seq keeps the log
    // within `retention + 64` events.
    if let Some(last) = commit.events.last() {
        if last.seq % 64 == 0 && last.seq > retention {
            conn.prepare_cached("DELETE FROM channel_events WHERE channel_sid = ?1 AND seq <= ?2")?
                .execute(params![sid, (last.seq - retention) as i64])?;
        }
    }
    Ok(())
}

pub(super) fn put_member(conn: &Connection, member: &Member) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO members (sid, channel_sid, service_sid, identity, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
    )?
    .execute(params![
        member.sid.to_string(),
        member.channel_sid.to_string(),
        member.service_sid.to_string(),
        member.identity,
        encode(member)?
    ])?;
    Ok(())
}

pub(super) fn put_message(conn: &Connection, message: &Message) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (channel_sid, idx, sid, data) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel_sid, idx) DO UPDATE SET data = excluded.data",
    )?
    .execute(params![
        message.channel_sid.to_string(),
        message.index as i64,
        message.sid.to_string(),
        encode(message)?
    ])?;
    Ok(())
}

pub(super) fn apply_event(
    conn: &Connection,
    channel_sid: &str,
    event: &ChannelEvent,
) -> Result<(), StoreError> {
    match &event.kind {
        ChannelEventKind::ChannelCreated { .. }
        | ChannelEventKind::ChannelUpdated { .. }
        | ChannelEventKind::ChannelRemoved { .. } => {}
        ChannelEventKind::MemberJoined { member }
        | ChannelEventKind::MemberUpdated { member, .. } => put_member(conn, member)?,
        ChannelEventKind::MemberLeft { member } => {
            conn.prepare_cached("DELETE FROM members WHERE sid = ?1")?
                .execute([member.sid.to_string()])?;
        }
        ChannelEventKind::MessageAdded { message }
        | ChannelEventKind::MessageUpdated { message, .. } => put_message(conn, message)?,
        ChannelEventKind::MessageRemoved { message } => {
            conn.prepare_cached("DELETE FROM messages WHERE channel_sid = ?1 AND idx = ?2")?
                .execute(params![channel_sid, message.index as i64])?;
        }
        ChannelEventKind::InviteCreated { invite } => {
            conn.prepare_cached(
                "INSERT INTO invites (sid, channel_sid, service_sid, identity, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![
                invite.sid.to_string(),
                channel_sid,
                invite.service_sid.to_string(),
                invite.identity,
                encode(invite)?
            ])?;
        }
        ChannelEventKind::InviteRemoved { invite, .. } => {
            conn.prepare_cached("DELETE FROM invites WHERE sid = ?1")?
                .execute([invite.sid.to_string()])?;
        }
    }
    Ok(())
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn commit(&self, commit: &ChannelCommit) -> Result<(), StoreError> {
        let commit = commit.clone();
        let retention = self.retention();
        // A removed channel's webhooks go with it.
        let changes = if removes_channel(&commit) {
            Changed::of(&[CachedRecords::Webhooks])
        } else {
            Changed::NOTHING
        };
        self.write_changing(changes, move |conn| {
            commit_channel(conn, &commit, retention)
        })
        .await
    }

    async fn load_channel(&self, sid: ChannelSid) -> Result<Option<ChannelSnapshot>, StoreError> {
        self.read(move |conn| {
            let sid = sid.to_string();
            let Some(channel) =
                get_one::<Channel>(conn, "SELECT data FROM channels WHERE sid = ?1", [&sid])?
            else {
                return Ok(None);
            };
            let decode_all = |sql: &str| -> Result<Vec<String>, StoreError> {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map([&sid], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let members =
                decode_all("SELECT data FROM members WHERE channel_sid = ?1 ORDER BY rowid")?
                    .iter()
                    .map(|d| decode(d))
                    .collect::<Result<_, _>>()?;
            let invites =
                decode_all("SELECT data FROM invites WHERE channel_sid = ?1 ORDER BY rowid")?
                    .iter()
                    .map(|d| decode(d))
                    .collect::<Result<_, _>>()?;
            Ok(Some(ChannelSnapshot {
                channel,
                members,
                invites,
            }))
        })
        .await
    }

    async fn get_channel(
        &self,
        service: ServiceSid,
        sid: ChannelSid,
    ) -> Result<Option<Channel>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                CHANNEL_IN_SERVICE,
                [sid.to_string(), service.to_string()],
            )
        })
        .await
    }

    async fn get_channels(
        &self,
        service: ServiceSid,
        sids: &[ChannelSid],
    ) -> Result<Vec<Channel>, StoreError> {
        let sids = sids.to_vec();
        self.read(move |conn| user_channels::channels_in(conn, service, &sids))
            .await
    }

    async fn get_channel_by_unique_name(
        &self,
        service: ServiceSid,
        unique_name: &str,
    ) -> Result<Option<Channel>, StoreError> {
        let name = unique_name.to_owned();
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM channels WHERE service_sid = ?1 AND unique_name = ?2",
                [service.to_string(), name],
            )
        })
        .await
    }

    async fn list_channels(
        &self,
        service: ServiceSid,
        types: &[ChannelType],
        page: &PageRequest,
    ) -> Result<Page<Channel>, StoreError> {
        let page = page.clone();
        let mut args = vec![text(service)];
        let mut filter = "service_sid = ?".to_owned();
        if !types.is_empty() {
            filter.push_str(&format!(
                " AND kind IN ({})",
                vec!["?"; types.len()].join(", ")
            ));
            args.extend(types.iter().map(|t| text(t.as_str())));
        }
        self.read(move |conn| page_of(conn, "channels", "rowid", &filter, args, &page))
            .await
    }

    async fn get_member(
        &self,
        channel: ChannelSid,
        key: &MemberKey,
    ) -> Result<Option<Member>, StoreError> {
        let (sql, value) = match key {
            MemberKey::Sid(sid) => (
                "SELECT data FROM members WHERE channel_sid = ?1 AND sid = ?2",
                sid.to_string(),
            ),
            MemberKey::Identity(identity) => (
                "SELECT data FROM members WHERE channel_sid = ?1 AND identity = ?2",
                identity.clone(),
            ),
        };
        self.read(move |conn| get_one(conn, sql, [channel.to_string(), value]))
            .await
    }

    async fn list_members(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        let page = page.clone();
        let mut args = vec![text(channel)];
        let filter = format!(
            "channel_sid = ? AND {}",
            identity_filter(identities, &mut args)
        );
        self.read(move |conn| page_of(conn, "members", "rowid", &filter, args, &page))
            .await
    }

    async fn list_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        let (page, identity) = (page.clone(), identity.to_owned());
        self.read(move |conn| {
            user_channels::identity_rows(conn, "members", service, &identity, &page)
        })
        .await
    }

    async fn count_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<u64, StoreError> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM members WHERE service_sid = ?1 AND identity = ?2",
                )?
                .query_row([service.to_string(), identity], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    async fn get_message(
        &self,
        channel: ChannelSid,
        sid: MessageSid,
    ) -> Result<Option<Message>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM messages WHERE sid = ?1 AND channel_sid = ?2",
                [sid.to_string(), channel.to_string()],
            )
        })
        .await
    }

    async fn list_messages(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "messages",
                "idx",
                "channel_sid = ?",
                vec![text(channel)],
                &page,
            )
        })
        .await
    }

    async fn count_messages_after(
        &self,
        channel: ChannelSid,
        after: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let after = after.map_or(-1, |a| a as i64);
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM messages WHERE channel_sid = ?1 AND idx > ?2",
                )?
                .query_row(params![channel.to_string(), after], |r| r.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    async fn get_invite(
        &self,
        channel: ChannelSid,
        sid: InviteSid,
    ) -> Result<Option<Invite>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM invites WHERE sid = ?1 AND channel_sid = ?2",
                [sid.to_string(), channel.to_string()],
            )
        })
        .await
    }

    async fn list_invites(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        let page = page.clone();
        let mut args = vec![text(channel)];
        let filter = format!(
            "channel_sid = ? AND {}",
            identity_filter(identities, &mut args)
        );
        self.read(move |conn| page_of(conn, "invites", "rowid", &filter, args, &page))
            .await
    }

    async fn list_user_invites(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        let (page, identity) = (page.clone(), identity.to_owned());
        self.read(move |conn| {
            user_channels::identity_rows(conn, "invites", service, &identity, &page)
        })
        .await
    }

    async fn user_channels(
        &self,
        service: ServiceSid,
        identity: &str,
        max: usize,
    ) -> Result<UserChannels, StoreError> {
        let identity = identity.to_owned();
        self.read(move |conn| user_channels::user_channels(conn, service, &identity, max))
            .await
    }

    async fn events_after(
        &self,
        channel: ChannelSid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChannelEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT data FROM channel_events WHERE channel_sid = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![channel.to_string(), after as i64, limit as i64],
                |r| r.get::<_, String>(0),
            )?;
            rows.map(|r| decode(&r?)).collect()
        })
        .await
    }
}
