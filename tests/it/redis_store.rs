//! `RedisStore` against the store conformance suite, each check on its own `redis-server`.

use std::sync::Arc;

use confab_store::{RedisOptions, RedisStore, Store};
use confab_testkit::RedisServer;

async fn fresh() -> (RedisServer, Arc<dyn Store>) {
    let server = RedisServer::start().expect("redis-server");
    let store = RedisStore::connect(&server.url(), RedisOptions::default())
        .await
        .expect("connect");
    (server, Arc::new(store))
}

confab_store::store_conformance_tests!(fresh());

#[tokio::test]
async fn data_survives_a_redis_restart() {
    use confab_store::PageRequest;
    let (mut server, store) = fresh().await;
    let service = confab_domain::Service {
        sid: confab_domain::ServiceSid::from_bits(9),
        friendly_name: "kept".into(),
        date_created: confab_domain::Timestamp(0),
        date_updated: confab_domain::Timestamp(0),
        default_service_role_sid: confab_domain::RoleSid::from_bits(1),
        default_channel_role_sid: confab_domain::RoleSid::from_bits(2),
        default_channel_creator_role_sid: confab_domain::RoleSid::from_bits(3),
        read_status_enabled: true,
        reachability_enabled: false,
        typing_indicator_timeout: 5,
        consumption_report_interval: 10,
        limits: confab_domain::ServiceLimits {
            channel_members: 10,
            user_channels: 10,
        },
        webhooks: Default::default(),
        notifications: Default::default(),
        media_compatibility_message: None,
        media_size_limit_mb: confab_domain::DEFAULT_MEDIA_SIZE_LIMIT_MB,
    };
    store.create_service(&service, &[]).await.unwrap();
    server.restart().unwrap();
    // The connection manager reconnects by itself; the first call may see the old socket fail.
    let mut found = None;
    for _ in 0..50 {
        if let Ok(page) = store.list_services(&PageRequest::first(10)).await {
            found = Some(page);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found.expect("redis back").items, vec![service]);
}

mod leases {
    use std::time::Duration;

    use confab_domain::ChannelSid;
    use confab_store::StoreError;

    use super::*;

    async fn store() -> (RedisServer, RedisStore) {
        let server = RedisServer::start().expect("redis-server");
        let store = RedisStore::connect(&server.url(), RedisOptions::default())
            .await
            .expect("connect");
        (server, store)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_epochs_only_grow() {
        let (_server, store) = store().await;
        let ch = ChannelSid::from_bits(1);
        let first = store.acquire_lease(ch, "a", 60_000).await.unwrap().unwrap();
        assert_eq!(store.acquire_lease(ch, "b", 60_000).await.unwrap(), None);
        // Taking it again supersedes the holder's own older epoch.
        let again = store.acquire_lease(ch, "a", 60_000).await.unwrap().unwrap();
        assert!(again > first);
        assert!(!store.renew_lease(ch, "a", first, 60_000).await.unwrap());
        assert!(!store.release_lease(ch, "a", first).await.unwrap());
        let first = again;
        assert!(store.renew_lease(ch, "a", first, 60_000).await.unwrap());
        assert!(!store.renew_lease(ch, "b", first, 60_000).await.unwrap());
        assert!(store.release_lease(ch, "a", first).await.unwrap());
        let second = store.acquire_lease(ch, "b", 60_000).await.unwrap().unwrap();
        assert!(second > first);
        assert_eq!(
            store.lease_of(ch).await.unwrap(),
            Some(("b".into(), second))
        );
    }

    #[tokio::test]
    async fn an_expired_lease_goes_to_the_next_node_with_a_greater_epoch() {
        let (_server, store) = store().await;
        let ch = ChannelSid::from_bits(2);
        let first = store.acquire_lease(ch, "a", 50).await.unwrap().unwrap();
        let mut taken = None;
        for _ in 0..100 {
            taken = store.acquire_lease(ch, "b", 60_000).await.unwrap();
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = taken.expect("the lease expires");
        assert!(second > first);
        assert!(
            !store.renew_lease(ch, "a", first, 60_000).await.unwrap(),
            "the old holder lost it"
        );
    }

    #[tokio::test]
    async fn a_stale_owner_cannot_commit() {
        use confab_domain::{
            ApplyContext, ChannelState, ChannelType, CountingSids, CreateChannel, Limits,
            ServiceSid, Timestamp,
        };
        use confab_store::{ChannelCommit, ChannelStore};
        let (_server, store) = store().await;
        let ch = ChannelSid::from_bits(3);
        let mut sids = CountingSids(0);
        let limits = Limits::default();
        let mut ctx = ApplyContext {
            now: Timestamp(1),
            sids: &mut sids,
            limits: &limits,
        };
        let (state, events) = ChannelState::create(
            CreateChannel {
                sid: ch,
                service_sid: ServiceSid::from_bits(1),
                friendly_name: None,
                unique_name: None,
                attributes: None,
                kind: ChannelType::Public,
                created_by: None,
                date_created: None,
                date_updated: None,
            },
            &mut ctx,
        )
        .unwrap();
        let old = store.acquire_lease(ch, "a", 60_000).await.unwrap().unwrap();
        store.release_lease(ch, "a", old).await.unwrap();
        let new = store.acquire_lease(ch, "b", 60_000).await.unwrap().unwrap();
        let commit = |fence| ChannelCommit {
            channel: state.channel().clone(),
            events: events.clone(),
            fence: Some(fence),
            jobs: Vec::new(),
            jobs_due: confab_domain::Timestamp(0),
        };
        assert!(matches!(
            store.commit(&commit(old)).await,
            Err(StoreError::Fenced)
        ));
        assert!(
            store.load_channel(ch).await.unwrap().is_none(),
            "a fenced commit writes nothing"
        );
        store.commit(&commit(new)).await.unwrap();
        assert!(store.load_channel(ch).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn live_nodes_are_those_whose_heartbeat_has_not_expired() {
        let (_server, store) = store().await;
        store.heartbeat("n1", 60_000).await.unwrap();
        store.heartbeat("n2", 50).await.unwrap();
        assert_eq!(store.live_nodes().await.unwrap(), vec!["n1", "n2"]);
        let mut live = Vec::new();
        for _ in 0..100 {
            live = store.live_nodes().await.unwrap();
            if live.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(live, vec!["n1"]);
    }
}
