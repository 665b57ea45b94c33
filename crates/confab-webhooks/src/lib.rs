//! `confab-webhooks`: Twilio's Programmable Chat webhooks.
//!
//! It owns the webhook wire format (event names and parameters, [`events`]; where each goes,
//! [`targets`]; what a pre-event
//! answer may change, [`answer`]; the `X-Twilio-Signature`, [`Signer`]) and the calls:
//! [`Webhooks::pre`] calls a pre-event target and waits for its verdict; post-event calls are
//! [`confab_domain::WebhookJob`]s, stored by the store with the events they report and
//! delivered by [`Webhooks`] at least once: the committing node hands them to [`Webhooks::submit`]
//! at once, and every node's poller claims the jobs whose hold ran out (a retry, or a job whose
//! node died) from the store's queue. Who may act, and when a webhook fires, is decided by the
//! channel actor and the application layer; this crate only calls.

pub mod answer;
mod call;
pub mod events;
mod metrics;
mod signature;
pub mod targets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_domain::{Timestamp, WebhookJob};
use confab_store::Store;
use tokio::sync::Semaphore;

pub use answer::PreHookChange;
pub use events::{Actor, HookEvent, Params};
pub use metrics::WebhookMetrics;
pub use signature::Signer;
pub use targets::Target;

use call::{Caller, Outcome};

/// Why a pre-event webhook refused an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum WebhookError {
    /// It answered with a status other than 2xx (Twilio error 50056).
    #[error("the pre-event webhook refused the action (HTTP {0})")]
    Refused(u16),
    /// It did not answer in time, retries included (Twilio error 50076).
    #[error("the pre-event webhook did not answer in time")]
    Timeout,
    /// It could not be called (Twilio error 50057).
    #[error("the pre-event webhook could not be called: {0}")]
    Failed(String),
}

/// Settings of webhook calls.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The account SID sent as `AccountSid`.
    pub account_sid: String,
    /// The account's auth token: the key of `X-Twilio-Signature`.
    pub auth_token: String,
    /// How long one call may take (Twilio: 5 s).
    pub timeout: Duration,
    /// How long one pre-event decision may take, all its attempts together (`None`: each
    /// attempt its `timeout`). In a cluster it stays below the time a node waits for a
    /// forwarded command's answer, so that a slow webhook never makes the sender retry.
    pub pre_budget: Option<Duration>,
    /// Calls in flight to one URL at most; more wait (up to four times as many), and beyond
    /// that jobs are put back for later, so one slow URL holds neither memory nor the others.
    pub per_url_concurrency: usize,
    /// Wait before the first retry of a post-event job; it doubles per attempt.
    pub retry_base: Duration,
    /// Longest wait between two attempts.
    pub retry_max: Duration,
    /// How often each node looks for due jobs.
    pub poll_interval: Duration,
    /// How long a claimed job stays hidden from other nodes' claims: longer than a job can
    /// spend in this node's hands (waiting for its URL, then one call).
    pub claim_hold: Duration,
    /// Jobs this node holds in memory at most (waiting or in flight).
    pub max_in_memory: usize,
    /// When not empty, the only hosts webhooks may call (loopback and private addresses are
    /// allowed otherwise, as self-hosted receivers usually live there).
    pub allowed_hosts: Vec<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: String::new(),
            timeout: Duration::from_secs(5),
            pre_budget: None,
            per_url_concurrency: 8,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            claim_hold: Duration::from_secs(60),
            max_in_memory: 10_000,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Calls in flight and waiting for one URL.
#[derive(Debug)]
struct UrlSlot {
    permits: Semaphore,
    waiting: AtomicUsize,
}

struct Inner {
    config: WebhookConfig,
    caller: Caller,
    store: Arc<dyn Store>,
    metrics: Option<WebhookMetrics>,
    urls: Mutex<HashMap<String, Arc<UrlSlot>>>,
    in_memory: AtomicUsize,
    closed: AtomicBool,
    runtime: tokio::runtime::Handle,
}

/// The node's webhook caller and post-event delivery. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("in_memory", &self.inner.in_memory.load(Ordering::Relaxed))
            .finish()
    }
}

/// The shortest time worth another pre-event attempt within its budget.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    Timestamp(millis)
}

fn after(base: Timestamp, wait: Duration) -> Timestamp {
    Timestamp(base.millis().saturating_add(wait.as_millis() as i64))
}

