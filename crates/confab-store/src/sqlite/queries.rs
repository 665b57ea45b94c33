//! The store traits on SQLite: SQL for each method, run through the writer or the reader pool.

use async_trait::async_trait;
use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, ChannelWebhook, Credential,
    CredentialSid, Invite, InviteSid, Member, Message, MessageSid, Role, RoleSid, Service,
    ServiceSid, User, UserSid, WebhookSid,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{user_channels, SqliteStore};
use crate::error::{Conflict, StoreError};
use crate::traits::*;

// === helpers ===

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(data: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(data)?)
}

/// Whether `e` is a uniqueness violation naming `columns` (as SQLite spells them: `t.a, t.b`).
fn is_unique_violation(e: &rusqlite::Error, columns: &str) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.code == ErrorCode::ConstraintViolation && msg.contains(columns))
}

/// A channel by SID, if it is in the service (`?1` the channel, `?2` the service).
pub(super) const CHANNEL_IN_SERVICE: &str =
    "SELECT data FROM channels WHERE sid = ?1 AND service_sid = ?2";

/// Fetches one JSON record.
pub(super) fn get_one<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let data: Option<String> = conn
        .prepare_cached(sql)?
        .query_row(args, |r| r.get(0))
        .optional()?;
    data.as_deref().map(decode).transpose()
}

/// One page of `table` filtered by `filter` (with `args`), keyed and ordered by `key`.
pub(super) fn page_of<T: DeserializeOwned>(
    conn: &Connection,
    table: &str,
    key: &str,
    filter: &str,
    mut args: Vec<Value>,
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let (cmp, dir) = if page.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let size = page.size.max(1);
    let mut sql = format!("SELECT {key}, data FROM {table} WHERE {filter}");
    let mut offset = 0;
    match &page.start {
        PageStart::First => {}
        PageStart::Offset(n) => offset = *n,
        PageStart::After(cursor) => {
            let after: i64 = cursor.parse().map_err(|_| StoreError::InvalidCursor)?;
            sql.push_str(&format!(" AND {key} {cmp} ?"));
            args.push(Value::Integer(after));
        }
    }
    sql.push_str(&format!(" ORDER BY {key} {dir} LIMIT ? OFFSET ?"));
    args.push(Value::Integer(size as i64 + 1));
    args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    // Grown as rows come: a page asked for as large as allowed is usually short (a user's
    // invitations at `init` ask for a thousand and find none).
    let mut items = Vec::with_capacity(size.min(64));
    let mut last_key = None;
    let mut more = false;
    for row in rows {
        let (k, data) = row?;
        if items.len() == size {
            more = true;
            break;
        }
        items.push(decode(&data)?);
        last_key = Some(k);
    }
    Ok(Page {
        items,
        next: if more {
            last_key.map(|k| k.to_string())
        } else {
            None
        },
    })
}

/// `identity IN (?, ?, ...)` for a non-empty list, else `1`.
fn identity_filter(identities: &[String], args: &mut Vec<Value>) -> String {
    if identities.is_empty() {
        return "1".into();
    }
    args.extend(identities.iter().map(|i| Value::Text(i.clone())));
    format!("identity IN ({})", vec!["?"; identities.len()].join(", "))
}

/// `Connection::execute` through the connection's statement cache: these writes run again and
/// again, and parsing their SQL each time showed in profiles (a new user's insert at `init`).
fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(super) fn text(v: impl ToString) -> Value {
    Value::Text(v.to_string())
}

