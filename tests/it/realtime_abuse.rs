//! Bad clients: malformed frames, oversize frames, no init, floods, slow readers, expiring
//! tokens. Each gets the documented error or close code, and the node keeps serving others.

use std::time::Duration;

use confab_testkit::TestNode;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::realtime::{connect, service};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(node: &TestNode) -> Socket {
    tokio_tungstenite::connect_async(node.ws_url())
        .await
        .unwrap()
        .0
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame as JSON, or the close code if the server closed. Bounded wait.
async fn next(ws: &mut Socket) -> Result<Value, Option<u16>> {
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    })
    .await;
    got.unwrap_or_else(|_| panic!("nothing arrived"))
}

/// Creates a channel with these members (through REST); its SID.
async fn channel_of(node: &TestNode, service: &str, name: &str, members: &[&str]) -> String {
    let rest = node.rest();
    let channel = rest
        .post(
            &format!("/v2/Services/{service}/Channels"),
            &[("UniqueName", name)],
        )
        .await
        .str("sid");
    for identity in members {
        rest.post(
            &format!("/v2/Services/{service}/Channels/{channel}/Members"),
            &[("Identity", *identity)],
        )
        .await;
    }
    channel
}

/// Posts `count` messages with `body` through REST, each acknowledged.
async fn post_bodies(node: &TestNode, service: &str, channel: &str, body: &str, count: usize) {
    let rest = node.rest();
    for _ in 0..count {
        let r = rest
            .post(
                &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
                &[("Body", body)],
            )
            .await;
        assert_eq!(r.status, 201);
    }
}

/// The close code, skipping any frames before it.
async fn close_code(ws: &mut Socket) -> Option<u16> {
    loop {
        if let Err(code) = next(ws).await {
            return code;
        }
    }
}

/// The reply to request `id`, skipping events.
async fn reply(ws: &mut Socket, id: u64) -> Value {
    loop {
        let frame = next(ws).await.unwrap();
        if frame["type"] == "reply" && frame["id"] == id {
            return frame;
        }
    }
}

async fn init(ws: &mut Socket, token: &str) -> Value {
    send(ws, json!({"type": "init", "id": 1, "token": token})).await;
    loop {
        let frame = next(ws).await.unwrap();
        if frame["type"] == "reply" && frame["id"] == 1 {
            return frame;
        }
    }
}