impl Webhooks {
    /// Starts webhook delivery on the current tokio runtime: deliveries run there, and a poller
    /// claims due jobs from `store` until [`Webhooks::shutdown`].
    pub fn start(
        store: Arc<dyn Store>,
        config: WebhookConfig,
        metrics: Option<WebhookMetrics>,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .user_agent(concat!("Confab-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        let caller = Caller {
            client,
            signer: Signer::new(&config.auth_token),
            allowed_hosts: config.allowed_hosts.clone(),
        };
        let webhooks = Self {
            inner: Arc::new(Inner {
                caller,
                store,
                metrics,
                urls: Mutex::new(HashMap::new()),
                in_memory: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                runtime: tokio::runtime::Handle::current(),
                config,
            }),
        };
        let poller = Arc::downgrade(&webhooks.inner);
        webhooks.inner.runtime.spawn(async move {
            let mut tick = 0u64;
            loop {
                let Some(interval) = poller.upgrade().map(|i| i.config.poll_interval) else {
                    return;
                };
                tokio::time::sleep(interval).await;
                let Some(inner) = poller.upgrade() else {
                    return;
                };
                if inner.closed.load(Ordering::Relaxed) {
                    return;
                }
                let webhooks = Webhooks { inner };
                webhooks.claim_due().await;
                if tick.is_multiple_of(5) {
                    webhooks.report_backlog().await;
                }
                tick += 1;
            }
        });
        Ok(webhooks)
    }

    /// The account SID webhooks carry.
    pub fn account_sid(&self) -> &str {
        &self.inner.config.account_sid
    }

    /// When a job committed now becomes claimable by other nodes.
    pub fn jobs_due(&self) -> Timestamp {
        after(now(), self.inner.config.claim_hold)
    }

    /// Stops the poller; deliveries in flight finish, jobs not delivered stay stored.
    pub fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
    }

    /// Calls a pre-event target and waits for its verdict: `Ok` with the changes a `2xx` answer
    /// asked for, or why the action is refused. A timeout, 429, 503, 504 or a failed
    /// connection is tried again, up to the target's retry count.
    pub async fn pre(
        &self,
        target: &Target,
        event: HookEvent,
        params: &Params,
    ) -> Result<PreHookChange, WebhookError> {
        let config = &self.inner.config;
        let deadline = config.pre_budget.map(|b| std::time::Instant::now() + b);
        let mut attempt = 0;
        loop {
            let timeout = match deadline {
                Some(deadline) => config
                    .timeout
                    .min(deadline.saturating_duration_since(std::time::Instant::now())),
                None => config.timeout,
            };
            let (outcome, took) = self
                .inner
                .caller
                .call(&target.url, target.method, params, None, timeout)
                .await;
            attempt += 1;
            // Another attempt only with time for it: one cut to a few milliseconds would turn
            // a refusal or a failed connection into a timeout.
            let time_left = deadline.is_none_or(|d| {
                d.saturating_duration_since(std::time::Instant::now()) >= MIN_ATTEMPT
            });
            let label = match &outcome {
                Outcome::Ok(_) => "ok",
                Outcome::Status(_) => "refused",
                Outcome::Timeout => "timeout",
                Outcome::Error(_) | Outcome::NotAllowed(_) => "error",
            };
            self.record(event.name(), label, "pre", Some(took));
            if outcome.retryable() && attempt <= target.retries && time_left {
                continue;
            }
            return match outcome {
                Outcome::Ok(body) => Ok(PreHookChange::parse(&body)),
                Outcome::Status(status) => Err(WebhookError::Refused(status)),
                Outcome::Timeout => Err(WebhookError::Timeout),
                Outcome::Error(e) | Outcome::NotAllowed(e) => {
                    tracing::warn!(url = %target.url, event = event.name(), error = %e,
                        "pre-event webhook failed: the action is refused");
                    Err(WebhookError::Failed(e))
                }
            };
        }
    }

    /// Delivers jobs just committed by this node, without waiting. Jobs beyond what this node
    /// may hold stay in the store, where a poller claims them when their hold runs out.
    pub fn submit(&self, jobs: Vec<WebhookJob>) {
        for job in jobs {
            if !self.reserve() {
                return;
            }
            let webhooks = self.clone();
            self.inner
                .runtime
                .spawn(async move { webhooks.deliver(job).await });
        }
    }

