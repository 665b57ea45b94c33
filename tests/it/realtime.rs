//! The realtime API through `confab-client`, with several clients on one node.

use std::time::Duration;

use confab_client::{Client, ClientError, CreateChannelOptions, Direction, Event, Events};
use confab_testkit::TestNode;
use serde_json::json;

/// Waits for the next event called `name`, skipping others. The timeout only stops a broken
/// test from hanging; nothing here measures time.
pub(crate) async fn next_event(events: &mut Events, name: &str) -> Event {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(e) if e.name == name => return e,
                Some(_) => continue,
                None => panic!("event stream ended while waiting for {name}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {name} event arrived"))
}

/// Waits for the next event called `name` whose data satisfies `pred`.
pub(crate) async fn next_event_where(
    events: &mut Events,
    name: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    loop {
        let e = next_event(events, name).await;
        if pred(&e) {
            return e;
        }
    }
}

/// A service with reachability on (users see each other online).
pub(crate) async fn service(node: &TestNode) -> String {
    let rest = node.rest();
    let r = rest.post("/v2/Services", &[("FriendlyName", "rt")]).await;
    assert_eq!(r.status, 201);
    let sid = r.str("sid");
    let on = rest
        .post(
            &format!("/v2/Services/{sid}"),
            &[("ReachabilityEnabled", "true")],
        )
        .await;
    assert_eq!(on.status, 200, "{:?}", on.body);
    sid
}

pub(crate) async fn connect(node: &TestNode, service: &str, identity: &str) -> (Client, Events) {
    Client::connect(&node.ws_url(), &node.token(identity, service, 3600))
        .await
        .unwrap()
}

