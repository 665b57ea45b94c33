//! Twilio's client protocol (`/v3/wsconnect`) against bad and nosy clients: malformed, text and
//! oversized frames, requests before `init`, bad tokens, and tunnelled requests for what the
//! user may not see or change. Each gets the documented answer, nothing changes, and the node
//! keeps serving. (An unmodified twilio-chat client is tested in tests/js/twilio-chat.test.mjs.)

use std::time::Duration;

use confab_protocol::twilsock::Frame;
use confab_testkit::TestNode;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::realtime::service;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(node: &TestNode) -> Socket {
    let url = format!("{}/v3/wsconnect", node.base_url().replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Socket, frame: &Frame) {
    ws.send(Message::binary(frame.encode())).await.unwrap();
}

/// The next twilsock frame, or the WebSocket close code if the server closed. Bounded wait.
async fn next(ws: &mut Socket) -> Result<Frame, Option<u16>> {
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(bytes))) => {
                    return Ok(Frame::decode(&bytes, usize::MAX).expect("a twilsock frame"))
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(Message::Text(t))) => panic!("a text frame: {t}"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    })
    .await;
    got.unwrap_or_else(|_| panic!("nothing arrived"))
}

/// The twilsock `close` status and the WebSocket close code that follows it.
async fn closed(ws: &mut Socket) -> (Option<u64>, Option<u16>) {
    let mut status = None;
    loop {
        match next(ws).await {
            Ok(frame) if frame.method() == "close" => {
                status = frame.header["status"]["code"].as_u64();
            }
            Ok(_) => {}
            Err(code) => return (status, code),
        }
    }
}

/// The reply to `id`, skipping notifications.
async fn reply_to(ws: &mut Socket, id: &str) -> Frame {
    loop {
        let frame = next(ws).await.expect("a reply before the close");
        if frame.method() == "reply" && frame.id() == Some(id) {
            return frame;
        }
    }
}

fn status(frame: &Frame) -> u64 {
    frame.header["status"]["code"].as_u64().unwrap()
}

fn init(id: &str, token: &str) -> Frame {
    let mut frame = Frame::new("init", id);
    frame.header.insert("token".into(), json!(token));
    frame.header.insert(
        "registrations".into(),
        json!([{"product": "ip_messaging", "type": "ers", "notification_protocol_version": 0,
                "message_types": ["twilio.ipmsg.typing_indicator", "twilio.sync.event"]}]),
    );
    frame
        .header
        .insert("capabilities".into(), json!(["client_update"]));
    frame
}

/// A tunnelled HTTP request, as twilio-chat sends one.
fn request(id: &str, method: &str, path: &str, body: Value) -> Frame {
    let mut frame = Frame::new("message", id);
    frame.header.insert(
        "http_request".into(),
        json!({"host": "cds.us1.twilio.com", "path": path, "method": method, "params": {},
               "headers": {"Content-Type": "application/json"}}),
    );
    frame
        .header
        .insert("payload_type".into(), json!("application/json"));
    if !body.is_null() {
        frame.payload = body.to_string().into_bytes();
    }
    frame
}

/// A request's HTTP status and body.
async fn call(ws: &mut Socket, id: &str, method: &str, path: &str, body: Value) -> (u64, Value) {
    send(ws, &request(id, method, path, body)).await;
    let reply = reply_to(ws, id).await;
    assert_eq!(status(&reply), 200, "tunnelled requests are delivered");
    let code = reply.header["http_status"]["code"].as_u64().unwrap();
    (code, serde_json::from_slice(&reply.payload).unwrap())
}

/// A signed-in connection of `identity`.
async fn signed_in(node: &TestNode, service: &str, identity: &str) -> Socket {
    let mut ws = open(node).await;
    send(&mut ws, &init("TM1", &node.token(identity, service, 600))).await;
    assert_eq!(status(&reply_to(&mut ws, "TM1").await), 200);
    ws
}

