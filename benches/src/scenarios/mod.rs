//! The scenarios, one module each; `fanout` and `room` share [`broadcast`].

pub mod broadcast;
pub mod connect;
pub mod history;
pub mod idle;
pub mod rest;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters shown while a run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    /// Sent.
    pub sent: AtomicU64,
    /// Acknowledged.
    pub acked: AtomicU64,
    /// Delivered.
    pub delivered: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    /// Connections open.
    pub connections: AtomicU64,
    /// When the newest delivery arrived, in microseconds since the epoch.
    pub last_delivery_us: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    /// Prints a line every second to stderr until [`Progress::finish`].
    pub fn start(self: &Arc<Self>, scenario: &'static str, enabled: bool) {
        if !enabled {
            return;
        }
        let progress = self.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !progress.done.load(Ordering::Relaxed) {
                tick.tick().await;
                eprintln!(
                    "[{scenario} {:>5.1}s] connections {} sent {} acked {} delivered {} errors {}",
                    started.elapsed().as_secs_f64(),
                    progress.connections.load(Ordering::Relaxed),
                    progress.sent.load(Ordering::Relaxed),
                    progress.acked.load(Ordering::Relaxed),
                    progress.delivered.load(Ordering::Relaxed),
                    progress.errors.load(Ordering::Relaxed),
                );
            }
        });
    }

    /// Stops printing.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// A unique name for this run's service and channels.
pub fn run_name(scenario: &str) -> String {
    format!("confab-bench-{scenario}-{:x}", crate::conn::now_micros())
}

/// A body of `size` bytes that starts with the send time in microseconds.
pub fn body(size: usize) -> String {
    let mut body = format!("{}|", crate::conn::now_micros());
    if body.len() < size {
        body.push_str(&"x".repeat(size - body.len()));
    }
    body
}

/// The send time at the start of a body.
pub fn sent_at(body: &str) -> Option<u64> {
    body.split('|').next()?.parse().ok()
}
