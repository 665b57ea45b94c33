//! `connect`: a connect-and-init storm; connections per second and time to `init`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;

use super::{run_name, Progress};
use crate::conn::{Conn, OnEvent};
use crate::report::{histogram, Latency, Report};
use crate::setup::Target;
use crate::{BenchError, Options};

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Report, BenchError> {
    let service = target.create_service(&run_name("connect")).await?;
    // Tokens are signed before the clock starts: the storm measures the node.
    let tokens: Vec<String> = (0..options.connections)
        .map(|i| target.token(&format!("c{i}"), &service))
        .collect::<Result<_, _>>()?;
    let progress = Arc::new(Progress::default());
    progress.start("connect", options.progress);
    let latency = Arc::new(Mutex::new(histogram()));
    let on_event: OnEvent = Arc::new(|_| {});
    let started = Instant::now();
    let opened: Vec<Option<Conn>> = futures::stream::iter(tokens)
        .map(|token| {
            let on_event = on_event.clone();
            let progress = progress.clone();
            let latency = latency.clone();
            async move {
                let t = Instant::now();
                match Conn::open(target, &token, on_event).await {
                    Ok(conn) => {
                        let micros = t.elapsed().as_micros() as u64;
                        let _ = latency
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record(micros.max(1));
                        progress.connections.fetch_add(1, Ordering::Relaxed);
                        Some(conn)
                    }
                    Err(_) => {
                        progress.errors.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    progress.finish();
    let open = opened.iter().flatten().count();
    for conn in opened.iter().flatten() {
        conn.close();
    }
    let latency = Latency::from_micros(&latency.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report {
        scenario: "connect".into(),
        connections: open,
        duration_secs: elapsed,
        sent: options.connections as u64,
        acked: open as u64,
        sent_per_sec: open as f64 / elapsed,
        latency_ms: latency,
        errors: progress.errors.load(Ordering::Relaxed),
        ..Report::default()
    })
}
