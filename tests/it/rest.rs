//! REST behaviour that the Python helper-library test does not pin down byte for byte.

use confab_testkit::TestNode;

use crate::support::service_with_channel;

#[tokio::test]
async fn list_pages_follow_next_page_url_to_the_end() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "paging").await;
    for i in 0..23 {
        let r = rest
            .post(
                &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
                &[("Body", &format!("m{i}"))],
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let mut url = format!("/v2/Services/{service}/Channels/{channel}/Messages?PageSize=5");
    let mut bodies = Vec::new();
    loop {
        let page = rest.get(&url).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        assert_eq!(page.body["meta"]["key"], "messages");
        assert!(page.body["meta"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&node.base_url()));
        for m in page.body["messages"].as_array().unwrap() {
            bodies.push(m["body"].as_str().unwrap().to_owned());
        }
        match page.body["meta"]["next_page_url"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&node.base_url()),
                    "next_page_url must be absolute"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
    node.stop().await;
}

#[tokio::test]
async fn descending_order_lists_newest_first() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "order").await;
    for body in ["a", "b", "c"] {
        rest.post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("Body", body)],
        )
        .await;
    }
    let page = rest
        .get(&format!(
            "/v2/Services/{service}/Channels/{channel}/Messages?Order=desc"
        ))
        .await;
    let indices: Vec<u64> = page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![2, 1, 0]);
    node.stop().await;
}

#[tokio::test]
async fn api_key_credentials_are_accepted_and_wrong_ones_refused() {
    let node = TestNode::start().unwrap();
    let c = node.credentials.clone();
    let key = node
        .rest()
        .with_credentials(&c.api_key_sid, &c.api_key_secret);
    assert_eq!(key.get("/v2/Services").await.status, 200);
    let wrong = node.rest().with_credentials(&c.account_sid, "nope");
    let r = wrong.get("/v2/Services").await;
    assert_eq!((r.status, r.code()), (401, Some(20003)));
    node.stop().await;
}

#[tokio::test]
async fn repeated_identity_filter_selects_members() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "filter").await;
    for identity in ["alice", "bob", "carol"] {
        let r = rest
            .post(
                &format!("/v2/Services/{service}/Channels/{channel}/Members"),
                &[("Identity", identity)],
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let page = rest
        .get(&format!(
            "/v2/Services/{service}/Channels/{channel}/Members?Identity=alice&Identity=carol"
        ))
        .await;
    let identities: Vec<&str> = page.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert_eq!(identities, vec!["alice", "carol"]);
    node.stop().await;
}

#[tokio::test]
async fn joining_accepts_an_invite_and_user_channels_show_unread_counts() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "invites").await;
    let base = format!("/v2/Services/{service}/Channels/{channel}");
    let invite = rest
        .post(&format!("{base}/Invites"), &[("Identity", "dave")])
        .await;
    assert_eq!(invite.status, 201, "{:?}", invite.body);
    let joined = rest
        .post(
            &format!("{base}/Members"),
            &[("Identity", "dave"), ("LastConsumedMessageIndex", "0")],
        )
        .await;
    assert_eq!(joined.status, 201);
    let invites = rest.get(&format!("{base}/Invites")).await;
    assert!(
        invites.body["invites"].as_array().unwrap().is_empty(),
        "joining accepts the invite"
    );
    for body in ["one", "two", "three"] {
        rest.post(&format!("{base}/Messages"), &[("Body", body)])
            .await;
    }
    let uc = rest
        .get(&format!(
            "/v2/Services/{service}/Users/dave/Channels/{channel}"
        ))
        .await;
    assert_eq!(uc.status, 200, "{:?}", uc.body);
    assert_eq!(uc.body["unread_messages_count"], 2);
    assert_eq!(uc.body["status"], "joined");
    node.stop().await;
}

#[tokio::test]
async fn deleted_channels_and_services_refuse_posts_and_another_service_cannot_post_to_a_channel() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "short-lived").await;
    let (other, elsewhere) = service_with_channel(&rest, "elsewhere").await;
    let post = |service: String, channel: String| {
        let rest = rest.clone();
        async move {
            rest.post(
                &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
                &[("Body", "hi")],
            )
            .await
        }
    };
    // The node now knows the channel exists: the checks below must not rest on a stale read.
    assert_eq!(post(service.clone(), channel.clone()).await.status, 201);
    let foreign = post(other.clone(), channel.clone()).await;
    assert_eq!(
        (foreign.status, foreign.body["code"].as_u64()),
        (404, Some(50300))
    );
    let deleted = rest
        .delete(&format!("/v2/Services/{service}/Channels/{channel}"))
        .await;
    assert_eq!(deleted.status, 204);
    let after = post(service.clone(), channel.clone()).await;
    assert_eq!(
        (after.status, after.body["code"].as_u64()),
        (404, Some(50300))
    );
    let listed = rest
        .get(&format!(
            "/v2/Services/{service}/Channels/{channel}/Messages"
        ))
        .await;
    assert_eq!(listed.status, 404);
    // A deleted service: its posts are refused as the service not found.
    assert_eq!(post(other.clone(), elsewhere.clone()).await.status, 201);
    assert_eq!(
        rest.delete(&format!("/v2/Services/{other}")).await.status,
        204
    );
    let gone = post(other.clone(), elsewhere.clone()).await;
    assert_eq!(
        (gone.status, gone.body["code"].as_u64()),
        (404, Some(20404))
    );
    node.stop().await;
}
