//! The conformance suite: the behaviour every `Store` backend must show, written once.
//!
//! A backend runs it with [`store_conformance_tests!`](crate::store_conformance_tests), giving an
//! async expression that makes a fresh, empty store together with a guard that keeps what the
//! store needs (a directory, a server) alive until the check ends:
//!
//! ```ignore
//! confab_store::store_conformance_tests!(async { (guard, my_backend::open_empty().await) });
//! ```
//!
//! Each check panics with a message naming the broken contract; that is how a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use confab_domain::{
    AddMember, ApplyContext, ChannelCommand, ChannelEvent, ChannelSid, ChannelState, ChannelType,
    CountingSids, CreateChannel, DefaultRoles, Limits, PostMessage, Service, ServiceLimits,
    ServiceSid, Timestamp, User, UserSid,
};

mod changes;
mod jobs;
mod media;
mod names;
mod user_channels;

pub use self::changes::*;
pub use self::jobs::*;
pub use self::media::*;
pub use self::names::*;
pub use self::user_channels::*;

use crate::{
    ChannelCommit, ChannelStore, Conflict, MemberKey, PageRequest, PageStart, Store, StoreError,
};

/// Generates one `#[tokio::test]` per check, each on a fresh store from `$make`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            service_round_trip,
            users_are_unique_per_identity,
            channel_commit_is_visible_to_readers,
            unique_names_conflict_and_write_nothing,
            a_renamed_channel_frees_its_old_name_and_messages_keep_the_new_one,
            paging_walks_every_item_once,
            messages_page_in_both_directions,
            deleting_a_channel_removes_what_it_holds,
            deleting_a_service_removes_everything,
            events_are_kept_in_seq_order,
            invalid_cursor_is_an_error,
            invites_are_listed_per_identity,
            a_users_channels_are_its_memberships_and_invites,
            filtered_member_lists_page,
            webhook_jobs_are_stored_with_their_commit,
            webhook_job_claims_hold_jobs_until_they_expire,
            webhook_jobs_retry_and_finish,
            media_is_attached_once,
            service_media_is_deleted_with_the_service,
            unattached_media_can_be_swept,
            writes_of_cached_records_are_counted,
        );
    };
    (@tests $make:expr; $($name:ident,)*) => {$(
        #[tokio::test]
        async fn $name() {
            let (_guard, store): (_, ::std::sync::Arc<dyn $crate::Store>) = $make.await;
            $crate::conformance::$name(store).await;
        }
    )*};
}

/// A tiny world for the checks: a service and a way to write channel commands.
struct World {
    store: Arc<dyn Store>,
    service: Service,
    sids: CountingSids,
    limits: Limits,
}

impl World {
    async fn new(store: Arc<dyn Store>) -> Self {
        let mut sids = CountingSids(1000);
        let roles = DefaultRoles::new(ServiceSid::from_bits(1), &mut sids, Timestamp(0));
        let service = Service::new(
            ServiceSid::from_bits(1),
            "test",
            &roles,
            ServiceLimits {
                channel_members: 100,
                user_channels: 250,
            },
            Timestamp(0),
        );
        store
            .create_service(&service, &roles.into_vec())
            .await
            .expect("create_service");
        Self {
            store,
            service,
            sids,
            limits: Limits::default(),
        }
    }

    async fn create_channel(
        &mut self,
        bits: u128,
        unique_name: Option<&str>,
    ) -> Result<ChannelState, StoreError> {
        let mut ctx = ApplyContext {
            now: Timestamp(1),
            sids: &mut self.sids,
            limits: &self.limits,
        };
        let (state, events) = ChannelState::create(
            CreateChannel {
                sid: ChannelSid::from_bits(bits),
                service_sid: self.service.sid,
                friendly_name: None,
                unique_name: unique_name.map(str::to_owned),
                attributes: None,
                kind: ChannelType::Public,
                created_by: None,
                date_created: None,
                date_updated: None,
            },
            &mut ctx,
        )
        .unwrap();
        self.commit(&state, events).await?;
        Ok(state)
    }

