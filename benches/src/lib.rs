//! `confab-bench`: Confab's load harness.
//!
//! Scenarios ([`Scenario`]) run against one or more running nodes (`--url`, repeatable, to
//! spread connections over a cluster). The harness creates its own service, channels and
//! members through REST with the node's credentials, signs its own access tokens, measures
//! end-to-end latency (send to every delivery) in HDR histograms, and verifies per channel that
//! every receiver got every acknowledged message once and in index order. It spreads client
//! sockets over several loopback source addresses so that tens of thousands of connections fit
//! in the ephemeral port range, shows progress while it runs, and stops by itself.
//!
//! The criterion micro-benchmarks live in `benches/`.

pub mod conn;
pub mod report;
pub mod rss;
pub mod scenarios;
pub mod setup;

use std::time::Duration;

pub use report::{Latency, Report};
pub use setup::Target;

/// A scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// N connections over C channels, one channel each; open-loop sends at a total rate.
    Fanout,
    /// One channel with N members; one sender broadcasting at a rate.
    Room,
    /// N idle connections: node memory per connection.
    Idle,
    /// Connect-and-init storm: connections per second.
    Connect,
    /// Paged history reads.
    History,
    /// REST message posts.
    Rest,
}

impl Scenario {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Room => "room",
            Scenario::Idle => "idle",
            Scenario::Connect => "connect",
            Scenario::History => "history",
            Scenario::Rest => "rest",
        }
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections (or concurrent workers for `history` and `rest`).
    pub connections: usize,
    /// Channels (`fanout`).
    pub channels: usize,
    /// Total messages per second (`fanout`, `room`).
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Message body size in bytes.
    pub payload: usize,
    /// How long to wait for outstanding deliveries after sending stops.
    pub drain: Duration,
    /// Print progress to stderr every second.
    pub progress: bool,
    /// Loopback source addresses to spread client sockets over (127.0.0.2, ...); 0 = automatic.
    pub source_addrs: usize,
    /// PID of the node, for `idle` (found from the listening port when absent).
    pub node_pid: Option<u32>,
    /// Server processes whose CPU time `fanout` and `room` count over the send phase (from the
    /// first send to the last delivery), to report CPU seconds per 100,000 deliveries.
    pub server_pids: Vec<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            connections: 100,
            channels: 10,
            rate: 100.0,
            duration: Duration::from_secs(10),
            payload: 100,
            drain: Duration::from_secs(10),
            progress: true,
            source_addrs: 0,
            node_pid: None,
            server_pids: Vec::new(),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the service, channels or members through REST failed.
    #[error("setup: {0}")]
    Setup(String),
    /// Connections could not be opened.
    #[error("connect: {0}")]
    Connect(String),
}

/// Runs a scenario.
pub async fn run(
    scenario: Scenario,
    target: &Target,
    options: &Options,
) -> Result<Report, BenchError> {
    match scenario {
        Scenario::Fanout => {
            scenarios::broadcast::run(scenario, target, options, options.channels.max(1)).await
        }
        Scenario::Room => scenarios::broadcast::run(scenario, target, options, 1).await,
        Scenario::Idle => scenarios::idle::run(target, options).await,
        Scenario::Connect => scenarios::connect::run(target, options).await,
        Scenario::History => scenarios::history::run(target, options).await,
        Scenario::Rest => scenarios::rest::run(target, options).await,
    }
}
