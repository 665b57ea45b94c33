//! What was acknowledged survives a kill -9 of the node.

use confab_testkit::NodeProcess;

#[tokio::test]
async fn everything_acknowledged_survives_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::spawn(dir.path()).unwrap();
    let rest = node.rest();
    let service = rest
        .post("/v2/Services", &[("FriendlyName", "durable")])
        .await;
    assert_eq!(service.status, 201);
    let service = service.str("sid");
    let channel = rest
        .post(
            &format!("/v2/Services/{service}/Channels"),
            &[("UniqueName", "keep"), ("Attributes", "{\"a\":1}")],
        )
        .await
        .str("sid");
    for identity in ["alice", "bob"] {
        let r = rest
            .post(
                &format!("/v2/Services/{service}/Channels/{channel}/Members"),
                &[("Identity", identity)],
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let mut acknowledged = Vec::new();
    for i in 0..120 {
        let r = rest
            .post(
                &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
                &[("Body", &format!("msg {i}")), ("From", "alice")],
            )
            .await;
        assert_eq!(r.status, 201);
        acknowledged.push((r.body["index"].as_u64().unwrap(), r.str("body")));
    }
    node.kill9().unwrap();

    let node = NodeProcess::spawn(dir.path()).unwrap();
    let rest = node.rest();
    assert_eq!(
        rest.get(&format!("/v2/Services/{service}")).await.status,
        200
    );
    let fetched = rest
        .get(&format!("/v2/Services/{service}/Channels/keep"))
        .await;
    assert_eq!(fetched.status, 200, "{:?}", fetched.body);
    assert_eq!(fetched.str("sid"), channel);
    assert_eq!(fetched.body["attributes"], "{\"a\":1}");
    assert_eq!(fetched.body["members_count"], 2);
    assert_eq!(fetched.body["messages_count"], 120);
    let members = rest
        .get(&format!(
            "/v2/Services/{service}/Channels/{channel}/Members"
        ))
        .await;
    assert_eq!(members.body["members"].as_array().unwrap().len(), 2);
    let stored = crate::support::history(&rest, &service, &channel).await;
    assert_eq!(stored, acknowledged);
    // The next message continues the sequence.
    let next = rest
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("Body", "after")],
        )
        .await;
    assert_eq!(next.body["index"], 120);
}

#[tokio::test]
async fn sigterm_stops_the_node_cleanly_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::spawn(dir.path()).unwrap();
    let rest = node.rest();
    let service = rest
        .post("/v2/Services", &[("FriendlyName", "graceful")])
        .await
        .str("sid");
    let status = node.terminate().unwrap();
    assert!(
        status.success(),
        "confab should exit 0 on SIGTERM, got {status:?}"
    );

    let node = NodeProcess::spawn(dir.path()).unwrap();
    let fetched = node.rest().get(&format!("/v2/Services/{service}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["friendly_name"], "graceful");
}
