//! The schema and its migrations. `PRAGMA user_version` records how many migrations ran; each
//! migration runs once, in order, inside one transaction with the version bump.

use rusqlite::Connection;

use crate::error::StoreError;

/// Migrations in order. Append only: a released migration never changes.
///
/// Rows keep their lookup and ordering columns in the clear and the rest of the record as JSON
/// in `data`. Lists page by `rowid`, which upserts (`ON CONFLICT DO UPDATE`) keep stable.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE services (
    sid TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE roles (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX roles_by_service ON roles(service_sid);
CREATE TABLE users (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL,
    identity TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (service_sid, identity)
);
CREATE TABLE channels (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL,
    unique_name TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (service_sid, unique_name)
);
CREATE INDEX channels_by_service ON channels(service_sid, kind);
CREATE TABLE members (
    sid TEXT PRIMARY KEY,
    channel_sid TEXT NOT NULL,
    service_sid TEXT NOT NULL,
    identity TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (channel_sid, identity)
);
CREATE INDEX members_by_identity ON members(service_sid, identity);
CREATE TABLE messages (
    channel_sid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    sid TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    PRIMARY KEY (channel_sid, idx)
) WITHOUT ROWID;
CREATE TABLE invites (
    sid TEXT PRIMARY KEY,
    channel_sid TEXT NOT NULL,
    service_sid TEXT NOT NULL,
    identity TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (channel_sid, identity)
);
CREATE INDEX invites_by_identity ON invites(service_sid, identity);
CREATE TABLE channel_events (
    channel_sid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (channel_sid, seq)
) WITHOUT ROWID;
CREATE TABLE credentials (
    sid TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE webhooks (
    sid TEXT PRIMARY KEY,
    channel_sid TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX webhooks_by_channel ON webhooks(channel_sid);
"#,
    r#"
CREATE TABLE webhook_jobs (
    sid TEXT PRIMARY KEY,
    due INTEGER NOT NULL,
    created INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX webhook_jobs_by_due ON webhook_jobs(due);
"#,
    r#"
CREATE TABLE media (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL,
    channel_sid TEXT,
    message_sid TEXT,
    data TEXT NOT NULL
);
CREATE INDEX media_by_channel ON media(channel_sid) WHERE channel_sid IS NOT NULL;
"#,
    // The sweep of uploads never sent finds them by age. Uploads from before this migration
    // count from the upgrade, so none is swept sooner than the TTL after it.
    r#"
ALTER TABLE media ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
UPDATE media SET created = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX media_by_service ON media(service_sid);
CREATE INDEX media_unattached ON media(created) WHERE message_sid IS NULL;
"#,
    // Messages and channel events in the order they arrive, found through small indexes. Kept
    // clustered by channel (WITHOUT ROWID), a batch of writes over many channels changed the
    // last page of each channel's run in both tables, and a page of these ~500-byte rows split
    // every few inserts; appended, the rows of a batch share their pages and only the indexes'
    // entries (~50 bytes) go to each channel's place. Log frames per message into 1,000
    // channels: 7.0 → 3.9 in benches/sqlite/layout_model.py, 8.5 → 2.7 measured in the node
    // (docs/benchmarks.md). Old rows are copied in channel order, so the history that existed
    // before the upgrade stays together.
    r#"
CREATE TABLE messages_by_arrival (
    channel_sid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    sid TEXT NOT NULL,
    data TEXT NOT NULL
);
INSERT INTO messages_by_arrival (channel_sid, idx, sid, data)
    SELECT channel_sid, idx, sid, data FROM messages ORDER BY channel_sid, idx;
DROP TABLE messages;
ALTER TABLE messages_by_arrival RENAME TO messages;
CREATE UNIQUE INDEX messages_by_channel ON messages(channel_sid, idx);
CREATE UNIQUE INDEX messages_by_sid ON messages(sid);
CREATE TABLE channel_events_by_arrival (
    channel_sid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
INSERT INTO channel_events_by_arrival (channel_sid, seq, data)
    SELECT channel_sid, seq, data FROM channel_events ORDER BY channel_sid, seq;
DROP TABLE channel_events;
ALTER TABLE channel_events_by_arrival RENAME TO channel_events;
CREATE UNIQUE INDEX channel_events_by_channel ON channel_events(channel_sid, seq);
"#,
];

/// Brings the database up to the newest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_from_before_the_age_column_count_from_the_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().take(3).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .unwrap();
        }
        conn.execute(
            "INSERT INTO media (sid, service_sid, data) VALUES ('ME1', 'IS1', '{}')",
            [],
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let created: i64 = conn
            .query_row("SELECT created FROM media WHERE sid = 'ME1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            created > now_ms - 60_000 && created <= now_ms + 1_000,
            "{created}"
        );
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn messages_and_events_keep_their_rows_and_keys_in_arrival_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().take(4).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO messages VALUES ('CH2', 0, 'IM3', 'c'), ('CH1', 1, 'IM2', 'b'),
                 ('CH1', 0, 'IM1', 'a');
             INSERT INTO channel_events VALUES ('CH1', 2, 'y'), ('CH1', 1, 'x');",
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let column = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        // Copied in channel order, then found by channel and index or SID as before.
        assert_eq!(
            column("SELECT data FROM messages ORDER BY rowid"),
            ["a", "b", "c"]
        );
        assert_eq!(
            column("SELECT data FROM messages WHERE channel_sid = 'CH1' ORDER BY idx"),
            ["a", "b"]
        );
        assert_eq!(column("SELECT data FROM messages WHERE sid = 'IM3'"), ["c"]);
        assert_eq!(
            column("SELECT data FROM channel_events WHERE channel_sid = 'CH1' AND seq > 1"),
            ["y"]
        );
        // The keys stay unique: an upsert on them still finds its row.
        conn.execute(
            "INSERT INTO messages (channel_sid, idx, sid, data) VALUES ('CH1', 1, 'IM2', 'b2')
             ON CONFLICT (channel_sid, idx) DO UPDATE SET data = excluded.data",
            [],
        )
        .unwrap();
        assert_eq!(
            column("SELECT data FROM messages WHERE channel_sid = 'CH1' ORDER BY idx"),
            ["a", "b2"]
        );
        for duplicate in [
            "INSERT INTO messages VALUES ('CH9', 0, 'IM1', 'dup')",
            "INSERT INTO channel_events VALUES ('CH1', 2, 'dup')",
        ] {
            assert!(conn.execute(duplicate, []).is_err(), "{duplicate}");
        }
    }
}
