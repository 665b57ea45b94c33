//! Media against real servers: the S3 backend passes the blob store conformance suite on an
//! `s3s-fs` server the test starts on a free port, and a cluster on one Redis and one bucket
//! serves an upload from any node, with the message that carries it, until the message is
//! removed; the Rust SDK sends a file its channel's members read, and the filesystem backend
//! keeps it across a restart.

use std::sync::Arc;

use confab_client::{Client, MediaFile};
use confab_media::{BlobStore, S3Blobs, S3Options};
use confab_testkit::{RedisServer, RestClient, S3Server, TestNode, S3_ACCESS_KEY, S3_SECRET_KEY};
use serde_json::Value;

use crate::cluster::eventually;
use crate::realtime::next_event_where;
use crate::support::service_with_channel;

fn s3_options(server: &S3Server) -> S3Options {
    S3Options {
        bucket: server.bucket.clone(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key_id: S3_ACCESS_KEY.into(),
        secret_access_key: S3_SECRET_KEY.into(),
        prefix: "confab".into(),
        path_style: true,
    }
}

async fn s3_store() -> (S3Server, Arc<dyn BlobStore>) {
    let server = S3Server::start("media").expect("s3s-fs");
    let blobs = S3Blobs::new(&s3_options(&server)).expect("client");
    (server, Arc::new(blobs))
}

mod s3_conformance {
    use super::s3_store;
    confab_media::blob_conformance_tests!(s3_store());
}

fn media_node(redis: &RedisServer, s3: &S3Server, id: &str) -> TestNode {
    let options = s3_options(s3);
    TestNode::builder()
        .cluster(&redis.url(), id)
        .configure(move |c| {
            c.media.backend = confab_server::config::MediaBackend::S3;
            c.media.s3.bucket = options.bucket;
            c.media.s3.endpoint = options.endpoint;
            c.media.s3.access_key_id = options.access_key_id;
            c.media.s3.secret_access_key = options.secret_access_key;
            c.media.s3.prefix = options.prefix;
            c.media.s3.path_style = true;
        })
        .start()
        .expect("node")
}

async fn bytes_of(url: &str, rest: Option<&TestNode>) -> (u16, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(node) = rest {
        request = request.basic_auth(
            &node.credentials.account_sid,
            Some(&node.credentials.auth_token),
        );
    }
    let response = request.send().await.expect("GET content");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn a_cluster_serves_media_from_any_node_until_its_message_is_removed() {
    let redis = RedisServer::start().unwrap();
    let s3 = S3Server::start("media").unwrap();
    let a = media_node(&redis, &s3, "media-a");
    let b = media_node(&redis, &s3, "media-b");
    let rest_a: RestClient = a.rest();
    let rest_b: RestClient = b.rest();
    let (service, channel) = service_with_channel(&rest_a, "gallery").await;
    let image: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();

    let upload = rest_a
        .post_raw(
            &format!("/v1/Services/{service}/Media?Filename=cat.png"),
            "image/png",
            image.clone(),
        )
        .await;
    assert_eq!(upload.status, 201, "{:?}", upload.body);
    let media = upload.str("sid");
    assert!(media.starts_with("ME"), "{media}");
    assert_eq!(upload.body["size"], image.len());
    assert_eq!(upload.str("content_type"), "image/png");
    assert_eq!(upload.str("filename"), "cat.png");
    assert_eq!(upload.body["message_sid"], Value::Null);

    let sent = rest_a
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("MediaSid", &media), ("From", "alice")],
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(sent.str("type"), "media");
    assert_eq!(sent.body["media"]["sid"], media.as_str());
    assert_eq!(sent.body["media"]["size"], image.len());
    let message = sent.str("sid");
    // Attached once, whichever node is asked.
    let again = rest_b
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("MediaSid", &media)],
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (409, Some(50511)),
        "{:?}",
        again.body
    );

    // The other node serves the record, the bytes, and a temporary URL without credentials.
    let record = rest_b
        .get(&format!("/v1/Services/{service}/Media/{media}"))
        .await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    assert_eq!(record.str("message_sid"), message);
    assert_eq!(record.str("channel_sid"), channel);
    let content = record.body["links"]["content"].as_str().unwrap().to_owned();
    let temporary = record.body["links"]["content_direct_temporary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bytes_of(&content, Some(&b)).await, (200, image.clone()));
    assert_eq!(bytes_of(&temporary, None).await, (200, image.clone()));
    assert_eq!(bytes_of(&content, None).await.0, 401);
    let forged = temporary.replace("Signature=", "Signature=x");
    assert_eq!(bytes_of(&forged, None).await.0, 403);
    // The bytes are in the bucket.
    let object = s3.root().join("media/confab").join(&service).join(&media);
    assert_eq!(std::fs::read(&object).unwrap(), image);

    // Removing the message through the other node removes the media and its bytes.
    let removed = rest_b
        .delete(&format!(
            "/v2/Services/{service}/Channels/{channel}/Messages/{message}"
        ))
        .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    eventually("the media is deleted with its message", || async {
        rest_a
            .get(&format!("/v1/Services/{service}/Media/{media}"))
            .await
            .status
            == 404
            && !object.exists()
    })
    .await;
}

