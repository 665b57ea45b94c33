//! `confab-bench`: run a load scenario against Confab nodes and report (and verify) the result.
//!
//! ```sh
//! confab-bench fanout --url http://127.0.0.1:8080 --connections 1000 --channels 100 --rate 5000 --duration 20 --json out.json
//! ```
//! Credentials come from `CONFAB_ACCOUNT_SID`, `CONFAB_AUTH_TOKEN`, `CONFAB_API_KEY_SID`,
//! `CONFAB_API_KEY_SECRET`, or from the node's `--data-dir`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use confab_bench::{run, Options, Scenario, Target};

#[derive(Debug, Parser)]
#[command(
    name = "confab-bench",
    about = "Load scenarios against Confab nodes, with delivery verification"
)]
struct Cli {
    /// The scenario.
    #[arg(value_enum)]
    scenario: Scenario,
    /// A node's base URL; repeat to spread connections over cluster nodes.
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// Connections (workers for history and rest).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Channels (fanout, rest).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Total messages per second (fanout, room), or pages per second (history).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds to send (or to stay idle, or to read).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Seconds to wait for outstanding deliveries after sending stops.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<String>,
    /// Loopback source addresses to spread sockets over (0: one per 20,000 connections).
    #[arg(long, default_value_t = 0)]
    source_addrs: usize,
    /// The node's PID, for `idle` (found from the listening port when absent).
    #[arg(long)]
    node_pid: Option<u32>,
    /// A server process whose CPU time to count over the send phase (fanout, room); repeat
    /// for several nodes (and Redis).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// The node's data directory, to read its generated credentials.
    #[arg(long)]
    data_dir: Option<String>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let credentials = match Target::credentials_from_env(cli.data_dir.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("confab-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let target = Target::new(cli.urls.clone(), credentials, cli.source_addrs);
    let options = Options {
        connections: cli.connections,
        channels: cli.channels,
        rate: cli.rate,
        duration: Duration::from_secs(cli.duration),
        payload: cli.payload,
        drain: Duration::from_secs(cli.drain),
        progress: !cli.quiet,
        source_addrs: cli.source_addrs,
        node_pid: cli.node_pid,
        server_pids: cli.server_pids.clone(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("confab-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.scenario, &target, &options)) {
        Ok(report) => {
            println!("{}", report.summary());
            if let Some(path) = cli.json {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("confab-bench: cannot write {path}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("confab-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
