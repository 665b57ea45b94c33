//! Unique names' contract: one channel per name in a service, and a rename frees the old one,
//! whatever commits come around it.

use std::sync::Arc;

use confab_domain::{ChannelCommand, ChannelSid, UpdateChannel};

use super::{post, World};
use crate::{Conflict, Store, StoreError};

/// Two channels cannot share a unique name; the losing commit writes nothing.
pub async fn unique_names_conflict_and_write_nothing(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    world.create_channel(1, Some("dup")).await.unwrap();
    let second = world.create_channel(2, Some("dup")).await;
    assert!(
        matches!(
            second,
            Err(StoreError::Conflict(Conflict::ChannelUniqueName))
        ),
        "duplicate unique name must conflict, got {second:?}"
    );
    assert!(store
        .load_channel(ChannelSid::from_bits(2))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .events_after(ChannelSid::from_bits(2), 0, 10)
        .await
        .unwrap()
        .is_empty());
}

/// A rename moves the channel's unique name, before and after message commits (which a backend
/// may store without touching the name).
pub async fn a_renamed_channel_frees_its_old_name_and_messages_keep_the_new_one(
    store: Arc<dyn Store>,
) {
    let mut world = World::new(store.clone()).await;
    let service = world.service.sid;
    let mut state = world.create_channel(1, Some("old")).await.unwrap();
    world.apply(&mut state, post("before")).await;
    let rename = ChannelCommand::Update(UpdateChannel {
        unique_name: Some("new".into()),
        ..UpdateChannel::default()
    });
    world.apply(&mut state, rename).await;
    world.apply(&mut state, post("after")).await;
    let by_name = |name: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_channel_by_unique_name(service, name)
                .await
                .unwrap()
                .map(|c| c.sid)
        }
    };
    assert_eq!(by_name("old").await, None, "the old name is free");
    assert_eq!(by_name("new").await, Some(state.channel().sid));
    world
        .create_channel(2, Some("old"))
        .await
        .expect("another channel may take the freed name");
    assert!(
        matches!(
            world.create_channel(3, Some("new")).await,
            Err(StoreError::Conflict(Conflict::ChannelUniqueName))
        ),
        "the new name is taken"
    );
    let stored = store.load_channel(state.channel().sid).await.unwrap();
    assert_eq!(stored.map(|s| s.channel), Some(state.channel().clone()));
}