fn delete_channel_rows(conn: &Connection, sid: &str) -> Result<(), StoreError> {
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

/// Applies one channel commit inside the writer's transaction.
fn commit_channel(
    conn: &Connection,
    commit: &ChannelCommit,
    retention: u64,
) -> Result<(), StoreError> {
    let channel = &commit.channel;
    let sid = channel.sid.to_string();
    super::jobs::put_jobs(conn, &commit.jobs, commit.jobs_due)?;
    if commit
        .events
        .iter()
        .any(|e| matches!(e.kind, ChannelEventKind::ChannelRemoved { .. }))
    {
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

fn put_member(conn: &Connection, member: &Member) -> Result<(), StoreError> {
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

fn put_message(conn: &Connection, message: &Message) -> Result<(), StoreError> {
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

fn apply_event(
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

// === impl ServiceStore ===

#[async_trait]
impl ServiceStore for SqliteStore {
    async fn create_service(&self, service: &Service, roles: &[Role]) -> Result<(), StoreError> {
        let data = encode(service)?;
        let sid = service.sid.to_string();
        let roles = roles
            .iter()
            .map(|r| Ok((r.sid.to_string(), encode(r)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO services (sid, data) VALUES (?1, ?2)",
                params![sid, data],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "services.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            for (role_sid, role) in roles {
                execute_cached(
                    conn,
                    "INSERT INTO roles (sid, service_sid, data) VALUES (?1, ?2, ?3)",
                    params![role_sid, sid, role],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn get_service(&self, sid: ServiceSid) -> Result<Option<Service>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM services WHERE sid = ?1",
                [sid.to_string()],
            )
        })
        .await
    }

    async fn list_services(&self, page: &PageRequest) -> Result<Page<Service>, StoreError> {
        let page = page.clone();
        self.read(move |conn| page_of(conn, "services", "rowid", "1", vec![], &page))
            .await
    }

    async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
        let (sid, data) = (service.sid.to_string(), encode(service)?);
        self.write(move |conn| {
            match execute_cached(
                conn,
                "UPDATE services SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_service(&self, sid: ServiceSid) -> Result<bool, StoreError> {
        let sid = sid.to_string();
        self.write(move |conn| {
            let channels: Vec<String> = conn
                .prepare("SELECT sid FROM channels WHERE service_sid = ?1")?
                .query_map([&sid], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for channel in channels {
                delete_channel_rows(conn, &channel)?;
            }
            execute_cached(conn, "DELETE FROM roles WHERE service_sid = ?1", [&sid])?;
            execute_cached(conn, "DELETE FROM users WHERE service_sid = ?1", [&sid])?;
            Ok(execute_cached(conn, "DELETE FROM services WHERE sid = ?1", [&sid])? > 0)
        })
        .await
    }
}

// === impl RoleStore ===

#[async_trait]
impl RoleStore for SqliteStore {
    async fn create_role(&self, role: &Role) -> Result<(), StoreError> {
        let (sid, service, data) = (
            role.sid.to_string(),
            role.service_sid.to_string(),
            encode(role)?,
        );
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO roles (sid, service_sid, data) VALUES (?1, ?2, ?3)",
                params![sid, service, data],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "roles.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_role(
        &self,
        service: ServiceSid,
        sid: RoleSid,
    ) -> Result<Option<Role>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM roles WHERE sid = ?1 AND service_sid = ?2",
                [sid.to_string(), service.to_string()],
            )
        })
        .await
    }

    async fn list_roles(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "roles",
                "rowid",
                "service_sid = ?",
                vec![text(service)],
                &page,
            )
        })
        .await
    }

    async fn update_role(&self, role: &Role) -> Result<(), StoreError> {
        let (sid, data) = (role.sid.to_string(), encode(role)?);
        self.write(move |conn| {
            match execute_cached(
                conn,
                "UPDATE roles SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_role(&self, service: ServiceSid, sid: RoleSid) -> Result<bool, StoreError> {
        let (sid, service) = (sid.to_string(), service.to_string());
        self.write(move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM roles WHERE sid = ?1 AND service_sid = ?2",
                params![sid, service],
            )? > 0)
        })
        .await
    }
}

// === impl UserStore ===

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let args = (
            user.sid.to_string(),
            user.service_sid.to_string(),
            user.identity.clone(),
            encode(user)?,
        );
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO users (sid, service_sid, identity, data) VALUES (?1, ?2, ?3, ?4)",
                params![args.0, args.1, args.2, args.3],
            )
            .map_err(|e| {
                if is_unique_violation(&e, "users.service_sid, users.identity") {
                    StoreError::Conflict(Conflict::UserIdentity)
                } else if is_unique_violation(&e, "users.sid") {
                    StoreError::Conflict(Conflict::Sid)
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn get_user(
        &self,
        service: ServiceSid,
        sid: UserSid,
    ) -> Result<Option<User>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM users WHERE sid = ?1 AND service_sid = ?2",
                [sid.to_string(), service.to_string()],
            )
        })
        .await
    }

    async fn get_user_by_identity(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<User>, StoreError> {
        let identity = identity.to_owned();
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM users WHERE service_sid = ?1 AND identity = ?2",
                [service.to_string(), identity],
            )
        })
        .await
    }

    async fn list_users(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "users",
                "rowid",
                "service_sid = ?",
                vec![text(service)],
                &page,
            )
        })
        .await
    }

    async fn count_users(&self, service: ServiceSid) -> Result<u64, StoreError> {
        let service = service.to_string();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM users WHERE service_sid = ?1")?
                .query_row([service], |r| r.get(0))?;
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let (sid, data) = (user.sid.to_string(), encode(user)?);
        self.write(move |conn| {
            match execute_cached(
                conn,
                "UPDATE users SET data = ?2 WHERE sid = ?1",
                params![sid, data],
            )? {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_user(&self, service: ServiceSid, sid: UserSid) -> Result<bool, StoreError> {
        let (sid, service) = (sid.to_string(), service.to_string());
        self.write(move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM users WHERE sid = ?1 AND service_sid = ?2",
                params![sid, service],
            )? > 0)
        })
        .await
    }
}

