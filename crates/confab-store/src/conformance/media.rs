//! The media records' contract: a media is attached once, a retried attach of the same message
//! succeeds, a detach releases only its own message's attachment, and records belong to their
//! service.

use std::sync::Arc;

use confab_domain::{ChannelSid, Media, MediaSid, MessageSid, ServiceSid, Timestamp};

use crate::{Conflict, Store, StoreError};

fn media(bits: u128, service: ServiceSid) -> Media {
    Media {
        sid: MediaSid::from_bits(bits),
        service_sid: service,
        size: 3,
        content_type: "image/png".into(),
        filename: Some("cat.png".into()),
        author: Some("alice".into()),
        channel_sid: None,
        message_sid: None,
        date_created: Timestamp(10),
        date_updated: Timestamp(10),
    }
}

/// Attach once; a second message is refused; detach and delete.
pub async fn media_is_attached_once(store: Arc<dyn Store>) {
    let service = ServiceSid::from_bits(1);
    let other_service = ServiceSid::from_bits(2);
    let channel = ChannelSid::from_bits(7);
    let (first, second) = (MessageSid::from_bits(1), MessageSid::from_bits(2));
    let m = media(1, service);
    store.create_media(&m).await.expect("create");
    assert!(matches!(
        store.create_media(&m).await,
        Err(StoreError::Conflict(Conflict::Sid))
    ));
    assert_eq!(
        store.get_media(service, m.sid).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(store.get_media(other_service, m.sid).await.unwrap(), None);
    assert_eq!(
        store
            .attach_media(other_service, m.sid, channel, first, Timestamp(20))
            .await
            .unwrap(),
        None,
        "another service's media is not found"
    );
    let attached = store
        .attach_media(service, m.sid, channel, first, Timestamp(20))
        .await
        .unwrap()
        .expect("attached");
    assert_eq!(attached.channel_sid, Some(channel));
    assert_eq!(attached.message_sid, Some(first));
    assert_eq!(attached.date_updated, Timestamp(20));
    // A retried send of the same message attaches nothing new.
    let again = store
        .attach_media(service, m.sid, channel, first, Timestamp(30))
        .await
        .unwrap()
        .expect("still attached");
    assert_eq!(again, attached);
    assert!(matches!(
        store
            .attach_media(service, m.sid, channel, second, Timestamp(30))
            .await,
        Err(StoreError::Conflict(Conflict::Sid))
    ));
    assert_eq!(
        store.get_media(service, m.sid).await.unwrap(),
        Some(attached.clone())
    );
    assert_eq!(
        store.channel_media(channel).await.unwrap(),
        vec![attached.clone()]
    );
    // Another message's detach leaves it; its own releases it.
    store.detach_media(service, m.sid, second).await.unwrap();
    assert_eq!(
        store.get_media(service, m.sid).await.unwrap(),
        Some(attached.clone())
    );
    store.detach_media(service, m.sid, first).await.unwrap();
    assert_eq!(
        store
            .get_media(service, m.sid)
            .await
            .unwrap()
            .and_then(|m| m.message_sid),
        None
    );
    assert!(store.channel_media(channel).await.unwrap().is_empty());
    store
        .attach_media(service, m.sid, channel, second, Timestamp(40))
        .await
        .unwrap()
        .expect("attachable after the detach");
    assert_eq!(
        store
            .delete_media(service, m.sid)
            .await
            .unwrap()
            .map(|m| m.sid),
        Some(m.sid)
    );
    assert_eq!(store.get_media(service, m.sid).await.unwrap(), None);
    assert_eq!(store.delete_media(service, m.sid).await.unwrap(), None);
    assert!(store.channel_media(channel).await.unwrap().is_empty());
    assert_eq!(
        store
            .attach_media(service, m.sid, channel, first, Timestamp(50))
            .await
            .unwrap(),
        None,
        "a deleted media is not found"
    );
}

/// Deleting a service's media takes every record of that service, attached or not, and no
/// other service's.
pub async fn service_media_is_deleted_with_the_service(store: Arc<dyn Store>) {
    let (service, other) = (ServiceSid::from_bits(1), ServiceSid::from_bits(2));
    let (loose, posted, kept) = (media(11, service), media(12, service), media(13, other));
    for m in [&loose, &posted, &kept] {
        store.create_media(m).await.expect("create");
    }
    store
        .attach_media(
            service,
            posted.sid,
            ChannelSid::from_bits(7),
            MessageSid::from_bits(1),
            Timestamp(20),
        )
        .await
        .unwrap()
        .expect("attached");
    let mut deleted: Vec<MediaSid> = store
        .delete_service_media(service)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.sid)
        .collect();
    deleted.sort();
    assert_eq!(deleted, vec![loose.sid, posted.sid]);
    assert_eq!(store.get_media(service, loose.sid).await.unwrap(), None);
    assert_eq!(store.get_media(service, posted.sid).await.unwrap(), None);
    assert!(store.get_media(other, kept.sid).await.unwrap().is_some());
    assert!(store
        .delete_service_media(service)
        .await
        .unwrap()
        .is_empty());
}

/// Old unattached uploads are found oldest first; an attached one is neither found nor deleted
/// as unattached; a detach makes it unattached again.
pub async fn unattached_media_can_be_swept(store: Arc<dyn Store>) {
    let service = ServiceSid::from_bits(1);
    let at = |bits: u128, created: i64| Media {
        date_created: Timestamp(created),
        date_updated: Timestamp(created),
        ..media(bits, service)
    };
    let (old, older, posted, young) = (at(21, 200), at(22, 100), at(23, 50), at(24, 1_000));
    for m in [&old, &older, &posted, &young] {
        store.create_media(m).await.expect("create");
    }
    let (channel, message) = (ChannelSid::from_bits(7), MessageSid::from_bits(9));
    store
        .attach_media(service, posted.sid, channel, message, Timestamp(60))
        .await
        .unwrap()
        .expect("attached");
    let found = |v: Vec<Media>| v.into_iter().map(|m| m.sid).collect::<Vec<_>>();
    assert_eq!(
        found(
            store
                .unattached_media_before(Timestamp(500), 10)
                .await
                .unwrap()
        ),
        vec![older.sid, old.sid],
        "oldest first, attached and young ones left"
    );
    assert_eq!(
        found(
            store
                .unattached_media_before(Timestamp(500), 1)
                .await
                .unwrap()
        ),
        vec![older.sid]
    );
    assert_eq!(
        store
            .delete_unattached_media(service, posted.sid)
            .await
            .unwrap(),
        None,
        "an attached media is not swept"
    );
    assert!(store
        .get_media(service, posted.sid)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .delete_unattached_media(service, older.sid)
            .await
            .unwrap()
            .map(|m| m.sid),
        Some(older.sid)
    );
    assert_eq!(store.get_media(service, older.sid).await.unwrap(), None);
    assert_eq!(
        store
            .delete_unattached_media(service, older.sid)
            .await
            .unwrap(),
        None
    );
    // Detached (its message was never stored): unattached again, and old.
    store
        .detach_media(service, posted.sid, message)
        .await
        .unwrap();
    assert_eq!(
        found(
            store
                .unattached_media_before(Timestamp(500), 10)
                .await
                .unwrap()
        ),
        vec![posted.sid, old.sid]
    );
    // A deleted one is gone from the sweep too.
    store.delete_media(service, old.sid).await.unwrap();
    assert_eq!(
        found(
            store
                .unattached_media_before(Timestamp(500), 10)
                .await
                .unwrap()
        ),
        vec![posted.sid]
    );
}
