//! `rest`: workers posting messages through the REST API; posts per second and latency.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{body, run_name, Progress};
use crate::report::{histogram, Latency, Report};
use crate::setup::Target;
use crate::{BenchError, Options};

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Report, BenchError> {
    let name = run_name("rest");
    let service = target.create_service(&name).await?;
    let channels = options.channels.max(1);
    let mut sids = Vec::new();
    for c in 0..channels {
        sids.push(
            target
                .create_channel(&service, &format!("{name}-{c}"))
                .await?,
        );
    }
    let workers = options.connections.max(1);
    let progress = Arc::new(Progress::default());
    progress.start("rest", options.progress);
    let latency = Arc::new(Mutex::new(histogram()));
    let indices: Vec<Arc<Mutex<Vec<u64>>>> = (0..channels)
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let deadline = Instant::now() + options.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let c = w % channels;
        let path = format!("/v2/Services/{service}/Channels/{}/Messages", sids[c]);
        let target = target.clone();
        let progress = progress.clone();
        let latency = latency.clone();
        let indices = indices[c].clone();
        let payload = options.payload;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let t = Instant::now();
                progress.sent.fetch_add(1, Ordering::Relaxed);
                match target.post(&path, &[("Body", &body(payload))]).await {
                    Ok(message) => {
                        let micros = t.elapsed().as_micros() as u64;
                        let _ = latency
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record(micros.max(1));
                        progress.acked.fetch_add(1, Ordering::Relaxed);
                        if let Some(index) = message["index"].as_u64() {
                            indices
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(index);
                        }
                    }
                    Err(_) => {
                        progress.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    progress.finish();
    // Indices handed out must be unique and gap-free per channel.
    let mut duplicates = 0;
    let mut lost = 0;
    for channel in &indices {
        let mut all = channel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        duplicates += (before - all.len()) as u64;
        if let Some(max) = all.last() {
            lost += max + 1 - all.len() as u64;
        }
    }
    let acked = progress.acked.load(Ordering::Relaxed);
    let latency = Latency::from_micros(&latency.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report {
        scenario: "rest".into(),
        connections: workers,
        channels,
        duration_secs: elapsed,
        sent: progress.sent.load(Ordering::Relaxed),
        acked,
        sent_per_sec: acked as f64 / elapsed,
        latency_ms: latency,
        lost,
        duplicates,
        errors: progress.errors.load(Ordering::Relaxed),
        ..Report::default()
    })
}
