//! The result of a run, as printed and written with `--json`.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// A histogram of microseconds, 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .expect("constant bounds within hdrhistogram's range")
}

/// What a run measured. Counts are totals over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// Connections (or workers).
    pub connections: usize,
    /// Channels used.
    pub channels: usize,
    /// Seconds spent sending (or measuring).
    pub duration_secs: f64,
    /// Messages (or requests) sent.
    pub sent: u64,
    /// Sends acknowledged by the server.
    pub acked: u64,
    /// Deliveries received.
    pub delivered: u64,
    /// Deliveries that should have been received (acknowledged messages × receivers).
    pub expected_deliveries: u64,
    /// Deliveries per second while sending.
    pub delivered_per_sec: f64,
    /// Sends (or requests, pages, connections) per second.
    pub sent_per_sec: f64,
    /// Send-to-delivery latency (or request latency).
    pub latency_ms: Latency,
    /// Acknowledged messages a receiver never got.
    pub lost: u64,
    /// Messages a receiver got more than once.
    pub duplicates: u64,
    /// Messages a receiver got after one with a higher index.
    pub out_of_order: u64,
    /// Refused or failed operations.
    pub errors: u64,
    /// `idle`: node resident memory per connection, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_connection_bytes: Option<f64>,
    /// `idle`: node resident memory before and after connecting, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<(u64, u64)>,
    /// `fanout`, `room` with `--server-pid`: the servers' CPU seconds (user and system) from
    /// the first send to the last delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_secs: Option<f64>,
    /// The same per 100,000 deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_per_100k: Option<f64>,
    /// Of that, the kernel's part (system time: system calls, the network stack, scheduling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_system_cpu_per_100k: Option<f64>,
}

impl Report {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let l = &self.latency_ms;
        let mut text = format!(
            "{}: {} connections, {} channels, {:.1}s\n  sent {} ({:.0}/s), acked {}, delivered {} of {} ({:.0}/s)\n  latency ms p50 {:.2} p90 {:.2} p99 {:.2} p999 {:.2} max {:.2}\n  lost {} duplicates {} out_of_order {} errors {}",
            self.scenario,
            self.connections,
            self.channels,
            self.duration_secs,
            self.sent,
            self.sent_per_sec,
            self.acked,
            self.delivered,
            self.expected_deliveries,
            self.delivered_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.errors,
        );
        if let Some(per) = self.rss_per_connection_bytes {
            text.push_str(&format!("\n  node RSS per connection: {:.0} bytes", per));
        }
        if let (Some(cpu), Some(per)) = (self.server_cpu_secs, self.server_cpu_per_100k) {
            text.push_str(&format!(
                "\n  server CPU {cpu:.2} s over the send phase, {per:.2} s per 100,000 deliveries"
            ));
            if let Some(system) = self.server_system_cpu_per_100k {
                text.push_str(&format!(" ({system:.2} s of it in the kernel)"));
            }
        }
        text
    }
}
