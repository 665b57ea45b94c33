//! Bad input gets a Twilio error and changes nothing; never a 500, never a crash.

use confab_testkit::{RestResponse, TestNode};

use crate::support::service_with_channel;

/// A Twilio error body with the expected status and code.
fn assert_twilio_error(r: &RestResponse, status: u16, code: u64) {
    assert_eq!((r.status, r.code()), (status, Some(code)), "{:?}", r.body);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(r.body["status"], status);
    assert!(r.body["more_info"]
        .as_str()
        .unwrap()
        .ends_with(&code.to_string()));
}

#[tokio::test]
async fn unknown_and_malformed_sids_are_not_found() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "sids").await;
    let missing_service = format!("IS{:032x}", 1);
    assert_twilio_error(
        &rest.get(&format!("/v2/Services/{missing_service}")).await,
        404,
        20404,
    );
    // A channel SID where a service SID belongs.
    assert_twilio_error(
        &rest.get(&format!("/v2/Services/{channel}")).await,
        404,
        20404,
    );
    assert_twilio_error(&rest.get("/v2/Services/ISshort").await, 404, 20404);
    let missing_channel = format!("CH{:032x}", 2);
    assert_twilio_error(
        &rest
            .get(&format!(
                "/v2/Services/{service}/Channels/{missing_channel}"
            ))
            .await,
        404,
        50300,
    );
    assert_twilio_error(
        &rest
            .get(&format!(
                "/v2/Services/{service}/Channels/{channel}/Messages/IMnope"
            ))
            .await,
        404,
        50500,
    );
    assert_twilio_error(
        &rest
            .get(&format!(
                "/v2/Services/{service}/Channels/{channel}/Members/MB{:032x}",
                3
            ))
            .await,
        404,
        50402,
    );
    assert_twilio_error(
        &rest
            .get(&format!("/v2/Services/{service}/Users/nobody"))
            .await,
        404,
        50200,
    );
    assert_twilio_error(
        &rest.get(&format!("/v2/Services/{service}/Roles/RLx")).await,
        404,
        50100,
    );
    assert_twilio_error(&rest.get("/v2/NoSuchThing").await, 404, 20404);
    node.stop().await;
}

#[tokio::test]
async fn oversize_values_are_refused_and_change_nothing() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "sizes").await;
    let messages = format!("/v2/Services/{service}/Channels/{channel}/Messages");
    let long_body = "x".repeat(32 * 1024 + 1);
    assert_twilio_error(
        &rest.post(&messages, &[("Body", &long_body)]).await,
        400,
        50504,
    );
    let big_attributes = format!("{{\"k\":\"{}\"}}", "y".repeat(5000));
    assert_twilio_error(
        &rest
            .post(
                &messages,
                &[("Body", "hi"), ("Attributes", &big_attributes)],
            )
            .await,
        400,
        50303,
    );
    let long_name = "n".repeat(257);
    assert_twilio_error(
        &rest
            .post(
                &format!("/v2/Services/{service}/Channels"),
                &[("FriendlyName", &long_name)],
            )
            .await,
        400,
        50003,
    );
    assert_twilio_error(
        &rest
            .post(
                &format!("/v2/Services/{service}/Users"),
                &[("Identity", &long_name)],
            )
            .await,
        400,
        50207,
    );
    let huge = "z".repeat(300 * 1024);
    let r = rest.post(&messages, &[("Body", &huge)]).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert!(r.code().is_some());
    // Nothing was written by any of the refused requests.
    let list = rest.get(&messages).await;
    assert!(list.body["messages"].as_array().unwrap().is_empty());
    node.stop().await;
}

