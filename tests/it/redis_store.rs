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