#[tokio::test]
async fn the_rust_sdk_sends_a_file_that_members_read_and_a_restart_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = TestNode::builder().data_dir(&data).start().unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "files").await;
    let connect = |identity: &str| {
        let token = node.token(identity, &service, 3600);
        let url = node.base_url();
        async move { Client::connect(&url, &token).await.unwrap() }
    };
    let (alice, _) = connect("alice").await;
    let (bob, mut bob_events) = connect("bob").await;
    let (eve, _) = connect("eve").await;
    let mut room = alice.get_channel(&channel).await.unwrap();
    room.join().await.unwrap();
    bob.get_channel(&channel)
        .await
        .unwrap()
        .join()
        .await
        .unwrap();
    let file = MediaFile {
        content_type: "application/pdf".into(),
        filename: Some("report.pdf".into()),
        bytes: b"%PDF-1.7 not really".to_vec(),
    };
    let index = room.send_media(file.clone(), None).await.unwrap();

    let added = next_event_where(&mut bob_events, "messageAdded", |e| {
        e.data["index"].as_u64() == Some(index)
    })
    .await;
    assert_eq!(added.data["type"], "media");
    assert_eq!(added.data["media"]["filename"], "report.pdf");
    assert_eq!(added.data["media"]["contentType"], "application/pdf");
    assert_eq!(added.data["media"]["size"], file.bytes.len());
    let sid = added.data["media"]["sid"].as_str().unwrap().to_owned();
    let seen = bob.get_media(&sid).await.unwrap();
    assert_eq!(
        bytes_of(&seen.links.content_direct_temporary, None).await,
        (200, file.bytes.clone())
    );
    // Not a member of the channel: as if it did not exist.
    assert_eq!(eve.get_media(&sid).await.unwrap_err().code(), Some(20404));
    // Someone else's upload cannot be sent by bob.
    let bobs = bob.get_channel(&channel).await.unwrap();
    let theirs = bob
        .send(confab_client::Request::SendMessage {
            channel: bobs.sid().to_owned(),
            body: String::new(),
            attributes: None,
            client_id: None,
            media_sid: Some(sid.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Some(20404));
    for client in [alice, bob, eve] {
        client.shutdown();
    }

    // The filesystem backend keeps it across a restart.
    node.stop().await;
    let node = TestNode::builder().data_dir(&data).start().unwrap();
    let record = node
        .rest()
        .get(&format!("/v1/Services/{service}/Media/{sid}"))
        .await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    let content = record.body["links"]["content"].as_str().unwrap().to_owned();
    assert_eq!(bytes_of(&content, Some(&node)).await, (200, file.bytes));

    // Deleting the service deletes its media, posted or not, records and bytes.
    let rest = node.rest();
    let loose = rest
        .post_raw(
            &format!("/v1/Services/{service}/Media"),
            "image/gif",
            b"GIF89a".to_vec(),
        )
        .await;
    assert_eq!(loose.status, 201, "{:?}", loose.body);
    let files = data.join("media").join(&service);
    assert_eq!(std::fs::read_dir(&files).unwrap().count(), 2);
    let deleted = rest.delete(&format!("/v2/Services/{service}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(std::fs::read_dir(&files).unwrap().count(), 0);
    node.stop().await;
}

#[tokio::test]
async fn media_off_refuses_uploads_and_nothing_else_changes() {
    let node = TestNode::builder()
        .configure(|c| c.media.backend = confab_server::config::MediaBackend::Off)
        .start()
        .unwrap();
    let rest = node.rest();
    let (service, channel) = service_with_channel(&rest, "plain").await;
    let upload = rest
        .post_raw(
            &format!("/v1/Services/{service}/Media"),
            "image/png",
            b"png".to_vec(),
        )
        .await;
    assert_eq!(
        (upload.status, upload.code()),
        (503, Some(20503)),
        "{:?}",
        upload.body
    );
    let text = rest
        .post(
            &format!("/v2/Services/{service}/Channels/{channel}/Messages"),
            &[("Body", "still works")],
        )
        .await;
    assert_eq!(text.status, 201, "{:?}", text.body);
    node.stop().await;
}
