//! `history`: workers reading pages of a long channel history; pages per second and latency.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;

use super::{body, run_name, Progress};
use crate::conn::{Conn, OnEvent};
use crate::report::{histogram, Latency, Report};
use crate::setup::Target;
use crate::{BenchError, Options};

/// Messages the channel holds before reading starts.
const HISTORY: u64 = 2000;

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Report, BenchError> {
    let name = run_name("history");
    let service = target.create_service(&name).await?;
    let channel = target.create_channel(&service, &name).await?;
    let workers = options.connections.max(1);
    let members: Vec<String> = (0..workers).map(|i| format!("h{i}")).collect();
    target.add_members(&service, &channel, &members).await?;
    eprintln!("writing {HISTORY} messages");
    let path = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    let posts: Vec<Result<serde_json::Value, BenchError>> = futures::stream::iter(0..HISTORY)
        .map(|_| {
            let path = path.clone();
            async move {
                target
                    .post(&path, &[("Body", &body(options.payload))])
                    .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for post in posts {
        post?;
    }
    let progress = Arc::new(Progress::default());
    progress.start("history", options.progress);
    let latency = Arc::new(Mutex::new(histogram()));
    let deadline = Instant::now() + options.duration;
    let started = Instant::now();
    // Each worker reads at its share of `--rate` pages per second (the node limits operations
    // per connection: raise `realtime.ops_per_sec` for heavier reads).
    let period = std::time::Duration::from_secs_f64(workers as f64 / options.rate.max(0.001));
    let mut tasks = Vec::new();
    for (i, identity) in members.iter().enumerate() {
        let on_event: OnEvent = Arc::new(|_| {});
        let conn = Conn::open(target, &target.token(identity, &service)?, on_event).await?;
        progress.connections.fetch_add(1, Ordering::Relaxed);
        let channel = channel.clone();
        let progress = progress.clone();
        let latency = latency.clone();
        tasks.push(tokio::spawn(async move {
            let mut anchor = HISTORY - 1 - (i as u64 * 97) % HISTORY;
            let mut tick = tokio::time::interval(period);
            while Instant::now() < deadline && !conn.is_closed() {
                tick.tick().await;
                let t = Instant::now();
                let page = conn
                    .request(
                        "getMessages",
                        json!({"channel": channel, "pageSize": 30, "anchor": anchor}),
                    )
                    .await;
                progress.sent.fetch_add(1, Ordering::Relaxed);
                match page {
                    Ok(page) if page["items"].as_array().is_some_and(|a| !a.is_empty()) => {
                        let micros = t.elapsed().as_micros() as u64;
                        let _ = latency
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record(micros.max(1));
                        progress.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        progress.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Walk back through the history, wrapping at the start.
                anchor = if anchor >= 30 {
                    anchor - 30
                } else {
                    HISTORY - 1
                };
            }
            conn.close();
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    progress.finish();
    let pages = progress.delivered.load(Ordering::Relaxed);
    let latency = Latency::from_micros(&latency.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report {
        scenario: "history".into(),
        connections: workers,
        channels: 1,
        duration_secs: elapsed,
        sent: progress.sent.load(Ordering::Relaxed),
        acked: pages,
        delivered: pages,
        expected_deliveries: progress.sent.load(Ordering::Relaxed),
        delivered_per_sec: pages as f64 / elapsed,
        sent_per_sec: pages as f64 / elapsed,
        latency_ms: latency,
        errors: progress.errors.load(Ordering::Relaxed),
        ..Report::default()
    })
}
