//! The load harness against a real node: short runs of every scenario, whose verification must
//! find nothing lost, duplicated or reordered.

use std::time::Duration;

use confab_bench::{run, Options, Scenario, Target};
use confab_testkit::TestNode;

fn target(node: &TestNode) -> Target {
    Target::new(vec![node.base_url()], node.credentials.credentials(), 2)
}

fn short(connections: usize, channels: usize, rate: f64) -> Options {
    Options {
        connections,
        channels,
        rate,
        duration: Duration::from_secs(2),
        payload: 64,
        drain: Duration::from_secs(20),
        progress: false,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_room_deliver_every_acknowledged_message_once_in_order() {
    let node = TestNode::start().unwrap();
    let target = target(&node);
    let fanout = run(Scenario::Fanout, &target, &short(60, 6, 60.0))
        .await
        .unwrap();
    assert!(fanout.acked > 0, "{fanout:?}");
    assert_eq!(fanout.errors, 0, "{fanout:?}");
    assert_eq!(
        (fanout.lost, fanout.duplicates, fanout.out_of_order),
        (0, 0, 0),
        "{fanout:?}"
    );
    assert_eq!(fanout.delivered, fanout.expected_deliveries);
    assert_eq!(fanout.expected_deliveries, fanout.acked * 10);
    assert!(fanout.latency_ms.p50 > 0.0);

    let room = run(Scenario::Room, &target, &short(40, 1, 10.0))
        .await
        .unwrap();
    assert_eq!(
        (room.lost, room.duplicates, room.out_of_order, room.errors),
        (0, 0, 0, 0),
        "{room:?}"
    );
    assert_eq!(room.delivered, room.acked * 40);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_connect_history_and_idle_scenarios_run() {
    let node = TestNode::start().unwrap();
    let target = target(&node);
    let rest = run(Scenario::Rest, &target, &short(4, 2, 0.0))
        .await
        .unwrap();
    assert!(rest.acked > 0);
    assert_eq!(
        (rest.lost, rest.duplicates, rest.errors),
        (0, 0, 0),
        "{rest:?}"
    );

    let connect = run(Scenario::Connect, &target, &short(50, 1, 0.0))
        .await
        .unwrap();
    assert_eq!(
        (connect.connections, connect.errors),
        (50, 0),
        "{connect:?}"
    );
    assert!(connect.sent_per_sec > 0.0);

    let history = run(Scenario::History, &target, &short(2, 1, 40.0))
        .await
        .unwrap();
    assert!(history.delivered > 0);
    assert_eq!(history.errors, 0, "{history:?}");

    let mut idle_options = short(20, 1, 0.0);
    idle_options.duration = Duration::from_millis(500);
    let idle = run(Scenario::Idle, &target, &idle_options).await.unwrap();
    assert_eq!(idle.connections, 20);
    assert!(
        idle.rss_bytes.is_some(),
        "the node runs in this process, its RSS is readable"
    );
    node.stop().await;
}
