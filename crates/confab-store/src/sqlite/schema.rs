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
}
