//! `/metrics` on the admin port: Prometheus text with the node's own registry.

use confab_client::{Client, CreateChannelOptions};
use confab_testkit::TestNode;

/// The metric names every node exports (the dashboard and the alerts rely on them).
pub const EXPORTED: &[&str] = &[
    "confab_connections",
    "confab_sessions",
    "confab_channel_actors",
    "confab_messages_received_total",
    "confab_channel_commands_total",
    "confab_events_delivered_total",
    "confab_fanout_duration_seconds",
    "confab_delivery_latency_seconds",
    "confab_outbox_drops_total",
    "confab_slow_consumer_closes_total",
    "confab_rate_limited_total",
    "confab_http_requests_total",
    "confab_http_request_duration_seconds",
    "confab_store_write_duration_seconds",
    "confab_store_batch_size",
];

/// The node's metrics as Prometheus text.
pub(crate) async fn scrape(node: &TestNode) -> String {
    reqwest::get(format!("http://{}/metrics", node.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of `series` (a name with its labels, if any) in `text`.
pub(crate) fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

#[tokio::test]
async fn metrics_count_what_the_node_does() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let service = rest
        .post("/v2/Services", &[("FriendlyName", "m")])
        .await
        .str("sid");
    let (alice, _events) = Client::connect(&node.ws_url(), &node.token("alice", &service, 600))
        .await
        .unwrap();
    let mut room = alice
        .create_channel(CreateChannelOptions::default())
        .await
        .unwrap();
    room.join().await.unwrap();
    for i in 0..3 {
        room.send_message(&format!("m{i}")).await.unwrap();
    }
    let text = scrape(&node).await;
    for name in EXPORTED {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
    assert_eq!(value(&text, "confab_messages_received_total"), 3.0);
    assert_eq!(value(&text, "confab_connections"), 1.0);
    assert_eq!(value(&text, "confab_sessions"), 1.0);
    assert_eq!(value(&text, "confab_channel_actors"), 1.0);
    assert!(value(&text, "confab_events_delivered_total") >= 3.0);
    assert!(text.contains(
        "confab_http_requests_total{method=\"POST\",route=\"/v2/Services\",status=\"201\"} 1"
    ));
    alice.shutdown();
    node.stop().await;
}

/// Metric names used in a PromQL expression (histogram series suffixes stripped).
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            let word = &expr[start..i];
            let next = bytes.get(i).copied();
            // A metric is followed by a selector, a range or nothing; functions by "(".
            if (word.starts_with("confab_") || word.starts_with("process_") || word == "up")
                && next != Some(b'(')
            {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                names.push(base.to_owned());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test]
async fn the_dashboard_and_alerts_query_only_metrics_the_node_exports() {
    let node = TestNode::start().unwrap();
    // Labelled series appear with their first observation: one request and one command.
    let rest = node.rest();
    let service = rest
        .post("/v2/Services", &[("FriendlyName", "d")])
        .await
        .str("sid");
    rest.post(&format!("/v2/Services/{service}/Channels"), &[])
        .await;
    let text = scrape(&node).await;
    node.stop().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/confab.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/confab-rules.yml")).unwrap();
    exprs.extend(
        rules
            .lines()
            .filter(|l| l.contains("confab_") || l.contains("up{"))
            .map(str::to_owned),
    );
    let mut checked = 0;
    for expr in &exprs {
        for name in names_in(expr) {
            if name == "up" {
                continue; // Prometheus' own series for every scrape target.
            }
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} (in {expr}) is not exported by the node"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "the dashboard and rules should query the node's metrics"
    );
}

#[tokio::test]
async fn hostile_methods_and_paths_add_no_series() {
    let node = TestNode::start().unwrap();
    let client = reqwest::Client::new();
    let series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("confab_http_request"))
            .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
            .collect()
    };
    // Warm the series a well-behaved client creates, then count them.
    let ordinary = reqwest::Method::from_bytes(b"FETCHME").unwrap();
    client
        .request(ordinary, node.base_url())
        .send()
        .await
        .unwrap();
    let before = series(&scrape(&node).await);
    let long = "Z".repeat(200);
    for method in ["ZZSECA1", "ZZSECA2", long.as_str()] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for path in [
            "/",
            "/v2/Services/IS00000000000000000000000000000000",
            "/nowhere/at/all",
        ] {
            let _ = client
                .request(method.clone(), format!("{}{path}", node.base_url()))
                .send()
                .await;
        }
    }
    let text = scrape(&node).await;
    assert!(!text.contains("ZZSECA") && !text.contains(&long));
    let after = series(&text);
    let new: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    // Only routes the node knows (or `unmatched`) with `method="other"` may appear.
    for s in &new {
        assert!(
            s.contains("method=\"other\""),
            "a hostile request created {s}"
        );
    }
    node.stop().await;
}