#[tokio::test]
async fn malformed_frames_get_errors_or_close_codes_and_the_node_keeps_serving() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _events) = connect(&node, &service, "alice").await;

    // Not JSON: close 1003.
    let mut ws = raw(&node).await;
    ws.send(Message::text("{this is not json")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1003));

    // JSON but not a request, without id: close 1003.
    let mut ws = raw(&node).await;
    send(&mut ws, json!({"hello": "world"})).await;
    assert_eq!(close_code(&mut ws).await, Some(1003));

    // An op before init: error reply, connection open.
    let mut ws = raw(&node).await;
    send(&mut ws, json!({"type": "getSubscribedChannels", "id": 5})).await;
    let reply = next(&mut ws).await.unwrap();
    assert_eq!(
        (reply["id"].clone(), reply["ok"].clone()),
        (json!(5), json!(false))
    );
    assert_eq!(reply["error"]["code"], 51007);

    // Unknown op (after init): error 50302, connection open.
    init(&mut ws, &node.token("zed", &service, 60)).await;
    send(&mut ws, json!({"type": "flyToTheMoon", "id": 6})).await;
    let reply = self::reply(&mut ws, 6).await;
    assert_eq!(reply["error"]["code"], 50302);
    // Missing parameters: 20001.
    send(&mut ws, json!({"type": "sendMessage", "id": 7})).await;
    let reply = self::reply(&mut ws, 7).await;
    assert_eq!(reply["error"]["code"], 20001);

    // A frame over 64 KiB: close 1009.
    let big = "x".repeat(65 * 1024);
    send(
        &mut ws,
        json!({"type": "getUser", "id": 8, "identity": big}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(1009));

    // A forged token: error 51007 and close 4001.
    let mut ws = raw(&node).await;
    let mut forged = node.credentials.clone();
    forged.api_key_secret = "forged".into();
    let reply = init(&mut ws, &forged.token("mallory", &service, 60)).await;
    assert_eq!(reply["error"]["code"], 51007);
    assert_eq!(close_code(&mut ws).await, Some(4001));

    // Everyone else is still served.
    alice.get_subscribed_channels().await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn no_init_in_time_closes_with_4008() {
    let node = TestNode::builder()
        .configure(|c| c.realtime.init_timeout_secs = 1)
        .start()
        .unwrap();
    let mut ws = raw(&node).await;
    assert_eq!(close_code(&mut ws).await, Some(4008));
    node.stop().await;
}

#[tokio::test]
async fn a_flood_is_refused_with_20429_then_closed_with_4029() {
    let node = TestNode::builder()
        .configure(|c| {
            c.realtime.ops_per_sec = 1;
            c.realtime.ops_burst = 5;
            c.realtime.close_after_refusals = 10;
        })
        .start()
        .unwrap();
    let service = service(&node).await;
    let mut ws = raw(&node).await;
    init(&mut ws, &node.token("flood", &service, 60)).await;
    for id in 10..60 {
        if ws
            .send(Message::text(
                json!({"type": "getSubscribedChannels", "id": id}).to_string(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    let code = loop {
        match next(&mut ws).await {
            Ok(frame) if frame["error"]["code"] == 20429 => limited += 1,
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert!(limited > 0, "some requests must be refused with 20429");
    assert_eq!(code, Some(4029));
    node.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_4009_and_memory_stays_bounded() {
    const OUTBOX: usize = 32;
    let node = TestNode::builder()
        .configure(|c| c.realtime.outbox_frames = OUTBOX)
        .start()
        .unwrap();
    let service = service(&node).await;
    let channel = channel_of(&node, &service, "firehose", &["sloth"]).await;
    let mut slow = raw(&node).await;
    init(&mut slow, &node.token("sloth", &service, 600)).await;
    // The slow client reads nothing while far more than the outbox and the socket buffers hold
    // is sent to it.
    let total = 600;
    post_bodies(&node, &service, &channel, &"y".repeat(16 * 1024), total).await;
    // Now it reads: what was buffered, then the close.
    let mut delivered = 0;
    let code = loop {
        match next(&mut slow).await {
            Ok(frame) if frame["event"] == "messageAdded" => delivered += 1,
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(4009));
    assert!(
        delivered < total,
        "a bounded outbox cannot have held all {total} messages, yet {delivered} arrived"
    );
    // A client that reconnects and resumes gets the rest.
    let (sloth, _events) = connect(&node, &service, "sloth").await;
    let ch = sloth.get_channel("firehose").await.unwrap();
    assert_eq!(ch.get_messages_count().await.unwrap(), total as u64);
    node.stop().await;
}

#[tokio::test]
async fn a_stuck_reader_is_closed_as_too_slow_while_the_others_get_everything_in_order() {
    const BUDGET: usize = 256 * 1024;
    let node = TestNode::builder()
        .configure(|c| {
            c.realtime.outbox_bytes = BUDGET;
            c.realtime.max_reply_bytes = BUDGET / 4;
        })
        .start()
        .unwrap();
    let service = service(&node).await;
    let identities = ["stuck", "r1", "r2", "r3"];
    let channel = channel_of(&node, &service, "busy", &identities).await;
    let mut stuck = raw(&node).await;
    init(&mut stuck, &node.token("stuck", &service, 600)).await;
    let total = 600u64;
    // Three readers keep reading; each collects the indices of the messages it is sent.
    let mut readers = Vec::new();
    for identity in &identities[1..] {
        let mut ws = raw(&node).await;
        init(&mut ws, &node.token(identity, &service, 600)).await;
        readers.push(tokio::spawn(async move {
            let mut indices = Vec::new();
            while (indices.len() as u64) < total {
                let frame = next(&mut ws).await.expect("a reader stays connected");
                if frame["event"] == "messageAdded" {
                    indices.push(frame["data"]["index"].as_u64().unwrap());
                }
            }
            indices
        }));
    }
    // Far more than the budget and the socket buffers: the stuck reader reads nothing.
    post_bodies(
        &node,
        &service,
        &channel,
        &"z".repeat(16 * 1024),
        total as usize,
    )
    .await;
    for reader in readers {
        let indices = reader.await.unwrap();
        assert_eq!(
            indices,
            (0..total).collect::<Vec<_>>(),
            "in order, once each"
        );
    }
    assert_eq!(close_code(&mut stuck).await, Some(4009));
    // Closed for being slow, once (what it cost the node is bounded by its budget: the
    // writer unit test `a_client_that_stops_reading_costs_the_node_its_byte_budget_at_most`).
    let metrics = crate::metrics::scrape(&node).await;
    assert_eq!(
        crate::metrics::value(&metrics, "confab_slow_consumer_closes_total"),
        1.0,
        "one slow consumer closed"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_frame_announced_huge_is_refused_before_it_arrives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = TestNode::start().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    tcp.write_all(
        b"GET /v2/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    // A text frame that says it carries a terabyte (masked, as clients send), then data that
    // never ends: the node must not buffer it until the frame is whole.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&header).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let flood = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        // 64 MiB at most; stops when the node closes.
        for _ in 0..1024 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break None;
            }
            got.extend_from_slice(&buf[..n]);
            // After the 101 response: a close frame (0x88) with its code.
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let frames = &got[end + 4..];
                if frames.len() >= 4 && frames[0] == 0x88 {
                    break Some(u16::from_be_bytes([frames[2], frames[3]]));
                }
            }
        }
    })
    .await
    .expect("closed in time");
    assert!(got.starts_with(b"HTTP/1.1 101"), "upgraded");
    assert_eq!(close, Some(1009), "closed as too big");
    flood.abort();
    node.stop().await;
}

#[tokio::test]
async fn an_expiring_token_warns_then_closes_with_4002() {
    let node = TestNode::builder()
        .configure(|c| c.realtime.token_warning_secs = 60)
        .start()
        .unwrap();
    let service = service(&node).await;
    let mut ws = raw(&node).await;
    init(&mut ws, &node.token("brief", &service, 3)).await;
    let mut warned = false;
    let mut expired = false;
    let code = loop {
        match next(&mut ws).await {
            Ok(frame) if frame["type"] == "tokenAboutToExpire" => warned = true,
            Ok(frame) if frame["type"] == "tokenExpired" => expired = true,
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert!(warned && expired);
    assert_eq!(code, Some(4002));
    node.stop().await;
}

#[tokio::test]
async fn a_stopping_node_tells_clients_to_reconnect_with_4010() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let mut ws = raw(&node).await;
    init(&mut ws, &node.token("leaver", &service, 600)).await;
    let stopping = tokio::spawn(node.stop());
    let mut told = false;
    let code = loop {
        match next(&mut ws).await {
            Ok(frame) if frame["type"] == "reconnect" => {
                assert_eq!(frame["reason"], "draining");
                told = true;
            }
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert!(told, "a reconnect frame comes before the close");
    assert_eq!(code, Some(4010));
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_node_at_its_connection_bound_answers_503_until_a_session_closes() {
    let node = TestNode::builder()
        .configure(|c| c.realtime.max_connections = 2)
        .start()
        .unwrap();
    let service = service(&node).await;
    let mut first = raw(&node).await;
    init(&mut first, &node.token("first", &service, 600)).await;
    let _second = raw(&node).await;
    let refused = tokio_tungstenite::connect_async(node.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a third connection is refused with 503, got {other:?}"),
    }
    // The node keeps serving the sessions it holds.
    send(
        &mut first,
        json!({"type": "getSubscribedChannels", "id": 2}),
    )
    .await;
    assert_eq!(reply(&mut first, 2).await["type"], "reply");
    first.close(None).await.unwrap();
    // Once the server has seen the close, its place is free again.
    let mut again = None;
    for _ in 0..200 {
        match tokio_tungstenite::connect_async(node.ws_url()).await {
            Ok((ws, _)) => {
                again = Some(ws);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut again = again.expect("a place frees when a session closes");
    init(&mut again, &node.token("again", &service, 600)).await;
    node.stop().await;
}