    async fn apply(&mut self, state: &mut ChannelState, cmd: ChannelCommand) -> Vec<ChannelEvent> {
        let mut ctx = ApplyContext {
            now: Timestamp(2),
            sids: &mut self.sids,
            limits: &self.limits,
        };
        let events = state.apply(cmd, &mut ctx).unwrap();
        self.commit(state, events.clone()).await.unwrap();
        events
    }

    async fn commit(
        &self,
        state: &ChannelState,
        events: Vec<ChannelEvent>,
    ) -> Result<(), StoreError> {
        self.store
            .commit(&ChannelCommit {
                channel: state.channel().clone(),
                events,
                fence: None,
                jobs: Vec::new(),
                jobs_due: Timestamp(0),
            })
            .await
    }
}

fn post(body: &str) -> ChannelCommand {
    ChannelCommand::PostMessage(PostMessage {
        author: None,
        require_member: false,
        body: body.into(),
        attributes: None,
        date_created: None,
        date_updated: None,
        last_updated_by: None,
        client_id: None,
        media: None,
    })
}

fn add(identity: &str, role: confab_domain::RoleSid) -> ChannelCommand {
    ChannelCommand::AddMember(AddMember {
        identity: identity.into(),
        role_sid: None,
        default_role: role,
        attributes: None,
        last_consumed_message_index: None,
        last_consumption_timestamp: None,
        date_created: None,
        date_updated: None,
    })
}

