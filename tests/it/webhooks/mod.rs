//! Webhooks against a real receiver: `tests/python/webhook_receiver.py`, an HTTP server that
//! checks every request with the official `twilio` library's `RequestValidator`, run with the
//! Python of the suite's virtual environment (`.venv`, made by `scripts/test.sh`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use confab_client::Request;
use confab_testkit::{NodeArgs, NodeProcess, RedisServer, RestClient, TestCredentials, TestNode};
use serde_json::json;

use crate::realtime::{connect, service};

mod receiver;

use receiver::{event_types, of_type, params, receiver_port_while_down, Receiver};

/// Every post-event Twilio's Programmable Chat fires (media aside).
const POST_EVENTS: [&str; 11] = [
    "onMessageSent",
    "onMessageUpdated",
    "onMessageRemoved",
    "onChannelAdded",
    "onChannelUpdated",
    "onChannelDestroyed",
    "onMemberAdded",
    "onMemberUpdated",
    "onMemberRemoved",
    "onUserAdded",
    "onUserUpdated",
];

/// Short webhook timings for node processes: a dead node's jobs move after 2 s.
fn quick_webhook_env() -> Vec<(String, String)> {
    vec![
        ("CONFAB_WEBHOOKS_CLAIM_HOLD_MS".into(), "2000".into()),
        ("CONFAB_WEBHOOKS_TIMEOUT_MS".into(), "300".into()),
    ]
}

/// Points the service's post-event webhook at `port` for `onMessageSent`, with `retries`.
async fn post_messages_to(rest: &RestClient, service: &str, port: u16, retries: &str) {
    configure_service(
        rest,
        service,
        &[
            ("PostWebhookUrl", &format!("http://127.0.0.1:{port}/post")),
            ("WebhookFilters", "onMessageSent"),
            ("PostWebhookRetryCount", retries),
        ],
    )
    .await;
}

/// Posts `count` messages through REST (which must send `X-Twilio-Webhook-Enabled`); returns
/// their SIDs.
async fn post_messages(
    rest: &RestClient,
    service: &str,
    channel: &str,
    prefix: &str,
    count: usize,
) -> std::collections::HashSet<String> {
    let messages = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    let mut sids = std::collections::HashSet::new();
    for i in 0..count {
        let r = rest
            .post(&messages, &[("Body", &format!("{prefix} {i}"))])
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        sids.insert(r.str("sid"));
    }
    sids
}

/// Waits until the receiver got an `onMessageSent` for each of `sids` (at least once).
async fn wait_for_messages(receiver: &Receiver, sids: &std::collections::HashSet<String>) {
    receiver
        .wait_for(Duration::from_secs(60), "every message's webhook", |got| {
            let delivered: std::collections::HashSet<String> = got
                .iter()
                .map(|r| params(r).get("MessageSid").cloned().unwrap_or_default())
                .collect();
            sids.is_subset(&delivered)
        })
        .await;
}

