//! The webhook job queue on SQLite: table `webhook_jobs`, one row per job with its due time in
//! the clear. Jobs of a channel commit are inserted by the commit's own transaction
//! (`put_jobs`, called from `channels::commit_channel`).

use async_trait::async_trait;
use confab_domain::{Timestamp, WebhookJob, WebhookJobSid};
use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::error::StoreError;
use crate::traits::WebhookJobStore;

/// Inserts jobs due at `due`, inside the caller's transaction.
pub(super) fn put_jobs(
    conn: &Connection,
    jobs: &[WebhookJob],
    due: Timestamp,
) -> Result<(), StoreError> {
    for job in jobs {
        conn.prepare_cached(
            "INSERT INTO webhook_jobs (sid, due, created, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sid) DO UPDATE SET due = excluded.due, data = excluded.data",
        )?
        .execute(params![
            job.sid.to_string(),
            due.millis(),
            job.created.millis(),
            serde_json::to_string(job)?
        ])?;
    }
    Ok(())
}

#[async_trait]
impl WebhookJobStore for SqliteStore {
    async fn enqueue_jobs(&self, jobs: &[WebhookJob], due: Timestamp) -> Result<(), StoreError> {
        let jobs = jobs.to_vec();
        self.write(move |conn| put_jobs(conn, &jobs, due)).await
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE webhook_jobs SET due = ?1 WHERE sid IN
                     (SELECT sid FROM webhook_jobs WHERE due <= ?2 ORDER BY due LIMIT ?3)
                 RETURNING sid, data",
            )?;
            let rows = stmt.query_map(
                params![hold_until.millis(), now.millis(), limit as i64],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )?;
            let mut jobs = Vec::new();
            let mut unreadable = Vec::new();
            for row in rows {
                let (sid, data) = row?;
                match serde_json::from_str(&data) {
                    Ok(job) => jobs.push(job),
                    Err(e) => {
                        tracing::error!(job = %sid, error = %e, "dropping an unreadable webhook job");
                        unreadable.push(sid);
                    }
                }
            }
            drop(stmt);
            // An unreadable job would otherwise stay the oldest due and come back forever.
            for sid in unreadable {
                conn.prepare_cached("DELETE FROM webhook_jobs WHERE sid = ?1")?
                    .execute([sid])?;
            }
            Ok(jobs)
        })
        .await
    }

    async fn retry_job(&self, job: &WebhookJob, due: Timestamp) -> Result<(), StoreError> {
        let sid = job.sid.to_string();
        let data = serde_json::to_string(job)?;
        self.write(move |conn| {
            conn.prepare_cached("UPDATE webhook_jobs SET due = ?1, data = ?2 WHERE sid = ?3")?
                .execute(params![due.millis(), data, sid])?;
            Ok(())
        })
        .await
    }

    async fn finish_job(&self, sid: WebhookJobSid) -> Result<(), StoreError> {
        let sid = sid.to_string();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM webhook_jobs WHERE sid = ?1")?
                .execute([sid])?;
            Ok(())
        })
        .await
    }

    async fn pending_jobs(&self) -> Result<(u64, Option<Timestamp>), StoreError> {
        self.read(|conn| {
            let (count, oldest): (i64, Option<i64>) =
                conn.query_row("SELECT COUNT(*), MIN(created) FROM webhook_jobs", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok((count as u64, oldest.map(Timestamp)))
        })
        .await
    }
}