/// A created service reads back equal, with its four roles.
pub async fn service_round_trip(store: Arc<dyn Store>) {
    let world = World::new(store.clone()).await;
    let read = store.get_service(world.service.sid).await.unwrap();
    assert_eq!(
        read.as_ref(),
        Some(&world.service),
        "service must read back as written"
    );
    let roles = store
        .list_roles(world.service.sid, &PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(roles.items.len(), 4, "a service is created with its roles");
}

/// A second user with the same identity in the same service is a conflict.
pub async fn users_are_unique_per_identity(store: Arc<dyn Store>) {
    let world = World::new(store.clone()).await;
    let user = |bits| User {
        sid: UserSid::from_bits(bits),
        service_sid: world.service.sid,
        identity: "alice".into(),
        friendly_name: None,
        attributes: Default::default(),
        role_sid: world.service.default_service_role_sid,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    };
    store.create_user(&user(1)).await.unwrap();
    let second = store.create_user(&user(2)).await;
    assert!(
        matches!(second, Err(StoreError::Conflict(Conflict::UserIdentity))),
        "duplicate identity must conflict, got {second:?}"
    );
    assert!(store
        .get_user(world.service.sid, UserSid::from_bits(2))
        .await
        .unwrap()
        .is_none());
    let by_identity = store
        .get_user_by_identity(world.service.sid, "alice")
        .await
        .unwrap();
    assert_eq!(by_identity.map(|u| u.sid), Some(UserSid::from_bits(1)));
    let mut bob = user(3);
    bob.identity = "bob".into();
    store.create_user(&bob).await.unwrap();
    assert_eq!(store.count_users(world.service.sid).await.unwrap(), 2);
    store
        .delete_user(world.service.sid, UserSid::from_bits(3))
        .await
        .unwrap();
    assert_eq!(store.count_users(world.service.sid).await.unwrap(), 1);
}

/// After a commit returns, the channel, members and messages are readable.
pub async fn channel_commit_is_visible_to_readers(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let mut state = world.create_channel(1, Some("general")).await.unwrap();
    world.apply(&mut state, add("alice", role)).await;
    world.apply(&mut state, post("hello")).await;
    let sid = state.channel().sid;
    let snapshot = store
        .load_channel(sid)
        .await
        .unwrap()
        .expect("channel exists");
    assert_eq!(&snapshot.channel, state.channel());
    assert_eq!(snapshot.members.len(), 1);
    let by_name = store
        .get_channel_by_unique_name(world.service.sid, "general")
        .await
        .unwrap();
    assert_eq!(by_name.map(|c| c.sid), Some(sid));
    let other = world.create_channel(2, None).await.unwrap();
    let missing = ChannelSid::from_bits(u128::MAX);
    let both = store
        .get_channels(world.service.sid, &[other.channel().sid, missing, sid])
        .await
        .unwrap();
    assert_eq!(
        both.iter().map(|c| c.sid).collect::<Vec<_>>(),
        vec![other.channel().sid, sid],
        "those that exist, in the order asked"
    );
    assert!(store
        .get_channels(ServiceSid::from_bits(u128::MAX), &[sid])
        .await
        .unwrap()
        .is_empty());
    let member = store
        .get_member(sid, &MemberKey::Identity("alice".into()))
        .await
        .unwrap()
        .expect("member by identity");
    assert_eq!(
        store
            .get_member(sid, &MemberKey::Sid(member.sid))
            .await
            .unwrap()
            .map(|m| m.identity),
        Some("alice".into())
    );
    let messages = store
        .list_messages(sid, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(messages.items.len(), 1);
    assert_eq!(messages.items[0].body, "hello");
    assert_eq!(
        store
            .count_memberships(world.service.sid, "alice")
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.count_messages_after(sid, None).await.unwrap(), 1);
    assert_eq!(store.count_messages_after(sid, Some(0)).await.unwrap(), 0);
}

/// Following `next` cursors visits every channel exactly once, in creation order.
pub async fn paging_walks_every_item_once(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    for bits in 1..=25 {
        world.create_channel(bits, None).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let got = store
            .list_channels(world.service.sid, &[], &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 7);
        seen.extend(got.items.iter().map(|c| c.sid));
        match got.next {
            Some(cursor) => page.start = PageStart::After(cursor),
            None => break,
        }
    }
    let expected: Vec<_> = (1..=25).map(ChannelSid::from_bits).collect();
    assert_eq!(
        seen, expected,
        "paging must return each channel once, in order"
    );
    let offset = PageRequest {
        size: 5,
        start: PageStart::Offset(20),
        descending: false,
    };
    let tail = store
        .list_channels(world.service.sid, &[], &offset)
        .await
        .unwrap();
    assert_eq!(tail.items.len(), 5);
    assert_eq!(tail.next, None);
    let private = store
        .list_channels(
            world.service.sid,
            &[ChannelType::Private],
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert!(private.items.is_empty(), "type filter must apply");
}

/// Messages page by index, ascending or descending.
pub async fn messages_page_in_both_directions(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let mut state = world.create_channel(1, None).await.unwrap();
    for i in 0..10 {
        world.apply(&mut state, post(&format!("m{i}"))).await;
    }
    let sid = state.channel().sid;
    let mut page = PageRequest {
        size: 4,
        start: PageStart::First,
        descending: true,
    };
    let mut indices = Vec::new();
    loop {
        let got = store.list_messages(sid, &page).await.unwrap();
        indices.extend(got.items.iter().map(|m| m.index));
        match got.next {
            Some(cursor) => page.start = PageStart::After(cursor),
            None => break,
        }
    }
    assert_eq!(indices, (0..10).rev().collect::<Vec<u64>>());
}

/// Deleting a channel removes its members, messages, invites and events.
pub async fn deleting_a_channel_removes_what_it_holds(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let mut state = world.create_channel(1, Some("gone")).await.unwrap();
    world.apply(&mut state, add("alice", role)).await;
    world.apply(&mut state, post("x")).await;
    world.apply(&mut state, ChannelCommand::Delete).await;
    let sid = state.channel().sid;
    assert!(store.load_channel(sid).await.unwrap().is_none());
    assert!(store
        .get_channel_by_unique_name(world.service.sid, "gone")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_messages(sid, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        store
            .count_memberships(world.service.sid, "alice")
            .await
            .unwrap(),
        0
    );
    // The unique name is free again.
    world.create_channel(2, Some("gone")).await.unwrap();
}

/// Deleting a service removes its channels, users and roles.
pub async fn deleting_a_service_removes_everything(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let mut state = world.create_channel(1, None).await.unwrap();
    world.apply(&mut state, post("x")).await;
    assert!(store.delete_service(world.service.sid).await.unwrap());
    assert!(store
        .get_service(world.service.sid)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .load_channel(state.channel().sid)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_roles(world.service.sid, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(!store.delete_service(world.service.sid).await.unwrap());
}

/// Events come back in seq order, starting after the given seq.
pub async fn events_are_kept_in_seq_order(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let mut state = world.create_channel(1, None).await.unwrap();
    for i in 0..5 {
        world.apply(&mut state, post(&format!("m{i}"))).await;
    }
    let events = store
        .events_after(state.channel().sid, 2, 100)
        .await
        .unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
}

/// A cursor the store did not hand out is refused, not misread.
pub async fn invalid_cursor_is_an_error(store: Arc<dyn Store>) {
    let world = World::new(store.clone()).await;
    let page = PageRequest {
        size: 5,
        start: PageStart::After("not-a-cursor".into()),
        descending: false,
    };
    let got = store.list_channels(world.service.sid, &[], &page).await;
    assert!(matches!(got, Err(StoreError::InvalidCursor)), "got {got:?}");
    for cursor in ["NaN", "1.5", "inf", ""] {
        let page = PageRequest {
            size: 5,
            start: PageStart::After(cursor.into()),
            descending: false,
        };
        let got = store.list_channels(world.service.sid, &[], &page).await;
        assert!(
            matches!(got, Err(StoreError::InvalidCursor)),
            "{cursor:?}: got {got:?}"
        );
    }
}

/// A list filtered by identities pages like the unfiltered one.
pub async fn filtered_member_lists_page(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let mut state = world.create_channel(1, None).await.unwrap();
    for identity in ["a", "b", "c", "d", "e"] {
        world.apply(&mut state, add(identity, role)).await;
    }
    let wanted: Vec<String> = ["e", "a", "c", "d"].iter().map(|s| s.to_string()).collect();
    let mut page = PageRequest::first(2);
    let mut seen = Vec::new();
    loop {
        let got = store
            .list_members(state.channel().sid, &wanted, &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.into_iter().map(|m| m.identity));
        match got.next {
            Some(cursor) => page.start = PageStart::After(cursor),
            None => break,
        }
    }
    assert_eq!(seen, vec!["a", "c", "d", "e"], "joining order, each once");
    let repeated = store
        .list_channels(
            world.service.sid,
            &[ChannelType::Private, ChannelType::Private],
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(
        repeated.items.is_empty(),
        "a repeated type filter still filters"
    );
}

// Keeps the trait in scope for the checks that call it through `dyn Store`.
#[allow(dead_code)]
fn _assert_object_safe(_: &dyn ChannelStore) {}

/// Pending invites are found by identity across the service, and go away when accepted.
pub async fn invites_are_listed_per_identity(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let mut state = world.create_channel(1, None).await.unwrap();
    let invite = ChannelCommand::Invite(confab_domain::InviteMember {
        identity: "zoe".into(),
        role_sid: role,
        created_by: None,
    });
    world.apply(&mut state, invite).await;
    let invites = store
        .list_user_invites(world.service.sid, "zoe", &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(invites.items.len(), 1);
    world.apply(&mut state, add("zoe", role)).await;
    let invites = store
        .list_user_invites(world.service.sid, "zoe", &PageRequest::first(10))
        .await
        .unwrap();
    assert!(invites.items.is_empty(), "joining accepts the invite");
}