#[tokio::test]
async fn channel_lifecycle_messages_and_events_between_two_clients() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    node.rest()
        .post(
            &format!("/v2/Services/{service}"),
            &[("TypingIndicatorTimeout", "1")],
        )
        .await;
    let (alice, mut alice_events) = connect(&node, &service, "alice").await;
    let (bob, mut bob_events) = connect(&node, &service, "bob").await;

    // Create and discover.
    let mut general = alice
        .create_channel(CreateChannelOptions {
            friendly_name: Some("General".into()),
            unique_name: Some("general".into()),
            attributes: Some(json!({"topic": "all"})),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(general.view().status, "notParticipating");
    general.join().await.unwrap();
    assert_eq!(general.view().status, "joined");
    next_event(&mut alice_events, "channelJoined").await;
    let public = bob
        .get_public_channel_descriptors(None, None)
        .await
        .unwrap();
    assert!(public
        .items
        .iter()
        .any(|c| c.unique_name.as_deref() == Some("general")));

    let mut bobs = bob.get_channel("general").await.unwrap();
    assert!(bob
        .get_user_channel_descriptors(None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    bobs.join().await.unwrap();
    let mine = bob
        .get_user_channel_descriptors(Some(10), None)
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].status, "joined");
    let joined = next_event(&mut alice_events, "memberJoined").await;
    assert_eq!(joined.data["identity"], "bob");
    assert!(joined.seq.is_some());
    next_event(&mut bob_events, "channelAdded").await;

    // Messages both ways.
    let index = general.send_message("hello bob").await.unwrap();
    assert_eq!(index, 0);
    let added = next_event(&mut bob_events, "messageAdded").await;
    assert_eq!(added.data["body"], "hello bob");
    assert_eq!(added.data["author"], "alice");
    bobs.send_message("hi alice").await.unwrap();
    let own = next_event(&mut alice_events, "messageAdded").await;
    assert_eq!(
        own.data["body"], "hello bob",
        "the sender gets its own message too"
    );
    let added = next_event(&mut alice_events, "messageAdded").await;
    assert_eq!(added.data["body"], "hi alice");

    // Typing: shown to others, ended by the timeout.
    bobs.typing().await.unwrap();
    let started = next_event(&mut alice_events, "typingStarted").await;
    assert_eq!(started.data["identity"], "bob");
    assert!(started.seq.is_none());
    let ended = next_event(&mut alice_events, "typingEnded").await;
    assert_eq!(ended.data["identity"], "bob");

    // Read horizon and counts.
    // No read horizon yet: no count (twilio-chat's null), not "everything".
    assert_eq!(bobs.get_unconsumed_messages_count().await.unwrap(), None);
    assert_eq!(
        bobs.advance_last_consumed_message_index(0).await.unwrap(),
        1
    );
    assert_eq!(
        bobs.advance_last_consumed_message_index(0).await.unwrap(),
        1
    );
    let updated = next_event_where(&mut alice_events, "memberUpdated", |e| {
        e.data["member"]["identity"] == "bob"
    })
    .await;
    assert_eq!(updated.data["member"]["lastConsumedMessageIndex"], 0);
    assert_eq!(bobs.get_unconsumed_messages_count().await.unwrap(), Some(1));
    assert_eq!(bobs.set_all_messages_consumed().await.unwrap(), 0);
    assert_eq!(bobs.set_no_messages_consumed().await.unwrap(), 2);
    assert_eq!(
        bobs.update_last_consumed_message_index(Some(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(bobs.get_messages_count().await.unwrap(), 2);
    assert_eq!(bobs.get_members_count().await.unwrap(), 2);
    assert_eq!(bobs.get_members().await.unwrap().len(), 2);

    // History paging.
    for i in 0..8 {
        general.send_message(&format!("m{i}")).await.unwrap();
    }
    let newest = bobs
        .get_messages(Some(4), None, Direction::Backwards)
        .await
        .unwrap();
    let indices: Vec<u64> = newest.items.iter().map(|m| m.index).collect();
    assert_eq!(indices, vec![6, 7, 8, 9]);
    assert!(newest.has_prev_page && !newest.has_next_page);
    let older = bobs
        .get_messages(Some(4), Some(5), Direction::Backwards)
        .await
        .unwrap();
    assert_eq!(
        older.items.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    let forward = bobs
        .get_messages(Some(3), Some(0), Direction::Forward)
        .await
        .unwrap();
    assert_eq!(
        forward.items.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(!forward.has_prev_page && forward.has_next_page);

    // Edit and delete own messages.
    let edited = bobs.update_message(1, "hi alice!").await.unwrap();
    assert_eq!(edited.body, "hi alice!");
    let updated = next_event(&mut alice_events, "messageUpdated").await;
    assert_eq!(updated.data["message"]["body"], "hi alice!");
    assert_eq!(updated.data["updateReasons"][0], "body");
    bobs.remove_message(1).await.unwrap();
    let removed = next_event(&mut alice_events, "messageRemoved").await;
    assert_eq!(removed.data["index"], 1);

    // Channel changes reach members.
    general.update_friendly_name("Town square").await.unwrap();
    let changed = next_event(&mut bob_events, "channelUpdated").await;
    assert_eq!(changed.data["channel"]["friendlyName"], "Town square");
    general
        .update_attributes(json!({"topic": "news"}))
        .await
        .unwrap();
    next_event(&mut bob_events, "channelUpdated").await;

    // User profile changes reach peers.
    bob.update_user(Some("Bob B."), None).await.unwrap();
    let user = next_event_where(&mut alice_events, "userUpdated", |e| {
        e.data["updateReasons"][0] == "friendlyName"
    })
    .await;
    assert_eq!(user.data["user"]["friendlyName"], "Bob B.");
    assert_eq!(
        alice
            .get_user("bob")
            .await
            .unwrap()
            .friendly_name
            .as_deref(),
        Some("Bob B.")
    );

    // Leave, then removal by the admin, then deletion.
    bobs.leave().await.unwrap();
    let left = next_event(&mut alice_events, "memberLeft").await;
    assert_eq!(left.data["identity"], "bob");
    next_event(&mut bob_events, "channelLeft").await;
    general.add("bob").await.unwrap();
    next_event(&mut bob_events, "channelJoined").await;
    general.remove_member("bob").await.unwrap();
    next_event(&mut bob_events, "channelLeft").await;
    general.delete().await.unwrap();
    let gone = next_event(&mut alice_events, "channelRemoved").await;
    assert_eq!(gone.channel.as_deref(), Some(general.sid()));
    assert_eq!(
        alice.get_channel("general").await.unwrap_err().code(),
        Some(50300)
    );
    node.stop().await;
}

#[tokio::test]
async fn private_channels_invites_accept_and_decline() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _alice_events) = connect(&node, &service, "alice").await;
    let (carol, mut carol_events) = connect(&node, &service, "carol").await;
    let (dave, mut dave_events) = connect(&node, &service, "dave").await;
    let mut secret = alice
        .create_channel(CreateChannelOptions {
            unique_name: Some("secret".into()),
            is_private: true,
            ..Default::default()
        })
        .await
        .unwrap();
    secret.join().await.unwrap();

    // Outsiders neither see nor join a private channel.
    let public = carol
        .get_public_channel_descriptors(None, None)
        .await
        .unwrap();
    assert!(public.items.iter().all(|c| c.sid != secret.sid()));
    assert_eq!(
        carol.get_channel("secret").await.unwrap_err().code(),
        Some(50300)
    );

    secret.invite("carol").await.unwrap();
    secret.invite("dave").await.unwrap();
    let invited = next_event(&mut carol_events, "channelInvited").await;
    assert_eq!(invited.data["status"], "invited");
    next_event(&mut dave_events, "channelInvited").await;
    assert_eq!(
        carol.get_subscribed_channels().await.unwrap()[0]
            .view()
            .status,
        "invited"
    );

    // Accept by joining.
    let mut carols = carol.get_channel(secret.sid()).await.unwrap();
    carols.join().await.unwrap();
    assert_eq!(carols.view().status, "joined");
    next_event(&mut carol_events, "channelJoined").await;

    // Decline.
    let mut daves = dave.get_channel("secret").await.unwrap();
    daves.decline().await.unwrap();
    assert_eq!(daves.view().status, "notParticipating");
    assert_eq!(
        dave.get_channel("secret").await.unwrap_err().code(),
        Some(50300)
    );
    let mut again = carol.get_channel("secret").await.unwrap();
    assert_eq!(again.join().await.unwrap_err().code(), Some(50404));
    node.stop().await;
}

#[tokio::test]
async fn permissions_channel_user_cannot_delete_channel_or_others_messages() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _ae) = connect(&node, &service, "alice").await;
    let (bob, _be) = connect(&node, &service, "bob").await;
    let mut room = alice
        .create_channel(CreateChannelOptions {
            unique_name: Some("room".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    room.join().await.unwrap();
    let mut bobs = bob.get_channel("room").await.unwrap();
    bobs.join().await.unwrap();
    let alices_message = room.send_message("mine").await.unwrap();
    let bobs_message = bobs.send_message("bob's").await.unwrap();

    // Refused for the channel user (50107), nothing changes.
    assert_eq!(bobs.delete().await.unwrap_err().code(), Some(50107));
    assert_eq!(
        bobs.remove_message(alices_message)
            .await
            .unwrap_err()
            .code(),
        Some(50107)
    );
    assert_eq!(
        bobs.update_message(alices_message, "x")
            .await
            .unwrap_err()
            .code(),
        Some(50107)
    );
    assert_eq!(bobs.get_messages_count().await.unwrap(), 2);
    // Allowed: own message for the user; anything for the creator (channel admin).
    bobs.update_message(bobs_message, "edited").await.unwrap();
    bobs.remove_message(bobs_message).await.unwrap();
    room.remove_message(alices_message).await.unwrap();
    room.delete().await.unwrap();
    // A non-member cannot send.
    let (eve, _ee) = connect(&node, &service, "eve").await;
    let other = alice
        .create_channel(CreateChannelOptions::default())
        .await
        .unwrap();
    let eves = eve.get_channel(other.sid()).await.unwrap();
    assert_eq!(
        eves.send_message("hi").await.unwrap_err().code(),
        Some(50400)
    );
    node.stop().await;
}

#[tokio::test]
async fn rest_writes_reach_every_connected_member_as_events() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channel = rest
        .post(
            &format!("/v2/Services/{service}/Channels"),
            &[("UniqueName", "news")],
        )
        .await
        .str("sid");
    let mut members = Vec::new();
    for identity in ["m1", "m2", "m3"] {
        rest.post(
            &format!("/v2/Services/{service}/Channels/{channel}/Members"),
            &[("Identity", identity)],
        )
        .await;
        members.push(connect(&node, &service, identity).await);
    }
    let posted = rest
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("Body", "from the backend"), ("From", "system")],
        )
        .await;
    assert_eq!(posted.status, 201);
    for (_, events) in members.iter_mut() {
        let e = next_event(events, "messageAdded").await;
        assert_eq!(e.data["body"], "from the backend");
        assert_eq!(e.channel.as_deref(), Some(channel.as_str()));
    }
    rest.post(
        &format!("/v2/Services/{service}/Channels/{channel}"),
        &[("FriendlyName", "News")],
    )
    .await;
    rest.post(
        &format!("/v2/Services/{service}/Channels/{channel}/Members"),
        &[("Identity", "m4")],
    )
    .await;
    for (_, events) in members.iter_mut() {
        next_event(events, "channelUpdated").await;
        let joined = next_event(events, "memberJoined").await;
        assert_eq!(joined.data["identity"], "m4");
    }
    node.stop().await;
}

#[tokio::test]
async fn resume_delivers_every_missed_message_once_in_order() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _ae) = connect(&node, &service, "alice").await;
    let (bob, mut bob_events) = connect(&node, &service, "bob").await;
    let mut room = alice
        .create_channel(CreateChannelOptions {
            unique_name: Some("resume".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    room.join().await.unwrap();
    let mut bobs = bob.get_channel("resume").await.unwrap();
    bobs.join().await.unwrap();
    room.send_message("before").await.unwrap();
    next_event(&mut bob_events, "messageAdded").await;

    bob.go_offline();
    bob.wait_for_state(confab_client::ConnectionState::Disconnected)
        .await;
    for i in 0..50 {
        room.send_message(&format!("missed {i}")).await.unwrap();
    }
    bob.go_online();
    let mut bodies = Vec::new();
    while bodies.len() < 50 {
        let e = next_event(&mut bob_events, "messageAdded").await;
        bodies.push(e.data["body"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (0..50).map(|i| format!("missed {i}")).collect();
    assert_eq!(bodies, expected);
    // Exactly once: the next event is the next new message, not a repeat.
    room.send_message("after").await.unwrap();
    let next = next_event(&mut bob_events, "messageAdded").await;
    assert_eq!(next.data["body"], "after");
    node.stop().await;
}

#[tokio::test]
async fn retried_send_with_the_same_client_id_creates_one_message() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _ae) = connect(&node, &service, "alice").await;
    let mut room = alice
        .create_channel(CreateChannelOptions::default())
        .await
        .unwrap();
    room.join().await.unwrap();
    let params = json!({"channel": room.sid(), "body": "once", "clientId": "retry-1"});
    let first = alice.request("sendMessage", params.clone()).await.unwrap();
    let second = alice.request("sendMessage", params).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(room.get_messages_count().await.unwrap(), 1);
    node.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let mut forged_creds = node.credentials.clone();
    forged_creds.api_key_secret = "not the secret".into();
    let forged = forged_creds.token("mallory", &service, 60);
    let err = Client::connect(&node.ws_url(), &forged).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed(_)), "{err:?}");
    let other_service = format!("IS{:032x}", 77);
    let wrong = node.token("mallory", &other_service, 60);
    assert!(Client::connect(&node.ws_url(), &wrong).await.is_err());
    // The node still serves everyone else.
    let (alice, _ae) = connect(&node, &service, "alice").await;
    alice.get_subscribed_channels().await.unwrap();
    node.stop().await;
}

#[tokio::test]
async fn update_token_keeps_the_session_and_refuses_another_identity() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _ae) = connect(&node, &service, "alice").await;
    alice
        .update_token(&node.token("alice", &service, 7200))
        .await
        .unwrap();
    let err = alice
        .update_token(&node.token("bob", &service, 7200))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(51007));
    node.stop().await;
}