    fn reserve(&self) -> bool {
        let max = self.inner.config.max_in_memory;
        self.inner
            .in_memory
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    async fn claim_due(&self) {
        let room = self
            .inner
            .config
            .max_in_memory
            .saturating_sub(self.inner.in_memory.load(Ordering::Acquire))
            .min(256);
        if room == 0 {
            return;
        }
        let at = now();
        let claimed = self
            .inner
            .store
            .claim_jobs(at, after(at, self.inner.config.claim_hold), room)
            .await;
        match claimed {
            Ok(jobs) => self.submit(jobs),
            Err(e) => tracing::warn!(error = %e, "cannot claim webhook jobs"),
        }
    }

    async fn report_backlog(&self) {
        let Some(m) = &self.inner.metrics else {
            return;
        };
        match self.inner.store.pending_jobs().await {
            Ok((count, oldest)) => {
                m.pending.set(count as i64);
                let age = oldest.map_or(0, |o| (now().millis() - o.millis()).max(0));
                m.oldest_pending.set(age as f64 / 1000.0);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count webhook jobs"),
        }
    }

    fn slot(&self, url: &str) -> Arc<UrlSlot> {
        let mut urls = match self.inner.urls.lock() {
            Ok(urls) => urls,
            Err(poisoned) => poisoned.into_inner(),
        };
        if urls.len() > 10_000 {
            // Forget the URLs no delivery holds (the map's own `Arc` is the only one): a bound
            // on the map (held slots are at most the jobs in memory), and a delivery between
            // `slot()` and its permit keeps its slot, so no URL ever gets a second semaphore.
            urls.retain(|_, s| Arc::strong_count(s) > 1);
        }
        urls.entry(url.to_owned())
            .or_insert_with(|| {
                Arc::new(UrlSlot {
                    permits: Semaphore::new(self.inner.config.per_url_concurrency.max(1)),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// One attempt of a job, then the store learns its fate: finished, or due again later.
    async fn deliver(&self, mut job: WebhookJob) {
        let store = &self.inner.store;
        let slot = self.slot(&job.url);
        let per_url = self.inner.config.per_url_concurrency.max(1);
        if slot.waiting.fetch_add(1, Ordering::AcqRel) >= per_url * 4 {
            slot.waiting.fetch_sub(1, Ordering::AcqRel);
            self.record(&job.event_type, "deferred", "post", None);
            let due = after(now(), self.inner.config.retry_base);
            if let Err(e) = store.retry_job(&job, due).await {
                tracing::warn!(job = %job.sid, error = %e, "cannot put a webhook job back");
            }
            self.inner.in_memory.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let permit = slot.permits.acquire().await;
        slot.waiting.fetch_sub(1, Ordering::AcqRel);
        let token = job.sid.to_string();
        let (outcome, took) = self
            .inner
            .caller
            .call(
                &job.url,
                job.method,
                &job.params,
                Some(&token),
                self.inner.config.timeout,
            )
            .await;
        drop(permit);
        job.attempts += 1;
        let result = match &outcome {
            Outcome::Ok(_) => {
                self.record(&job.event_type, "ok", "post", Some(took));
                store.finish_job(job.sid).await
            }
            outcome if outcome.retryable() && job.may_retry() => {
                self.record(&job.event_type, "retry", "post", Some(took));
                let wait = self
                    .inner
                    .config
                    .retry_base
                    .saturating_mul(1 << (job.attempts - 1).min(16))
                    .min(self.inner.config.retry_max);
                store.retry_job(&job, after(now(), wait)).await
            }
            outcome => {
                self.record(&job.event_type, "dropped", "post", Some(took));
                tracing::warn!(job = %job.sid, url = %job.url, event = %job.event_type,
                    attempts = job.attempts, outcome = ?outcome,
                    "post-event webhook given up");
                store.finish_job(job.sid).await
            }
        };
        if let Err(e) = result {
            // The job stays stored and comes back when its hold runs out.
            tracing::warn!(job = %job.sid, error = %e, "cannot record a webhook job's outcome");
        }
        self.inner.in_memory.fetch_sub(1, Ordering::AcqRel);
    }

    fn record(&self, event: &str, outcome: &str, phase: &str, took: Option<Duration>) {
        let Some(m) = &self.inner.metrics else {
            return;
        };
        // Only Twilio's names become label values: the set stays bounded.
        let event = HookEvent::from_name(event).map_or("other", HookEvent::name);
        m.attempts.with_label_values(&[event, outcome]).inc();
        if let Some(took) = took {
            m.duration
                .with_label_values(&[phase])
                .observe(took.as_secs_f64());
        }
    }
}
