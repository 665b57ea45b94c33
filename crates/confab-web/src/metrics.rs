//! The HTTP and realtime metrics of a node, registered into the registry they are handed.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metrics of the REST API and the realtime gateway.
#[derive(Debug, Clone)]
pub struct WebMetrics {
    /// `confab_connections`: WebSocket connections open.
    pub connections: IntGauge,
    /// `confab_sessions`: initialized realtime sessions.
    pub sessions: IntGauge,
    /// `confab_events_delivered_total`: event frames handed to sessions' outboxes.
    pub events_delivered: IntCounter,
    /// `confab_fanout_duration_seconds`: time to hand one event to every local subscriber.
    pub fanout_seconds: Histogram,
    /// `confab_delivery_latency_seconds`: from a channel event's commit to its write on a socket.
    pub delivery_latency_seconds: Histogram,
    /// `confab_outbox_drops_total`: frames refused by a full session outbox.
    pub outbox_drops: IntCounter,
    /// `confab_slow_consumer_closes_total`: sessions closed with 4009.
    pub slow_consumer_closes: IntCounter,
    /// `confab_rate_limited_total`: operations refused with 20429.
    pub rate_limited: IntCounter,
    /// `confab_pubsub_gaps_repaired_total`: channel events a session fetched from the store
    /// because the bus skipped them (a lost pub/sub message, a Redis reconnect, a lagging hub).
    pub gaps_repaired: IntCounter,
    /// `confab_http_requests_total{route,method,status}`.
    pub http_requests: IntCounterVec,
    /// `confab_http_request_duration_seconds{route,method}`.
    pub http_seconds: HistogramVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl WebMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            connections: IntGauge::new("confab_connections", "WebSocket connections open.")?,
            sessions: IntGauge::new("confab_sessions", "Initialized realtime sessions.")?,
            events_delivered: IntCounter::new(
                "confab_events_delivered_total",
                "Event frames handed to realtime sessions.",
            )?,
            fanout_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "confab_fanout_duration_seconds",
                    "Time to hand one event to every local subscriber.",
                )
                .buckets(vec![
                    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
                ]),
            )?,
            delivery_latency_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "confab_delivery_latency_seconds",
                    "Time from a channel event's commit to its write on a client socket.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            outbox_drops: IntCounter::new(
                "confab_outbox_drops_total",
                "Frames refused because a session's outbox was full.",
            )?,
            slow_consumer_closes: IntCounter::new(
                "confab_slow_consumer_closes_total",
                "Realtime sessions closed with 4009 for reading too slowly.",
            )?,
            rate_limited: IntCounter::new(
                "confab_rate_limited_total",
                "Realtime operations refused with 20429.",
            )?,
            gaps_repaired: IntCounter::new(
                "confab_pubsub_gaps_repaired_total",
                "Channel events fetched from the store because the bus skipped them.",
            )?,
            http_requests: IntCounterVec::new(
                Opts::new(
                    "confab_http_requests_total",
                    "HTTP requests by route, method and status.",
                ),
                &["route", "method", "status"],
            )?,
            http_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "confab_http_request_duration_seconds",
                    "HTTP request duration by route and method.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route", "method"],
            )?,
        };
        registry.register(Box::new(m.connections.clone()))?;
        registry.register(Box::new(m.sessions.clone()))?;
        registry.register(Box::new(m.events_delivered.clone()))?;
        registry.register(Box::new(m.fanout_seconds.clone()))?;
        registry.register(Box::new(m.delivery_latency_seconds.clone()))?;
        registry.register(Box::new(m.outbox_drops.clone()))?;
        registry.register(Box::new(m.slow_consumer_closes.clone()))?;
        registry.register(Box::new(m.rate_limited.clone()))?;
        registry.register(Box::new(m.gaps_repaired.clone()))?;
        registry.register(Box::new(m.http_requests.clone()))?;
        registry.register(Box::new(m.http_seconds.clone()))?;
        Ok(m)
    }
}

/// A request's method as a label value: one of the methods HTTP defines, or `other`. The
/// method is the client's to choose; taken as it is, every new string would be a new series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Records every HTTP request by its route pattern (never the raw path, which would give each
/// SID its own series), method and status.
pub async fn record_http(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .and_then(|s| s.metrics.clone());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let started = std::time::Instant::now();
    let response = next.call(req).await;
    if let Some(m) = metrics {
        let status = match &response {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        m.http_requests
            .with_label_values(&[&route, method, &status.to_string()])
            .inc();
        m.http_seconds
            .with_label_values(&[&route, method])
            .observe(started.elapsed().as_secs_f64());
    }
    response
}