async fn configure_service(rest: &RestClient, service: &str, settings: &[(&str, &str)]) {
    let r = rest
        .post(&format!("/v2/Services/{service}"), settings)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Post-event webhooks for every kind of client action arrive signed (the receiver's
/// `RequestValidator` accepts each; a tampered copy is refused) with Twilio's parameter names;
/// REST actions fire them only with `X-Twilio-Webhook-Enabled: true`; the filters decide.
#[tokio::test]
async fn post_event_webhooks_arrive_signed_with_twilio_parameters() {
    let receiver = Receiver::start(0);
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let service = service(&node).await;
    let mut settings = vec![
        ("PostWebhookUrl", receiver.url("/post")),
        ("WebhookMethod", "POST".to_owned()),
    ];
    settings.extend(
        POST_EVENTS
            .iter()
            .map(|e| ("WebhookFilters", e.to_string())),
    );
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    configure_service(&rest, &service, &settings).await;

    // Client actions: every post-event once.
    let (alice, _alice_events) = connect(&node, &service, "alice").await;
    let mut general = alice
        .create_channel(confab_client::CreateChannelOptions {
            unique_name: Some("general".into()),
            friendly_name: Some("General".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    general.join().await.unwrap();
    let index = general.send_message("hello & welcome").await.unwrap();
    general
        .update_message(index, "hello, edited")
        .await
        .unwrap();
    general.update_friendly_name("General chat").await.unwrap();
    general
        .update_last_consumed_message_index(Some(index))
        .await
        .unwrap();
    alice
        .send(Request::UpdateUser {
            friendly_name: Some("Alice".into()),
            attributes: None,
        })
        .await
        .unwrap();
    let (bob, _bob_events) = connect(&node, &service, "bob").await;
    let mut bobs = bob.get_channel(general.sid()).await.unwrap();
    bobs.join().await.unwrap();
    bobs.leave().await.unwrap();
    general.remove_message(index).await.unwrap();
    general.delete().await.unwrap();

    let expected = [
        "onUserAdded",
        "onChannelAdded",
        "onMemberAdded",
        "onMessageSent",
        "onMessageUpdated",
        "onChannelUpdated",
        "onMemberUpdated",
        "onUserUpdated",
        "onUserAdded",
        "onMemberAdded",
        "onMemberRemoved",
        "onMessageRemoved",
        "onChannelDestroyed",
    ];
    receiver
        .wait_for(Duration::from_secs(20), "every post-event", |got| {
            got.len() >= expected.len()
        })
        .await;
    let got = receiver.requests().await;
    let mut types = event_types(&got);
    types.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(types, want, "one webhook per action");
    for request in &got {
        assert_eq!(request["valid"], true, "signature refused: {request:#?}");
        assert_eq!(request["method"], "POST");
        assert_eq!(request["path"], "/post");
        assert!(request["idempotency"]
            .as_str()
            .is_some_and(|t| t.starts_with("WJ")));
        let p = params(request);
        assert_eq!(p["AccountSid"], TestCredentials::default().account_sid);
        assert_eq!(p["InstanceSid"], service);
        assert_eq!(p["Source"], "SDK");
    }
    let sent = params(of_type(&got, "onMessageSent")[0]);
    assert_eq!(sent["Body"], "hello & welcome");
    assert_eq!(sent["From"], "alice");
    assert_eq!(sent["ClientIdentity"], "alice");
    assert_eq!(sent["ChannelSid"], general.sid());
    assert_eq!(sent["Index"], index.to_string());
    assert!(sent["MessageSid"].starts_with("IM"));
    assert!(sent["DateCreated"].ends_with('Z'));
    let updated = params(of_type(&got, "onMessageUpdated")[0]);
    assert_eq!(updated["Body"], "hello, edited");
    assert_eq!(updated["ModifiedBy"], "alice");
    let joined: Vec<_> = of_type(&got, "onMemberAdded")
        .iter()
        .map(|r| params(r))
        .collect();
    assert!(joined
        .iter()
        .any(|p| p["Identity"] == "bob" && p["Reason"] == "JOINED"));
    let left = params(of_type(&got, "onMemberRemoved")[0]);
    assert_eq!(
        (left["Identity"].as_str(), left["Reason"].as_str()),
        ("bob", "LEFT")
    );
    let channel = params(of_type(&got, "onChannelUpdated")[0]);
    assert_eq!(channel["FriendlyName"], "General chat");
    assert_eq!(channel["UniqueName"], "general");
    assert_eq!(channel["ChannelType"], "public");
    let horizon = params(of_type(&got, "onMemberUpdated")[0]);
    assert_eq!(horizon["LastConsumedMessageIndex"], index.to_string());
    let user = params(of_type(&got, "onUserUpdated")[0]);
    assert_eq!(user["FriendlyName"], "Alice");
    assert!(params(of_type(&got, "onChannelDestroyed")[0]).contains_key("DateDestroyed"));

    // The receiver's validator refuses a tampered copy of a request it accepted.
    let mut tampered = params(of_type(&got, "onMessageSent")[0]);
    tampered.insert("Body".into(), "hello & welcome, tampered".into());
    let forward = receiver
        .http
        .post(receiver.url("/_forward"))
        .json(&json!({
            "path": "/post",
            "params": tampered.into_iter().collect::<Vec<_>>(),
            "signature": of_type(&got, "onMessageSent")[0]["signature"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(forward.status(), 403, "an altered body must not validate");

    // REST actions: none without the header, each with it (as the account: Source API).
    let before = receiver.requests().await.len();
    let channel = crate::authorization::created_sid(
        &rest,
        &format!("/v2/Services/{service}/Channels"),
        &[("UniqueName", "quiet")],
    )
    .await;
    let messages = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    assert_eq!(
        rest.post(&messages, &[("Body", "silent")]).await.status,
        201
    );
    let loud = rest.with_header("X-Twilio-Webhook-Enabled", "true");
    assert_eq!(loud.post(&messages, &[("Body", "loud")]).await.status, 201);
    receiver
        .wait_for(Duration::from_secs(10), "the REST post's webhook", |got| {
            got.len() > before
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.requests().await;
    let after: Vec<_> = got[before..].iter().map(params).collect();
    assert_eq!(
        after.len(),
        1,
        "only the request with the header fires: {after:#?}"
    );
    assert_eq!(after[0]["EventType"], "onMessageSent");
    assert_eq!(after[0]["Body"], "loud");
    assert_eq!(after[0]["Source"], "API");
    assert!(!after[0].contains_key("ClientIdentity"));

    // Filters: with only onMessageUpdated enabled, a send fires nothing, an update one call.
    let before = got.len();
    rest.post(
        &format!("/v2/Services/{service}"),
        &[("WebhookFilters", "onMessageUpdated")],
    )
    .await;
    let (carol, _carol_events) = connect(&node, &service, "carol").await;
    let mut quiet = carol.get_channel(&channel).await.unwrap();
    quiet.join().await.unwrap();
    let index = quiet.send_message("unfiltered").await.unwrap();
    quiet.update_message(index, "filtered in").await.unwrap();
    receiver
        .wait_for(Duration::from_secs(10), "the update's webhook", |got| {
            got.len() > before
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.requests().await;
    assert_eq!(
        event_types(&got[before..]),
        vec!["onMessageUpdated"],
        "only the filtered event fires"
    );
    node.stop().await;
}

/// A pre-event webhook decides a client's `sendMessage`: a 403 refuses it (50056, nothing
/// stored or delivered), a JSON answer rewrites the body before it is stored and delivered, an
/// answer slower than the timeout refuses it (50076), and a slow answer for one channel does not
/// hold up sends on another.
#[tokio::test]
async fn pre_event_webhooks_refuse_rewrite_and_time_out() {
    let receiver = Receiver::start(0);
    let node = TestNode::builder()
        .configure(|c| c.webhooks.timeout_ms = 1500)
        .start()
        .unwrap();
    let rest = node.rest();
    let service = service(&node).await;
    configure_service(
        &rest,
        &service,
        &[
            ("PreWebhookUrl", &receiver.url("/pre")),
            ("WebhookFilters", "onMessageSend"),
        ],
    )
    .await;
    let (alice, _alice_events) = connect(&node, &service, "alice").await;
    let (bob, mut bob_events) = connect(&node, &service, "bob").await;
    let mut channels = Vec::new();
    for name in ["moderated", "elsewhere"] {
        let mut channel = alice
            .create_channel(confab_client::CreateChannelOptions {
                unique_name: Some(name.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        channel.join().await.unwrap();
        bob.get_channel(channel.sid())
            .await
            .unwrap()
            .join()
            .await
            .unwrap();
        channels.push(channel);
    }
    let (moderated, elsewhere) = (&channels[0], &channels[1]);

    receiver
        .behave(json!({"path": "/pre", "status": 403}))
        .await;
    let refused = moderated.send_message("spam").await.unwrap_err();
    assert_eq!(refused.code(), Some(50056), "{refused}");
    let pre = receiver.requests().await;
    assert_eq!(pre.len(), 1);
    assert_eq!(pre[0]["valid"], true);
    let p = params(&pre[0]);
    assert_eq!(p["EventType"], "onMessageSend");
    assert_eq!(p["Body"], "spam");
    assert_eq!(p["ClientIdentity"], "alice");
    assert_eq!(p["ChannelSid"], moderated.sid());

    receiver
        .behave(json!({"path": "/pre", "status": 200, "body": "{\"body\": \"clean\"}"}))
        .await;
    let index = moderated.send_message("darn").await.unwrap();
    assert_eq!(index, 0, "the refused message took no index");
    let stored = crate::support::history(&rest, &service, moderated.sid()).await;
    assert_eq!(stored, vec![(0, "clean".to_owned())]);
    let delivered = crate::realtime::next_event_where(&mut bob_events, "messageAdded", |e| {
        e.channel.as_deref() == Some(moderated.sid())
    })
    .await;
    assert_eq!(
        delivered.data["body"], "clean",
        "the first delivery is the rewrite"
    );

    receiver
        .behave(json!({"path": "/pre", "status": 200, "delay_ms": 3000}))
        .await;
    let slow = moderated.send_message("too slow").await.unwrap_err();
    assert_eq!(slow.code(), Some(50076), "{slow}");
    assert_eq!(
        crate::support::history(&rest, &service, moderated.sid())
            .await
            .len(),
        1
    );

    // One channel's hook thinks for a second; a send to another channel (by another client: one
    // connection's requests are answered in order) is not held up by it.
    receiver
        .behave(json!({"path": "/pre", "status": 200, "delay_ms": 1000,
            "when": {"ChannelSid": moderated.sid()}}))
        .await;
    receiver
        .behave(json!({"path": "/pre", "status": 200,
            "when": {"ChannelSid": elsewhere.sid()}}))
        .await;
    let started = Instant::now();
    let slow_send = moderated.send_message("thinking");
    let bobs_elsewhere = bob.get_channel(elsewhere.sid()).await.unwrap();
    let fast_send = bobs_elsewhere.send_message("not waiting");
    tokio::pin!(slow_send);
    let fast_done = tokio::select! {
        fast = fast_send => { fast.unwrap(); true }
        slow = &mut slow_send => { slow.unwrap(); false }
    };
    assert!(fast_done, "the other channel's send finished first");
    slow_send.await.unwrap();
    println!(
        "slow channel's send took {:?} (hook 1 s); the other finished first",
        started.elapsed()
    );
    node.stop().await;
}

/// A receiver that is down for ten seconds and then comes back gets every event (the service
/// retries: `PostWebhookRetryCount`).
#[tokio::test]
async fn a_receiver_down_for_ten_seconds_gets_every_event() {
    let port = receiver_port_while_down();
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let service = service(&node).await;
    post_messages_to(&rest, &service, port, "6").await;
    let (alice, _events) = connect(&node, &service, "alice").await;
    let mut channel = alice
        .create_channel(confab_client::CreateChannelOptions::default())
        .await
        .unwrap();
    channel.join().await.unwrap();
    for i in 0..5 {
        channel
            .send_message(&format!("while down {i}"))
            .await
            .unwrap();
    }
    let sids: std::collections::HashSet<String> = channel
        .get_messages(Some(10), None, confab_client::Direction::Backwards)
        .await
        .unwrap()
        .items
        .iter()
        .map(|m| m.sid.clone())
        .collect();
    assert_eq!(sids.len(), 5);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let receiver = Receiver::start(port);
    wait_for_messages(&receiver, &sids).await;
    node.stop().await;
}

/// Jobs pending when a node is killed with -9 are delivered after its restart.
#[tokio::test]
async fn pending_jobs_survive_kill_9() {
    let port = receiver_port_while_down();
    let dir = tempfile::tempdir().unwrap();
    let args = NodeArgs {
        env: quick_webhook_env(),
        ..Default::default()
    };
    let mut node = NodeProcess::spawn_with(dir.path(), &args).unwrap();
    let rest = node.rest().with_header("X-Twilio-Webhook-Enabled", "true");
    let (service, channel) = crate::support::service_with_channel(&rest, "durable").await;
    post_messages_to(&rest, &service, port, "8").await;
    let sids = post_messages(&rest, &service, &channel, "pending", 5).await;
    node.kill9().unwrap();
    let receiver = Receiver::start(port);
    let args = NodeArgs {
        listen: Some(node.listen_addr()),
        ..args
    };
    drop(node);
    let _node = NodeProcess::spawn_with(dir.path(), &args).unwrap();
    wait_for_messages(&receiver, &sids).await;
}

/// In a three-node cluster, killing the channel's owner while its jobs are pending loses none:
/// the other nodes claim them once their hold ends. Delivery is at least once: a job whose
/// attempt was under way when the owner died may arrive twice.
#[tokio::test]
async fn killing_the_owner_loses_no_webhook_job() {
    let port = receiver_port_while_down();
    let redis = RedisServer::start().unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<NodeProcess> = ["w0", "w1", "w2"]
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| {
            let mut args = NodeArgs::cluster(&redis.url(), id);
            args.env.extend(quick_webhook_env());
            NodeProcess::spawn_with(dir.path(), &args).unwrap()
        })
        .collect();
    let rest = nodes[0]
        .rest()
        .with_header("X-Twilio-Webhook-Enabled", "true");
    let (service, channel) = crate::support::service_with_channel(&rest, "owned").await;
    post_messages_to(&rest, &service, port, "8").await;
    let sids = post_messages(&rest, &service, &channel, "owned", 10).await;
    nodes[0].kill9().unwrap();
    let receiver = Receiver::start(port);
    wait_for_messages(&receiver, &sids).await;
    println!(
        "{} deliveries for {} jobs after killing the owner",
        receiver.requests().await.len(),
        sids.len()
    );
}

/// Channel webhooks: a `webhook` called with GET for the events its filters name (the signature
/// covers the query string, and the receiver's validator accepts it), and a `trigger` called
/// with `onMessageSent` when a keyword is in the body.
#[tokio::test]
async fn channel_webhooks_fire_by_filter_and_keyword() {
    let receiver = Receiver::start(0);
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let service = service(&node).await;
    let channel = crate::authorization::created_sid(
        &rest,
        &format!("/v2/Services/{service}/Channels"),
        &[("UniqueName", "scoped")],
    )
    .await;
    let hooks = format!("/v2/Services/{service}/Channels/{channel}/Webhooks");
    let scoped = crate::authorization::created_sid(
        &rest,
        &hooks,
        &[
            ("Type", "webhook"),
            ("Configuration.Url", &receiver.url("/scoped?tenant=a")),
            ("Configuration.Method", "GET"),
            ("Configuration.Filters", "onMessageSent"),
            ("Configuration.Filters", "onMemberAdded"),
        ],
    )
    .await;
    let trigger = crate::authorization::created_sid(
        &rest,
        &hooks,
        &[
            ("Type", "trigger"),
            ("Configuration.Url", &receiver.url("/trigger")),
            ("Configuration.Triggers", "urgent"),
        ],
    )
    .await;
    let refused = rest
        .post(
            &hooks,
            &[
                ("Type", "webhook"),
                ("Configuration.Filters", "onMessageSend"),
            ],
        )
        .await;
    assert_eq!(
        refused.code(),
        Some(50325),
        "pre-events are the service's: {:?}",
        refused.body
    );

    let (alice, _events) = connect(&node, &service, "alice").await;
    let mut joined = alice.get_channel(&channel).await.unwrap();
    joined.join().await.unwrap();
    joined.send_message("hello").await.unwrap();
    joined
        .send_message("URGENT: the build is red")
        .await
        .unwrap();
    receiver
        .wait_for(
            Duration::from_secs(20),
            "four channel webhook calls",
            |got| got.len() >= 4,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.requests().await;
    assert_eq!(got.len(), 4, "{got:#?}");
    for request in &got {
        assert_eq!(request["valid"], true, "signature refused: {request:#?}");
    }
    let on = |path: &str| -> Vec<HashMap<String, String>> {
        got.iter()
            .filter(|r| r["path"] == path)
            .map(params)
            .collect()
    };
    let scoped_calls = on("/scoped");
    assert_eq!(scoped_calls.len(), 3);
    assert!(got
        .iter()
        .filter(|r| r["path"] == "/scoped")
        .all(|r| r["method"] == "GET"));
    let mut events: Vec<&str> = scoped_calls
        .iter()
        .map(|p| p["EventType"].as_str())
        .collect();
    events.sort_unstable();
    assert_eq!(events, ["onMemberAdded", "onMessageSent", "onMessageSent"]);
    assert!(scoped_calls
        .iter()
        .all(|p| p["WebhookSid"] == scoped && p["WebhookType"] == "webhook"));
    let triggered = on("/trigger");
    assert_eq!(triggered.len(), 1);
    assert_eq!(triggered[0]["Body"], "URGENT: the build is red");
    assert_eq!(triggered[0]["WebhookSid"], trigger);
    assert_eq!(triggered[0]["WebhookType"], "trigger");

    let metrics = crate::metrics::scrape(&node).await;
    assert_eq!(
        crate::metrics::value(
            &metrics,
            "confab_webhook_attempts_total{event=\"onMessageSent\",outcome=\"ok\"}"
        ),
        3.0,
        "three onMessageSent calls counted"
    );
    node.stop().await;
}
