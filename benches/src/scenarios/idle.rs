//! `idle`: N connections that do nothing; the node's resident memory per connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{run_name, Progress};
use crate::conn::{Conn, OnEvent};
use crate::report::Report;
use crate::rss::{pid_listening_on, rss_bytes};
use crate::setup::Target;
use crate::{BenchError, Options};

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Report, BenchError> {
    let pid = match options.node_pid {
        Some(pid) => Some(pid),
        None => target
            .urls
            .first()
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .and_then(pid_listening_on),
    };
    let service = target.create_service(&run_name("idle")).await?;
    let progress = Arc::new(Progress::default());
    progress.start("idle", options.progress);
    let before = pid.and_then(rss_bytes);
    let started = Instant::now();
    let on_event: OnEvent = Arc::new(|_| {});
    let opened: Vec<Result<Conn, BenchError>> = futures::stream::iter(0..options.connections)
        .map(|i| {
            let on_event = on_event.clone();
            let progress = progress.clone();
            let token = target.token(&format!("idle{i}"), &service);
            async move {
                let conn = Conn::open(target, &token?, on_event).await;
                if conn.is_ok() {
                    progress.connections.fetch_add(1, Ordering::Relaxed);
                } else {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                }
                conn
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let open = opened.iter().filter(|c| c.is_ok()).count();
    // Idle for a while so that the node's memory settles.
    tokio::time::sleep(options.duration.min(Duration::from_secs(30))).await;
    let after = pid.and_then(rss_bytes);
    progress.finish();
    for conn in opened.iter().flatten() {
        conn.close();
    }
    let mut report = Report {
        scenario: "idle".into(),
        connections: open,
        duration_secs: started.elapsed().as_secs_f64(),
        errors: progress.errors.load(Ordering::Relaxed),
        ..Report::default()
    };
    if let (Some(before), Some(after)) = (before, after) {
        report.rss_bytes = Some((before, after));
        report.rss_per_connection_bytes =
            Some(after.saturating_sub(before) as f64 / open.max(1) as f64);
    } else {
        eprintln!("node RSS unknown: pass --node-pid (the node must run on this machine)");
    }
    Ok(report)
}