#[tokio::test]
async fn malformed_text_and_oversized_frames_close_and_the_node_keeps_serving() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;

    let mut ws = open(&node).await;
    ws.send(Message::text("{\"method\":\"init\"}"))
        .await
        .unwrap();
    assert_eq!(closed(&mut ws).await, (Some(406), Some(1003)));

    let mut ws = open(&node).await;
    ws.send(Message::binary(b"TWILSOCK V3.0 99\r\n{}".to_vec()))
        .await
        .unwrap();
    assert_eq!(closed(&mut ws).await, (Some(406), Some(1003)));

    let mut ws = open(&node).await;
    let mut big = request("TM2", "GET", "/v3/Maps/x.info", Value::Null);
    big.payload = vec![b' '; 70 * 1024];
    ws.send(Message::binary(big.encode())).await.unwrap();
    assert_eq!(closed(&mut ws).await.1, Some(1009));

    // Meanwhile a good client signs in and is answered.
    let mut good = signed_in(&node, &service, "alice").await;
    let (code, config) = call(
        &mut good,
        "TM3",
        "GET",
        "/aim/Client/v1/Configuration",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert!(config["links"]["conversations"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
}

#[tokio::test]
async fn requests_before_init_and_bad_tokens_are_refused() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;

    let mut ws = open(&node).await;
    send(
        &mut ws,
        &request("TM1", "GET", "/aim/Client/v1/Configuration", Value::Null),
    )
    .await;
    assert_eq!(status(&reply_to(&mut ws, "TM1").await), 401);
    send(&mut ws, &init("TM2", "not.a.token")).await;
    assert_eq!(status(&reply_to(&mut ws, "TM2").await), 401);

    // Past the verifier's 5 s of leeway for clocks.
    let expired = node.token("alice", &service, 0);
    tokio::time::sleep(Duration::from_millis(6100)).await;
    send(&mut ws, &init("TM3", &expired)).await;
    let refused = reply_to(&mut ws, "TM3").await;
    assert_eq!(status(&refused), 401);
    assert_eq!(refused.header["status"]["errorCode"], 20104);

    // The connection is still usable with a good token.
    send(&mut ws, &init("TM4", &node.token("alice", &service, 600))).await;
    assert_eq!(status(&reply_to(&mut ws, "TM4").await), 200);
    send(&mut ws, &init("TM5", &node.token("alice", &service, 600))).await;
    assert_eq!(
        status(&reply_to(&mut ws, "TM5").await),
        400,
        "one init per connection"
    );
}

#[tokio::test]
async fn a_user_reaches_through_twilsock_only_what_the_realtime_api_allows() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channels = format!("/v2/Services/{service}/Channels");
    let secret = rest
        .post(
            &channels,
            &[("FriendlyName", "secret"), ("Type", "private")],
        )
        .await;
    assert_eq!(secret.status, 201);
    let secret = secret.str("sid");
    let member = rest
        .post(
            &format!("{channels}/{secret}/Members"),
            &[("Identity", "alice")],
        )
        .await;
    assert_eq!(member.status, 201);

    let mut mallory = signed_in(&node, &service, "mallory").await;
    let aim = "/aim/Client/v1";
    for (i, path) in [
        format!("{aim}/Conversations/{secret}"),
        format!("/v3/Documents/{secret}.channel"),
        format!("/v3/Lists/{secret}.messages/Items"),
        format!("/v3/Maps/{secret}.roster/Items"),
        "/v3/Maps/alice.channels/Items".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let (code, body) = call(&mut mallory, &format!("TR{i}"), "GET", path, Value::Null).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(!body.to_string().contains("secret"), "{path}: {body}");
    }

    let (code, _) = call(
        &mut mallory,
        "TW1",
        "POST",
        &format!("{aim}/Conversations/{secret}/Messages"),
        json!({"body": "intrusion"}),
    )
    .await;
    assert!(code == 403 || code == 404, "{code}");
    let (code, _) = call(
        &mut mallory,
        "TW2",
        "POST",
        &format!("{aim}/Users/alice"),
        json!({"friendly_name": "pwned"}),
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = call(
        &mut mallory,
        "TW3",
        "POST",
        &format!("{aim}/Conversations/{secret}/Participants"),
        json!({"identity": "mallory"}),
    )
    .await;
    assert!(code == 403 || code == 404, "{code}");

    // A subscription to someone else's objects fails, and nothing of them is pushed.
    let (code, _) = call(
        &mut mallory,
        "TS1",
        "POST",
        "/v4/Subscriptions",
        json!({"event_protocol_version": 4, "action": "establish", "correlation_id": 7,
               "requests": [{"object_sid": "alice.channels", "object_type": "map", "last_event_id": 0}]}),
    )
    .await;
    assert_eq!(code, 200);
    let notice = loop {
        let frame = next(&mut mallory).await.unwrap();
        if frame.method() == "notification" {
            break serde_json::from_slice::<Value>(&frame.payload).unwrap();
        }
    };
    assert_eq!(notice["event_type"], "subscription_failed", "{notice}");
    assert_eq!(notice["event"]["error"]["status"], 404);

    // Nothing changed.
    let messages = rest.get(&format!("{channels}/{secret}/Messages")).await;
    assert_eq!(messages.body["messages"].as_array().unwrap().len(), 0);
    let members = rest.get(&format!("{channels}/{secret}/Members")).await;
    assert_eq!(members.body["members"].as_array().unwrap().len(), 1);
    let alice = rest
        .get(&format!("/v2/Services/{service}/Users/alice"))
        .await;
    assert_ne!(alice.body["friendly_name"], "pwned");
}

#[tokio::test]
async fn a_new_member_is_not_replayed_what_happened_before_they_joined() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channels = format!("/v2/Services/{service}/Channels");
    let channel = rest.post(&channels, &[("FriendlyName", "history")]).await;
    let channel = channel.str("sid");
    let messages = format!("{channels}/{channel}/Messages");
    let said = rest.post(&messages, &[("Body", "said and deleted")]).await;
    assert_eq!(said.status, 201);
    let deleted = rest
        .delete(&format!("{messages}/{}", said.str("sid")))
        .await;
    assert_eq!(deleted.status, 204);
    let kept = rest.post(&messages, &[("Body", "still there")]).await;
    assert_eq!(kept.status, 201);
    let joined = rest
        .post(
            &format!("{channels}/{channel}/Members"),
            &[("Identity", "bob")],
        )
        .await;
    assert_eq!(joined.status, 201);

    // Bob asks for every event of the channel's messages and roster since the first.
    let mut bob = signed_in(&node, &service, "bob").await;
    let requests: Vec<Value> = ["messages", "roster"]
        .iter()
        .map(|o| json!({"object_sid": format!("{channel}.{o}"), "object_type": if *o == "messages" { "list" } else { "map" }, "last_event_id": 0}))
        .collect();
    let (code, _) = call(
        &mut bob,
        "TS1",
        "POST",
        "/v4/Subscriptions",
        json!({"action": "establish", "correlation_id": 1, "requests": requests}),
    )
    .await;
    assert_eq!(code, 200);
    let mut established = 0;
    let mut roster_items = 0;
    while established < 2 {
        let frame = next(&mut bob).await.unwrap();
        if frame.method() != "notification" {
            continue;
        }
        let n: Value = serde_json::from_slice(&frame.payload).unwrap();
        assert!(!n.to_string().contains("said and deleted"), "{n}");
        match n["event_type"].as_str() {
            Some("subscription_established") => established += 1,
            Some("list_item_added") => panic!("a message from before bob joined: {n}"),
            Some("map_item_updated") => roster_items += 1,
            _ => {}
        }
    }
    assert_eq!(roster_items, 1, "the roster comes as its current state");
    // What he may read is the history, where the deleted message is not.
    let (code, page) = call(
        &mut bob,
        "TR1",
        "GET",
        &format!("/v3/Lists/{channel}.messages/Items"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["still there"]);
}
