//! The use cases without sockets: an application over a real `SqliteStore` on a temporary file
//! and the node-local bus, called as the account and as users.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use confab_app::channels::{NewChannel, UserRef};
use confab_app::media::{content_path, MediaSettings, Upload};
use confab_app::messages::{Direction, NewMessage};
use confab_app::users::UserChange;
use confab_app::{App, AppLimits, Caller, Participation};
use confab_cluster::{ChannelRuntime, LocalBroker, RuntimeConfig};
use confab_domain::{
    CountingSids, DefaultRoles, Service, ServiceLimits, ServiceSid, Timestamp, UpdateChannel,
};
use confab_media::{BlobStore, Bytes, FsBlobs, UrlSigner};
use confab_store::{SqliteOptions, SqliteStore, Store};

struct Fixture {
    app: App,
    service: Service,
    roles: DefaultRoles,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    let sid = ServiceSid::from_bits(1);
    let roles = DefaultRoles::new(sid, &mut CountingSids(0), Timestamp(0));
    let service = Service::new(
        sid,
        "t",
        &roles,
        ServiceLimits {
            channel_members: 100,
            user_channels: 100,
        },
        Timestamp(0),
    );
    store
        .create_service(&service, &roles.clone().into_vec())
        .await
        .unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobs::open(dir.path().join("media")).unwrap());
    let runtime = ChannelRuntime::new(
        store,
        Arc::new(LocalBroker::new(1024)),
        RuntimeConfig {
            // Long enough that only explicit invalidation can explain a fresh decision.
            policy_ttl: Duration::from_secs(3600),
            media: Some(blobs.clone()),
            ..RuntimeConfig::default()
        },
    );
    let media = MediaSettings {
        blobs: Some(blobs),
        signer: UrlSigner::new(b"test"),
        max_upload_bytes: 1024,
        allowed_types: vec!["image/*".into()],
        url_ttl: Duration::from_secs(60),
        uploads_in_flight: 2,
        uploads_per_minute: 5,
    };
    Fixture {
        app: App::new(runtime, AppLimits::default(), media),
        service,
        roles,
        _dir: dir,
    }
}

impl Fixture {
    fn user(&self, identity: &str) -> Caller {
        Caller::user(self.service.sid, identity)
    }

    fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    async fn ensure(&self, identity: &str) {
        self.app.ensure_user(&self.service, identity).await.unwrap();
    }

