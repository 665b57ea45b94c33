//! `fanout` (N connections over C channels) and `room` (one channel of N members): open-loop
//! sends at a total rate, end-to-end latency, and per-receiver verification.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::{body, run_name, sent_at, Progress};
use crate::conn::{now_micros, Conn, OnEvent};
use crate::report::{histogram, Latency, Report};
use crate::setup::Target;
use crate::{BenchError, Options, Scenario};

/// What one receiving connection saw.
struct Received {
    channel: usize,
    indices: Mutex<Vec<u64>>,
    latency: Mutex<Histogram<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) async fn run(
    scenario: Scenario,
    target: &Target,
    options: &Options,
    channels: usize,
) -> Result<Report, BenchError> {
    let connections = options.connections.max(channels);
    let progress = Arc::new(Progress::default());
    let name = run_name(scenario.name());
    let service = target.create_service(&name).await?;
    let per_channel = connections.div_ceil(channels);
    if per_channel > 100 {
        target
            .post(
                &format!("/v2/Services/{service}"),
                &[("Limits.ChannelMembers", &per_channel.to_string())],
            )
            .await?;
    }
    eprintln!("setting up {channels} channels with {connections} members");
    let mut channel_sids = Vec::with_capacity(channels);
    for c in 0..channels {
        channel_sids.push(
            target
                .create_channel(&service, &format!("{name}-{c}"))
                .await?,
        );
    }
    for (c, sid) in channel_sids.iter().enumerate() {
        let members: Vec<String> = (0..connections)
            .filter(|i| i % channels == c)
            .map(|i| format!("u{i}"))
            .collect();
        target.add_members(&service, sid, &members).await?;
    }

    eprintln!("opening {connections} connections");
    progress.start(scenario.name(), options.progress);
    let received: Vec<Arc<Received>> = (0..connections)
        .map(|i| {
            Arc::new(Received {
                channel: i % channels,
                indices: Mutex::new(Vec::new()),
                latency: Mutex::new(histogram()),
            })
        })
        .collect();
    let opened: Vec<Result<(usize, Conn), BenchError>> = futures::stream::iter(0..connections)
        .map(|i| {
            let receiver = received[i].clone();
            let counters = progress.clone();
            let on_event: OnEvent = Arc::new(move |frame: &Value| {
                let progress = &counters;
                if frame["event"] != "messageAdded" {
                    return;
                }
                let data = &frame["data"];
                let Some(index) = data["index"].as_u64() else {
                    return;
                };
                let now = now_micros();
                if let Some(sent) = data["body"].as_str().and_then(sent_at) {
                    let _ = lock(&receiver.latency).record(now.saturating_sub(sent).max(1));
                }
                lock(&receiver.indices).push(index);
                progress.delivered.fetch_add(1, Ordering::Relaxed);
                progress.last_delivery_us.fetch_max(now, Ordering::Relaxed);
            });
            let token = target.token(&format!("u{i}"), &service);
            let progress = progress.clone();
            async move {
                let conn = Conn::open(target, &token?, on_event).await?;
                progress.connections.fetch_add(1, Ordering::Relaxed);
                Ok((i, conn))
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let mut conns: Vec<Option<Conn>> = vec![None; connections];
    for result in opened {
        let (i, conn) = result?;
        conns[i] = Some(conn);
    }

    // One sender per channel: its first member. Open loop: sends go out on schedule whether
    // or not earlier ones were answered.
    let acked: Vec<Arc<Mutex<Vec<u64>>>> = (0..channels)
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let per_channel_rate = (options.rate / channels as f64).max(0.001);
    let period = Duration::from_secs_f64(1.0 / per_channel_rate);
    let started = Instant::now();
    let started_us = now_micros();
    let cpu_at_start = crate::rss::cpu_times(&options.server_pids);
    let deadline = tokio::time::Instant::now() + options.duration;
    let mut senders = Vec::new();
    for c in 0..channels {
        let Some(conn) = conns[c].clone() else {
            continue;
        };
        let sid = channel_sids[c].clone();
        let acked = acked[c].clone();
        let progress = progress.clone();
        let payload = options.payload;
        // Senders are spread evenly over the period: aligned ticks would send in bursts of one
        // message per channel and measure the queueing of the burst, not the system.
        let offset = period.mul_f64(c as f64 / channels as f64);
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut replies = Vec::new();
            loop {
                tick.tick().await;
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let reply = conn.send(
                    "sendMessage",
                    json!({"channel": sid, "body": body(payload)}),
                );
                progress.sent.fetch_add(1, Ordering::Relaxed);
                let acked = acked.clone();
                let progress = progress.clone();
                replies.push(tokio::spawn(async move {
                    match reply.await {
                        Ok(Ok(result)) => {
                            if let Some(index) = result["index"].as_u64() {
                                lock(&acked).push(index);
                                progress.acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            progress.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for reply in replies {
                let _ = reply.await;
            }
        }));
    }
    for sender in senders {
        let _ = sender.await;
    }
    let sending = started.elapsed();

    // Drain: wait (bounded) for every acknowledged message to reach every member.
    let members: Vec<u64> = (0..channels)
        .map(|c| (0..connections).filter(|i| i % channels == c).count() as u64)
        .collect();
    let expected: u64 = (0..channels)
        .map(|c| lock(&acked[c]).len() as u64 * members[c])
        .sum();
    let drain_until = Instant::now() + options.drain;
    while progress.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.finish();
    let server_cpu = crate::rss::cpu_times(&options.server_pids)
        .zip(cpu_at_start)
        .map(|(end, start)| end.since(start))
        .filter(|_| !options.server_pids.is_empty());
    for conn in conns.iter().flatten() {
        conn.close();
    }

    // Verify per receiver: every acknowledged message once, in index order.
    let mut report = Report {
        scenario: scenario.name().to_owned(),
        connections,
        channels,
        duration_secs: sending.as_secs_f64(),
        sent: progress.sent.load(Ordering::Relaxed),
        acked: progress.acked.load(Ordering::Relaxed),
        expected_deliveries: expected,
        errors: progress.errors.load(Ordering::Relaxed),
        ..Report::default()
    };
    let acked_sets: Vec<HashSet<u64>> = acked
        .iter()
        .map(|a| lock(a).iter().copied().collect())
        .collect();
    let mut latency = histogram();
    for receiver in &received {
        let indices = lock(&receiver.indices);
        let unique: HashSet<u64> = indices.iter().copied().collect();
        report.delivered += indices.len() as u64;
        report.duplicates += (indices.len() - unique.len()) as u64;
        report.out_of_order += indices.windows(2).filter(|w| w[1] < w[0]).count() as u64;
        report.lost += acked_sets[receiver.channel].difference(&unique).count() as u64;
        let _ = latency.add(&*lock(&receiver.latency));
    }
    report.latency_ms = Latency::from_micros(&latency);
    let secs = sending.as_secs_f64().max(1e-9);
    // From the first send to the last delivery: deliveries that land during the drain count,
    // and so does the time they took.
    let last = progress.last_delivery_us.load(Ordering::Relaxed);
    let delivering = (last.saturating_sub(started_us) as f64 / 1e6).max(secs);
    report.delivered_per_sec = report.delivered as f64 / delivering;
    let per_100k = |secs: f64| secs / (report.delivered.max(1) as f64) * 100_000.0;
    report.server_cpu_secs = server_cpu.map(|cpu| cpu.total());
    report.server_cpu_per_100k = server_cpu.map(|cpu| per_100k(cpu.total()));
    report.server_system_cpu_per_100k = server_cpu.map(|cpu| per_100k(cpu.system));
    report.sent_per_sec = report.sent as f64 / secs;
    Ok(report)
}