#[tokio::test]
async fn malformed_parameters_get_twilio_errors() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "params").await;
    let base = format!("/v2/Services/{service}/Channels/{channel}");
    let cases = [
        rest.get(&format!("{base}/Messages?PageSize=abc")).await,
        rest.get(&format!("{base}/Messages?PageSize=0")).await,
        rest.get(&format!("{base}/Messages?PageSize=100000")).await,
        rest.get(&format!("{base}/Messages?PageToken=garbage"))
            .await,
        rest.get(&format!("{base}/Messages?PageToken=PTgarbage"))
            .await,
        rest.get(&format!("{base}/Messages?Order=sideways")).await,
        rest.get(&format!("/v2/Services/{service}/Channels?Type=secret"))
            .await,
        rest.post(
            &format!("/v2/Services/{service}/Channels"),
            &[("Type", "secret")],
        )
        .await,
        rest.post(
            &format!("{base}/Members"),
            &[("Identity", "a"), ("LastConsumedMessageIndex", "-3")],
        )
        .await,
        rest.post(
            &format!("{base}/Messages"),
            &[("Body", "x"), ("DateCreated", "yesterday")],
        )
        .await,
        rest.post(
            &format!("/v2/Services/{service}"),
            &[("ReadStatusEnabled", "maybe")],
        )
        .await,
        rest.post(
            &format!("/v2/Services/{service}/Roles"),
            &[("FriendlyName", "r"), ("Type", "channel")],
        )
        .await,
        rest.post(
            &format!("/v2/Services/{service}/Roles"),
            &[
                ("FriendlyName", "r"),
                ("Type", "galaxy"),
                ("Permission", "sendMessage"),
            ],
        )
        .await,
        rest.post(
            &format!("/v2/Services/{service}/Roles"),
            &[
                ("FriendlyName", "r"),
                ("Type", "channel"),
                ("Permission", "flyAway"),
            ],
        )
        .await,
        rest.post("/v2/Services", &[]).await,
        rest.post(&format!("{base}/Members"), &[]).await,
    ];
    for r in &cases {
        assert!(
            (400..500).contains(&r.status),
            "expected a 4xx, got {} {:?}",
            r.status,
            r.body
        );
        assert!(
            r.code().is_some(),
            "Twilio error body expected: {:?}",
            r.body
        );
    }
    assert_twilio_error(
        &rest.post(&base, &[("Attributes", "{not json")]).await,
        400,
        50304,
    );
    node.stop().await;
}

#[tokio::test]
async fn garbage_bodies_never_crash_the_node() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "garbage").await;
    let paths = [
        "/v2/Services".to_owned(),
        format!("/v2/Services/{service}"),
        format!("/v2/Services/{service}/Channels"),
        format!("/v2/Services/{service}/Channels/{channel}/Messages"),
        format!("/v2/Services/{service}/Channels/{channel}/Members"),
        format!("/v2/Services/{service}/Users"),
        format!("/v2/Services/{service}/Roles"),
        "/v2/Credentials".to_owned(),
    ];
    let bodies: [&[u8]; 4] = [
        b"\xff\xfe\x00\x01garbage",
        b"%%%%&&&===",
        b"{\"json\": \"instead of a form\"}",
        b"Body=%E0%A4%A&Attributes=%ZZ",
    ];
    for path in &paths {
        for body in bodies {
            let r = rest
                .post_raw(path, "application/x-www-form-urlencoded", body.to_vec())
                .await;
            assert!(
                r.status != 0 && r.status < 500,
                "{path}: {} {:?}",
                r.status,
                r.body
            );
        }
    }
    // The node still serves everyone.
    assert_eq!(
        rest.get(&format!("/v2/Services/{service}/Channels/{channel}"))
            .await
            .status,
        200
    );
    node.stop().await;
}

#[tokio::test]
async fn duplicate_unique_name_and_identity_conflict() {
    let node = TestNode::start().unwrap();
    let rest = node.rest();
    let (service, _) = service_with_channel(&rest, "taken").await;
    assert_twilio_error(
        &rest
            .post(
                &format!("/v2/Services/{service}/Channels"),
                &[("UniqueName", "taken")],
            )
            .await,
        409,
        50307,
    );
    let users = format!("/v2/Services/{service}/Users");
    assert_eq!(rest.post(&users, &[("Identity", "eve")]).await.status, 201);
    assert_twilio_error(&rest.post(&users, &[("Identity", "eve")]).await, 409, 50201);
    node.stop().await;
}
