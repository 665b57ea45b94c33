//! The webhook metrics, registered into the registry they are handed.

use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Metrics of webhook calls.
#[derive(Debug, Clone)]
pub struct WebhookMetrics {
    /// `confab_webhook_attempts_total{event,outcome}`: calls by Twilio event name and outcome:
    /// `ok` (2xx); for pre-events `refused` (another status: the action was refused),
    /// `timeout` (no answer in time) and `error` (no connection); for post-events `retry` (the
    /// attempt failed and the job is due again later), `dropped` (given up: retries spent, an
    /// answer Twilio does not retry, or a URL not allowed) and `deferred` (its URL had too
    /// many calls waiting: put back without an attempt).
    pub attempts: IntCounterVec,
    /// `confab_webhook_duration_seconds{phase}`: how long a call took (`pre`, `post`).
    pub duration: HistogramVec,
    /// `confab_webhook_jobs_pending`: post-event jobs stored and not yet delivered (all nodes).
    pub pending: IntGauge,
    /// `confab_webhook_oldest_pending_seconds`: age of the oldest stored job (0 when none).
    pub oldest_pending: Gauge,
}

impl WebhookMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let attempts = IntCounterVec::new(
            Opts::new(
                "confab_webhook_attempts_total",
                "Webhook calls by event and outcome: ok, refused, timeout, error, retry, dropped, deferred.",
            ),
            &["event", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "confab_webhook_duration_seconds",
                "Webhook call duration, by phase (pre, post).",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["phase"],
        )?;
        let pending = IntGauge::new(
            "confab_webhook_jobs_pending",
            "Post-event webhook jobs stored and not yet delivered (all nodes).",
        )?;
        let oldest_pending = Gauge::new(
            "confab_webhook_oldest_pending_seconds",
            "Age of the oldest stored post-event webhook job, in seconds (0 when none).",
        )?;
        // Every series exists from the start (at 0), so that rates and the alerts see a call's
        // first failure, and the dashboard has its series before any webhook is configured.
        for event in crate::HookEvent::ALL {
            let outcomes: &[&str] = if event.is_pre() {
                &["ok", "refused", "timeout", "error"]
            } else {
                &["ok", "retry", "dropped", "deferred"]
            };
            for outcome in outcomes {
                attempts.with_label_values(&[event.name(), outcome]);
            }
        }
        for phase in ["pre", "post"] {
            duration.with_label_values(&[phase]);
        }
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(oldest_pending.clone()))?;
        Ok(Self {
            attempts,
            duration,
            pending,
            oldest_pending,
        })
    }
}
