//! The policy cache over a real `SqliteStore`: how long its copies of roles and webhooks last.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use confab_cluster::Policies;
use confab_domain::{
    ChannelSid, ChannelWebhook, DefaultRoles, RoleSid, Service, ServiceLimits, ServiceSid,
    Timestamp, User, UserSid,
};
use confab_store::{
    RoleStore, ServiceStore, SqliteOptions, SqliteStore, Store, UserStore, WebhookStore,
};

const SERVICE: ServiceSid = ServiceSid::from_bits(1);

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).unwrap()
}

/// A service with its default roles; returns the `service user` and `service admin` roles.
async fn service(store: &SqliteStore) -> (RoleSid, RoleSid) {
    let roles = DefaultRoles::new(SERVICE, &mut confab_domain::CountingSids(0), Timestamp(0));
    let (user, admin) = (roles.service_user.sid, roles.service_admin.sid);
    let limits = ServiceLimits {
        channel_members: 10,
        user_channels: 10,
    };
    store
        .create_service(
            &Service::new(SERVICE, "t", &roles, limits, Timestamp(0)),
            &roles.into_vec(),
        )
        .await
        .unwrap();
    (user, admin)
}

fn user(n: u128, identity: &str, role: RoleSid) -> User {
    User {
        sid: UserSid::from_bits(n),
        service_sid: SERVICE,
        identity: identity.into(),
        friendly_name: None,
        attributes: Default::default(),
        role_sid: role,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    }
}

/// The service's name as the cache has it.
async fn cached_name(policies: &Policies) -> String {
    policies
        .service(SERVICE)
        .await
        .unwrap()
        .service
        .friendly_name
        .clone()
}

/// The service's name as `current_service` has it.
async fn current_name(policies: &Policies) -> String {
    policies
        .current_service(SERVICE)
        .await
        .unwrap()
        .unwrap()
        .friendly_name
}

/// Renames the service to `renamed` through `store`.
async fn rename_service(store: &SqliteStore) {
    let mut renamed = store.get_service(SERVICE).await.unwrap().unwrap();
    renamed.friendly_name = "renamed".into();
    store.update_service(&renamed).await.unwrap();
}

fn webhook(channel: ChannelSid) -> ChannelWebhook {
    confab_store::conformance::sample_webhook(SERVICE, channel)
}

/// Each kind of write counts for the copies it changes: a write the store did not count would
/// leave the copy below in place for ever, however short the TTL.
#[actix_rt::test]
async fn every_write_of_a_cached_record_replaces_the_copies_older_than_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.db")).await;
    let (user_role, admin_role) = service(&store).await;
    store.create_user(&user(1, "ann", user_role)).await.unwrap();
    let channel = ChannelSid::from_bits(9);
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    // Nobody calls `forget_*` here: the store's own count of writes is what invalidates.
    let policies = Policies::new(shared, Duration::from_millis(1));

    assert_eq!(
        policies.user_role(SERVICE, "ann").await.unwrap(),
        Some(user_role)
    );
    assert!(policies.channel_webhooks(channel).await.unwrap().is_empty());
    assert_eq!(policies.service(SERVICE).await.unwrap().roles.len(), 4);

    store
        .update_user(&user(1, "ann", admin_role))
        .await
        .unwrap();
    store.put_webhook(&webhook(channel)).await.unwrap();
    store
        .delete_role(SERVICE, RoleSid::from_bits(u128::MAX))
        .await
        .unwrap();
    let mut role = policies.service(SERVICE).await.unwrap().roles[0].clone();
    role.friendly_name = "renamed".into();
    store.update_role(&role).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert_eq!(
        policies.user_role(SERVICE, "ann").await.unwrap(),
        Some(admin_role)
    );
    assert_eq!(policies.channel_webhooks(channel).await.unwrap().len(), 1);
    let roles = policies.service(SERVICE).await.unwrap().roles.clone();
    assert!(roles.iter().any(|r| r.friendly_name == "renamed"));
}

#[actix_rt::test]
async fn a_copy_outlives_its_ttl_while_no_record_of_its_kind_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = open(&path).await;
    let (user_role, admin_role) = service(&store).await;
    store.create_user(&user(1, "ann", user_role)).await.unwrap();
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let policies = Policies::new(shared, Duration::from_millis(1));
    assert_eq!(
        policies.user_role(SERVICE, "ann").await.unwrap(),
        Some(user_role)
    );

    // A second store on the same file breaks the embedded store's promise of being the only
    // writer, on purpose: its write is one the cache cannot know of, which shows the copy kept.
    assert_eq!(cached_name(&policies).await, "t");
    let other = open(&path).await;
    other
        .update_user(&user(1, "ann", admin_role))
        .await
        .unwrap();
    rename_service(&other).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        policies.user_role(SERVICE, "ann").await.unwrap(),
        Some(user_role),
        "an unchanged count keeps the copy past its TTL"
    );
    // And the copy stands for the stored service.
    assert_eq!(current_name(&policies).await, "t");

    // Any user written through the cache's own store counts, and the copy is read again.
    store.create_user(&user(2, "bob", user_role)).await.unwrap();
    assert_eq!(
        policies.user_role(SERVICE, "ann").await.unwrap(),
        Some(admin_role)
    );
}

#[actix_rt::test]
async fn the_current_service_is_the_stored_one_whatever_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("t.db")).await;
    service(&store).await;
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let policies = Policies::new(shared, Duration::from_secs(3600));
    assert_eq!(cached_name(&policies).await, "t");
    assert_eq!(current_name(&policies).await, "t");

    rename_service(&store).await;
    assert_eq!(current_name(&policies).await, "renamed");

    // Cached again (as after a REST change, which forgets its copy), then deleted: the deletion
    // itself must make the copy stale.
    policies.forget_service(SERVICE);
    assert_eq!(cached_name(&policies).await, "renamed");
    store.delete_service(SERVICE).await.unwrap();
    assert!(policies.current_service(SERVICE).await.unwrap().is_none());
}