    /// Users alice, bob and eve; the public channel `room` that alice created, with alice and
    /// bob as members. Returns the three as callers.
    async fn room_of_alice_and_bob(&self) -> (Caller, Caller, Caller) {
        for who in ["alice", "bob", "eve"] {
            self.ensure(who).await;
        }
        let (alice, bob, eve) = (self.user("alice"), self.user("bob"), self.user("eve"));
        self.app
            .create_channel(
                &alice,
                NewChannel {
                    unique_name: Some("room".into()),
                    ..NewChannel::default()
                },
            )
            .await
            .unwrap();
        self.app.join(&alice, "room").await.unwrap();
        self.app.join(&bob, "room").await.unwrap();
        (alice, bob, eve)
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, confab_app::AppError>) -> u32 {
    result.expect_err("refused").code
}

#[actix_rt::test]
async fn a_creator_joins_its_private_channel_as_admin_and_others_do_not_see_it() {
    let f = fixture().await;
    for who in ["alice", "bob"] {
        f.ensure(who).await;
    }
    let alice = f.user("alice");
    let channel = f
        .app
        .create_channel(
            &alice,
            NewChannel {
                unique_name: Some("secret".into()),
                private: true,
                ..NewChannel::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(channel.created_by, "alice");
    let (_, member) = f.app.join(&alice, "secret").await.unwrap();
    assert_eq!(member.role_sid, f.roles.channel_admin.sid);
    let bob = UserRef {
        service: f.service.sid,
        identity: "bob",
    };
    assert_eq!(code(f.app.visible_channel(bob, "secret").await), 50300);
    assert_eq!(code(f.app.join(&f.user("bob"), "secret").await), 50300);
    // Invited, bob sees it and joins with the default role.
    f.app.invite(&alice, "secret", "bob", false).await.unwrap();
    let seen = f.app.visible_channel(bob, "secret").await.unwrap();
    assert_eq!(seen.participation, Participation::Invited);
    let (_, member) = f.app.join(&f.user("bob"), "secret").await.unwrap();
    assert_eq!(member.role_sid, f.roles.channel_user.sid);
}

#[actix_rt::test]
async fn messages_need_membership_and_the_own_or_any_permission() {
    let f = fixture().await;
    let (alice, bob, eve) = f.room_of_alice_and_bob().await;
    let send = |body: &str| NewMessage {
        body: body.into(),
        ..NewMessage::default()
    };
    let first = f.app.send_message(&alice, "room", send("a")).await.unwrap();
    let second = f.app.send_message(&bob, "room", send("b")).await.unwrap();
    assert_eq!(
        code(f.app.send_message(&eve, "room", send("e")).await),
        50400
    );
    assert_eq!(
        code(
            f.app
                .update_message(&bob, "room", first.index, Some("x".into()), None)
                .await
        ),
        50107
    );
    f.app
        .update_message(&bob, "room", second.index, Some("edited".into()), None)
        .await
        .unwrap();
    f.app
        .remove_message(&alice, "room", second.index)
        .await
        .unwrap();
    let me = UserRef {
        service: f.service.sid,
        identity: "bob",
    };
    let page = f
        .app
        .history(me, "room", 10, None, Direction::Backwards)
        .await
        .unwrap();
    let bodies: Vec<&str> = page.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["a"]);
}

#[actix_rt::test]
async fn a_role_change_through_this_node_applies_to_the_next_decision() {
    let f = fixture().await;
    f.ensure("boss").await;
    let boss = f.user("boss");
    let store = f.app.store().clone();
    let mut user = store
        .get_user_by_identity(f.service.sid, "boss")
        .await
        .unwrap()
        .unwrap();
    // Refused as a service user, then promoted: allowed at once (the REST layer forgets the
    // cached role after it writes, as here).
    f.app
        .create_channel(
            &f.user("boss"),
            NewChannel {
                unique_name: Some("target".into()),
                ..NewChannel::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(code(f.app.delete_channel(&boss, "target").await), 50107);
    user.role_sid = f.roles.service_admin.sid;
    store.update_user(&user).await.unwrap();
    f.app.policies().forget_user(f.service.sid, "boss");
    f.app
        .update_channel(
            &boss,
            "target",
            UpdateChannel {
                friendly_name: Some("renamed by an admin".into()),
                ..UpdateChannel::default()
            },
        )
        .await
        .unwrap();
    f.app.delete_channel(&boss, "target").await.unwrap();
}

#[actix_rt::test]
async fn a_user_edits_its_own_info_only_as_its_role_allows() {
    let f = fixture().await;
    f.ensure("alice").await;
    let alice = f.user("alice");
    let (user, reasons) = f
        .app
        .update_own_user(
            &alice,
            UserChange {
                friendly_name: Some("Alice".into()),
                attributes: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(user.friendly_name.as_deref(), Some("Alice"));
    assert_eq!(reasons, ["friendlyName"]);
    assert_eq!(
        code(
            f.app
                .update_own_user(&Caller::Account, UserChange::default())
                .await
        ),
        20001
    );
}

#[actix_rt::test]
async fn invites_create_users_within_the_inviters_rate_and_the_services_cap() {
    let f = fixture().await;
    f.ensure("alice").await;
    let alice = f.user("alice");
    f.app
        .create_channel(
            &alice,
            NewChannel {
                unique_name: Some("room".into()),
                ..NewChannel::default()
            },
        )
        .await
        .unwrap();
    f.app.join(&alice, "room").await.unwrap();
    // The default allowance is 60 new users a minute: the 61st made-up identity is refused,
    // while inviting someone who exists still works.
    for i in 0..60 {
        f.app
            .invite(&alice, "room", &format!("made-up-{i}"), false)
            .await
            .unwrap();
    }
    assert_eq!(
        code(f.app.invite(&alice, "room", "made-up-60", false).await),
        20429
    );
    f.ensure("bob").await;
    f.app.invite(&alice, "room", "bob", false).await.unwrap();
    let users = f.app.store().count_users(f.service.sid).await.unwrap();
    assert_eq!(users, 62);
}

fn png(bytes: &'static [u8]) -> Upload {
    Upload {
        content_type: "image/png".into(),
        filename: Some("cat.png".into()),
        bytes: Bytes::from_static(bytes),
    }
}

#[actix_rt::test]
async fn media_is_read_by_its_uploader_and_the_channel_it_was_posted_in() {
    let f = fixture().await;
    let (alice, bob, eve) = f.room_of_alice_and_bob().await;
    let slot = f.app.admit_upload(&alice, &f.service, None).unwrap();
    assert_eq!(
        slot.limit, 1024,
        "the node's bound caps the service's 150 MB"
    );
    let media = f
        .app
        .upload_media(&alice, &f.service, &slot, png(b"\x89PNG"))
        .await
        .unwrap();
    assert_eq!((media.size, media.author.as_deref()), (4, Some("alice")));
    // Before it is posted: the uploader only.
    assert!(f.app.media(&alice, f.service.sid, media.sid).await.is_ok());
    assert_eq!(
        code(f.app.media(&bob, f.service.sid, media.sid).await),
        20404
    );
    // Another user cannot post alice's upload.
    let with_media = NewMessage {
        media: Some(media.sid),
        ..NewMessage::default()
    };
    assert_eq!(
        code(f.app.send_message(&bob, "room", with_media.clone()).await),
        20404
    );
    let message = f
        .app
        .send_message(&alice, "room", with_media.clone())
        .await
        .unwrap();
    assert_eq!(message.kind(), "media");
    assert_eq!(message.media.as_deref(), Some(&media.summary()));
    // Attached once.
    assert_eq!(
        code(f.app.send_message(&alice, "room", with_media).await),
        50511
    );
    // Posted: the channel's members read it, a stranger does not.
    let (seen, blob) = f
        .app
        .media_content(&bob, f.service.sid, media.sid)
        .await
        .unwrap();
    assert_eq!(seen.message_sid, Some(message.sid));
    assert_eq!(blob.read_all().await.unwrap(), b"\x89PNG");
    assert_eq!(
        code(f.app.media_content(&eve, f.service.sid, media.sid).await),
        20404
    );
    assert!(f
        .app
        .media(&Caller::Account, f.service.sid, media.sid)
        .await
        .is_ok());
    // A signed URL works without a caller until it expires; a forged one does not.
    let query = f.app.temporary_content_query(&seen);
    let expires: i64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("Expires="))
        .unwrap()
        .parse()
        .unwrap();
    let signature = query.split_once("Signature=").unwrap().1;
    assert!(f
        .app
        .media_content_signed(f.service.sid, media.sid, expires, signature)
        .await
        .is_ok());
    assert_eq!(
        code(
            f.app
                .media_content_signed(f.service.sid, media.sid, expires + 1, signature)
                .await
        ),
        20403
    );
    assert!(content_path(f.service.sid, media.sid).ends_with("/Content"));
    // Removing the message removes its media.
    f.app
        .remove_message(&alice, "room", message.index)
        .await
        .unwrap();
    for _ in 0..100 {
        if f.app
            .media(&Caller::Account, f.service.sid, media.sid)
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        code(
            f.app
                .media(&Caller::Account, f.service.sid, media.sid)
                .await
        ),
        20404
    );
}

#[actix_rt::test]
async fn uploads_are_bounded_in_size_type_and_number() {
    let f = fixture().await;
    let alice = f.user("alice");
    let slot = f.app.admit_upload(&alice, &f.service, None).unwrap();
    let big = Upload {
        bytes: Bytes::from(vec![0u8; 1025]),
        ..png(b"")
    };
    assert_eq!(
        code(f.app.upload_media(&alice, &f.service, &slot, big).await),
        50512
    );
    let text = Upload {
        content_type: "text/html".into(),
        ..png(b"<b>")
    };
    assert_eq!(
        code(f.app.upload_media(&alice, &f.service, &slot, text).await),
        20001
    );
    let named = Upload {
        filename: Some("../../etc/passwd".into()),
        ..png(b"x")
    };
    assert_eq!(
        code(f.app.upload_media(&alice, &f.service, &slot, named).await),
        20001
    );
    assert_eq!(
        code(
            f.app
                .upload_media(&alice, &f.service, &slot, png(b""))
                .await
        ),
        20001,
        "an empty upload"
    );
    // Refused before a byte is read: another service's user, a declared type not allowed.
    let stranger = Caller::user(ServiceSid::from_bits(99), "alice");
    assert_eq!(code(f.app.admit_upload(&stranger, &f.service, None)), 20404);
    assert_eq!(
        code(
            f.app
                .admit_upload(&Caller::Account, &f.service, Some("text/html"))
        ),
        20001
    );
    // The node reads two uploads at once (the account has no per-user allowance)...
    let account = Caller::Account;
    let _second = f.app.admit_upload(&account, &f.service, None).unwrap();
    assert_eq!(code(f.app.admit_upload(&account, &f.service, None)), 20429);
    drop(slot);
    drop(_second);
    // ...and a user makes five a minute.
    for _ in 0..4 {
        drop(f.app.admit_upload(&alice, &f.service, None).unwrap());
    }
    assert_eq!(code(f.app.admit_upload(&alice, &f.service, None)), 20429);
    assert!(f.app.admit_upload(&f.user("bob"), &f.service, None).is_ok());
}

#[actix_rt::test]
async fn uploads_never_sent_are_swept_and_sent_ones_stay() {
    let f = fixture().await;
    let (alice, _, _) = f.room_of_alice_and_bob().await;
    let slot = f.app.admit_upload(&alice, &f.service, None).unwrap();
    let unsent = f
        .app
        .upload_media(&alice, &f.service, &slot, png(b"unsent"))
        .await
        .unwrap();
    let sent = f
        .app
        .upload_media(&alice, &f.service, &slot, png(b"sent"))
        .await
        .unwrap();
    f.app
        .send_message(
            &alice,
            "room",
            NewMessage {
                media: Some(sent.sid),
                ..NewMessage::default()
            },
        )
        .await
        .unwrap();
    let account = Caller::Account;
    // Not old enough yet: nothing goes.
    let swept = f
        .app
        .sweep_unattached_media(unsent.date_created, 100)
        .await
        .unwrap();
    assert_eq!(swept, 0);
    let later = Timestamp(unsent.date_created.millis() + 1);
    assert_eq!(f.app.sweep_unattached_media(later, 100).await.unwrap(), 1);
    assert_eq!(
        code(f.app.media(&account, f.service.sid, unsent.sid).await),
        20404
    );
    let blob = f.dir().join("media").join(unsent.blob_key());
    assert!(!blob.exists(), "{blob:?} is left");
    let (_, content) = f
        .app
        .media_content(&account, f.service.sid, sent.sid)
        .await
        .unwrap();
    assert_eq!(content.read_all().await.unwrap(), b"sent");
}