#[tokio::test]
async fn a_quiet_channel_also_resumes_after_a_reconnect() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, _ae) = connect(&node, &service, "alice").await;
    let mut quiet = alice
        .create_channel(CreateChannelOptions {
            unique_name: Some("quiet".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    quiet.join().await.unwrap();
    quiet.add("bob").await.unwrap();
    // Bob connects after the last event of the channel: he has seen none of its events.
    let (bob, mut bob_events) = connect(&node, &service, "bob").await;
    bob.go_offline();
    bob.wait_for_state(confab_client::ConnectionState::Disconnected)
        .await;
    quiet.send_message("while you were away").await.unwrap();
    bob.go_online();
    let missed = next_event(&mut bob_events, "messageAdded").await;
    assert_eq!(missed.data["body"], "while you were away");
    node.stop().await;
}

#[tokio::test]
async fn peers_learn_when_a_user_comes_online_and_goes_offline() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let (alice, mut alice_events) = connect(&node, &service, "alice").await;
    let mut room = alice
        .create_channel(CreateChannelOptions::default())
        .await
        .unwrap();
    room.join().await.unwrap();
    room.add("bob").await.unwrap();
    let (bob, _be) = connect(&node, &service, "bob").await;
    let online = next_event_where(&mut alice_events, "userUpdated", |e| {
        e.data["user"]["identity"] == "bob"
    })
    .await;
    assert_eq!(online.data["user"]["online"], true);
    assert_eq!(alice.get_user("bob").await.unwrap().online, Some(true));
    bob.shutdown();
    let offline = next_event_where(&mut alice_events, "userUpdated", |e| {
        e.data["user"]["identity"] == "bob" && e.data["user"]["online"] == false
    })
    .await;
    assert_eq!(offline.data["updateReasons"][0], "online");
    node.stop().await;
}
