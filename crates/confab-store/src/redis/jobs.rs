//! The webhook job queue on Redis: `{p}:hook-jobs` (the records), `{p}:hook-due` (when each is
//! next due) and `{p}:hook-born` (when each was created). A channel commit's jobs are written by
//! the commit script (`JOB` operations), so they are stored with their events or not at all.

use async_trait::async_trait;
use confab_domain::{Timestamp, WebhookJob, WebhookJobSid};

use super::scripts::{CLAIM_JOBS, RETRY_JOB};
use super::{decode, encode, RedisStore};
use crate::error::StoreError;
use crate::traits::WebhookJobStore;

#[async_trait]
impl WebhookJobStore for RedisStore {
    async fn enqueue_jobs(&self, jobs: &[WebhookJob], due: Timestamp) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for job in jobs {
            let sid = job.sid.to_string();
            pipe.hset(self.key("hook-jobs"), &sid, encode(job)?)
                .ignore()
                .zadd(self.key("hook-due"), &sid, due.millis())
                .ignore()
                .zadd(self.key("hook-born"), &sid, job.created.millis())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        let claimed: Vec<String> = redis::Script::new(CLAIM_JOBS)
            .arg(self.key("hook-jobs"))
            .arg(self.key("hook-due"))
            .arg(now.millis())
            .arg(hold_until.millis())
            .arg(limit)
            .arg(self.key("hook-born"))
            .invoke_async(&mut self.conn())
            .await?;
        let mut jobs = Vec::with_capacity(claimed.len());
        for data in &claimed {
            match decode::<WebhookJob>(data) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    // An unreadable job would otherwise come back with every hold, forever.
                    let sid = serde_json::from_str::<serde_json::Value>(data)
                        .ok()
                        .and_then(|v| v["sid"].as_str().and_then(|s| s.parse().ok()));
                    tracing::error!(error = %e, job = ?sid, "dropping an unreadable webhook job");
                    if let Some(sid) = sid {
                        self.finish_job(sid).await?;
                    }
                }
            }
        }
        Ok(jobs)
    }

    async fn retry_job(&self, job: &WebhookJob, due: Timestamp) -> Result<(), StoreError> {
        let _: i64 = redis::Script::new(RETRY_JOB)
            .arg(self.key("hook-jobs"))
            .arg(self.key("hook-due"))
            .arg(job.sid.to_string())
            .arg(encode(job)?)
            .arg(due.millis())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn finish_job(&self, sid: WebhookJobSid) -> Result<(), StoreError> {
        let sid = sid.to_string();
        redis::pipe()
            .atomic()
            .hdel(self.key("hook-jobs"), &sid)
            .ignore()
            .zrem(self.key("hook-due"), &sid)
            .ignore()
            .zrem(self.key("hook-born"), &sid)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn pending_jobs(&self) -> Result<(u64, Option<Timestamp>), StoreError> {
        let born = self.key("hook-born");
        let (count, oldest): (u64, Vec<(String, f64)>) = redis::pipe()
            .zcard(&born)
            .zrange_withscores(&born, 0, 0)
            .query_async(&mut self.conn())
            .await?;
        Ok((count, oldest.first().map(|(_, at)| Timestamp(*at as i64))))
    }
}