// === impl ChannelStore ===

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn commit(&self, commit: &ChannelCommit) -> Result<(), StoreError> {
        let commit = commit.clone();
        let retention = self.retention();
        self.write(move |conn| commit_channel(conn, &commit, retention))
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
        self.read(move |conn| user_channels::memberships_page(conn, service, &identity, &page))
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
        self.read(move |conn| user_channels::user_invites_page(conn, service, &identity, &page))
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

// === impl CredentialStore ===

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let (sid, data) = (credential.sid.to_string(), encode(credential)?);
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO credentials (sid, data) VALUES (?1, ?2)
                 ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
                params![sid, data],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_credential(&self, sid: CredentialSid) -> Result<Option<Credential>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM credentials WHERE sid = ?1",
                [sid.to_string()],
            )
        })
        .await
    }

    async fn list_credentials(&self, page: &PageRequest) -> Result<Page<Credential>, StoreError> {
        let page = page.clone();
        self.read(move |conn| page_of(conn, "credentials", "rowid", "1", vec![], &page))
            .await
    }

    async fn delete_credential(&self, sid: CredentialSid) -> Result<bool, StoreError> {
        let sid = sid.to_string();
        self.write(move |conn| {
            Ok(execute_cached(conn, "DELETE FROM credentials WHERE sid = ?1", [sid])? > 0)
        })
        .await
    }
}

// === impl WebhookStore ===

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, webhook: &ChannelWebhook) -> Result<(), StoreError> {
        let args = (
            webhook.sid.to_string(),
            webhook.channel_sid.to_string(),
            encode(webhook)?,
        );
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO webhooks (sid, channel_sid, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sid) DO UPDATE SET data = excluded.data",
                params![args.0, args.1, args.2],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<Option<ChannelWebhook>, StoreError> {
        self.read(move |conn| {
            get_one(
                conn,
                "SELECT data FROM webhooks WHERE sid = ?1 AND channel_sid = ?2",
                [sid.to_string(), channel.to_string()],
            )
        })
        .await
    }

    async fn list_webhooks(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<ChannelWebhook>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            page_of(
                conn,
                "webhooks",
                "rowid",
                "channel_sid = ?",
                vec![text(channel)],
                &page,
            )
        })
        .await
    }

    async fn delete_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<bool, StoreError> {
        let (sid, channel) = (sid.to_string(), channel.to_string());
        self.write(move |conn| {
            Ok(execute_cached(
                conn,
                "DELETE FROM webhooks WHERE sid = ?1 AND channel_sid = ?2",
                params![sid, channel],
            )? > 0)
        })
        .await
    }
}
