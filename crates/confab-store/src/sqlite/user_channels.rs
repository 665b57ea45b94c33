//! An identity's channels, read on one connection: its memberships and pending invites across
//! a service, and channels by SID. The list methods of `ChannelStore` read these one at a time;
//! `user_channels` reads all that a session's `init` needs in one hop to the blocking pool.

use confab_domain::{Channel, ChannelSid, Invite, Member, ServiceSid};
use rusqlite::Connection;

use super::rows::{get_one, page_of, text, CHANNEL_IN_SERVICE};
use crate::error::StoreError;
use crate::traits::{Page, PageRequest, UserChannels};

/// One page of an identity's rows across the service in `table` (`members`: its memberships, in
/// joining order; `invites`: its pending invites, in creation order).
pub(super) fn identity_rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    service: ServiceSid,
    identity: &str,
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let args = vec![text(service), text(identity)];
    page_of(
        conn,
        table,
        "rowid",
        "service_sid = ? AND identity = ?",
        args,
        page,
    )
}

/// Those of `sids` that exist in the service, in the order asked.
pub(super) fn channels_in(
    conn: &Connection,
    service: ServiceSid,
    sids: &[ChannelSid],
) -> Result<Vec<Channel>, StoreError> {
    let service = service.to_string();
    let mut found = Vec::with_capacity(sids.len());
    for sid in sids {
        found.extend(get_one::<Channel>(
            conn,
            CHANNEL_IN_SERVICE,
            [sid.to_string(), service.clone()],
        )?);
    }
    Ok(found)
}

/// `ChannelStore::user_channels` on one connection, as its default reads it method by method,
/// in one read transaction: one snapshot, and the log's read lock taken once, not per statement.
pub(super) fn user_channels(
    conn: &Connection,
    service: ServiceSid,
    identity: &str,
    max: usize,
) -> Result<UserChannels, StoreError> {
    let _snapshot = ReadSnapshot::begin(conn)?;
    let page = PageRequest::first(max.max(1));
    let members: Page<Member> = identity_rows(conn, "members", service, identity, &page)?;
    let invites: Page<Invite> = identity_rows(conn, "invites", service, identity, &page)?;
    let sids = UserChannels::channel_sids(&members.items, &invites.items);
    let channels = channels_in(conn, service, &sids)?;
    Ok(UserChannels::pair(
        channels,
        members.items,
        invites.items,
        max,
    ))
}

/// A read transaction on a pooled connection, ended when dropped (also on an error or a panic:
/// a connection left inside it would go back to the pool and read this snapshot for ever).
/// Through the statement cache, where `Connection::transaction` parses `BEGIN` each time.
struct ReadSnapshot<'c>(&'c Connection);

impl<'c> ReadSnapshot<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, StoreError> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Self(conn))
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        // Only reads happened: ending them commits nothing. Should that fail, a rollback still
        // ends the transaction.
        let ended = self
            .0
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        if ended.is_err() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}
