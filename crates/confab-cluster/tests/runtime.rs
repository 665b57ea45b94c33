//! The channel runtime against a real `SqliteStore`: ordering, idle stop and rebuild, events.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use confab_cluster::{Broker, ChannelError, ChannelOp, ChannelRuntime, LocalBroker, RuntimeConfig};
use confab_domain::{
    ChannelCommand, ChannelEventKind, ChannelSid, ChannelType, CountingSids, CreateChannel,
    DefaultRoles, DomainError, PostMessage, Service, ServiceLimits, ServiceSid, Timestamp,
};
use confab_store::{SqliteOptions, SqliteStore, Store};

struct Fixture {
    runtime: ChannelRuntime,
    bus: Arc<LocalBroker>,
    service: ServiceSid,
    _dir: tempfile::TempDir,
}

async fn fixture(idle_timeout: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    let service = ServiceSid::from_bits(1);
    let roles = DefaultRoles::new(service, &mut CountingSids(0), Timestamp(0));
    store
        .create_service(
            &Service::new(
                service,
                "t",
                &roles,
                ServiceLimits {
                    channel_members: 10,
                    user_channels: 10,
                },
                Timestamp(0),
            ),
            &roles.into_vec(),
        )
        .await
        .unwrap();
    let bus = Arc::new(LocalBroker::new(1024));
    let runtime = ChannelRuntime::new(
        store,
        bus.clone(),
        RuntimeConfig {
            idle_timeout,
            ..RuntimeConfig::default()
        },
    );
    Fixture {
        runtime,
        bus,
        service,
        _dir: dir,
    }
}

fn create(sid: ChannelSid, service: ServiceSid) -> ChannelOp {
    ChannelOp::Create(CreateChannel {
        sid,
        service_sid: service,
        friendly_name: None,
        unique_name: None,
        attributes: None,
        kind: ChannelType::Public,
        created_by: None,
        date_created: None,
        date_updated: None,
    })
}

fn post(body: &str) -> ChannelOp {
    ChannelOp::Apply(ChannelCommand::PostMessage(PostMessage {
        author: None,
        require_member: false,
        body: body.into(),
        attributes: None,
        date_created: None,
        date_updated: None,
        last_updated_by: None,
        client_id: None,
        media: None,
    }))
}

fn index_of(events: &[confab_domain::ChannelEvent]) -> u64 {
    match &events[0].kind {
        ChannelEventKind::MessageAdded { message } => message.index,
        other => panic!("unexpected event {other:?}"),
    }
}

#[actix_rt::test]
async fn idle_actor_stops_and_is_rebuilt_from_the_store() {
    let f = fixture(Duration::from_millis(50)).await;
    let channel = ChannelSid::from_bits(7);
    f.runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await
        .unwrap();
    assert_eq!(
        index_of(
            &f.runtime
                .execute(channel, confab_domain::Caller::Account, post("a"))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(f.runtime.active_channels(), 1);
    // Wait (bounded) for the idle actor to stop; this is a condition, not a timing assertion.
    for _ in 0..100 {
        if f.runtime.active_channels() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        f.runtime.active_channels(),
        0,
        "the idle actor should have stopped"
    );
    // A new actor continues where the old one stopped.
    assert_eq!(
        index_of(
            &f.runtime
                .execute(channel, confab_domain::Caller::Account, post("b"))
                .await
                .unwrap()
        ),
        1
    );
    f.runtime.shutdown();
}

#[actix_rt::test]
async fn committed_events_are_published_in_seq_order() {
    let f = fixture(Duration::from_secs(60)).await;
    let mut rx = f.bus.subscribe();
    let channel = ChannelSid::from_bits(8);
    f.runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await
        .unwrap();
    let posts = (0..20).map(|i| {
        f.runtime.execute(
            channel,
            confab_domain::Caller::Account,
            post(&i.to_string()),
        )
    });
    for r in futures::future::join_all(posts).await {
        r.unwrap();
    }
    let mut seqs = Vec::new();
    while seqs.len() < 21 {
        seqs.extend(rx.recv().await.unwrap().events.iter().map(|e| e.seq));
    }
    assert_eq!(seqs, (1..=21).collect::<Vec<u64>>());
    f.runtime.shutdown();
}

#[actix_rt::test]
async fn commands_to_a_missing_channel_are_refused_and_create_twice_is_refused() {
    let f = fixture(Duration::from_secs(60)).await;
    let channel = ChannelSid::from_bits(9);
    let missing = f
        .runtime
        .execute(channel, confab_domain::Caller::Account, post("x"))
        .await;
    assert!(matches!(
        missing,
        Err(ChannelError::Domain(DomainError::ChannelNotFound))
    ));
    f.runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await
        .unwrap();
    let again = f
        .runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await;
    assert!(matches!(
        again,
        Err(ChannelError::Domain(DomainError::ChannelExists))
    ));
    f.runtime.shutdown();
}

#[actix_rt::test]
async fn service_member_limit_applies_to_its_channels() {
    let f = fixture(Duration::from_secs(60)).await;
    let channel = ChannelSid::from_bits(10);
    f.runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await
        .unwrap();
    let add = |i: usize| {
        ChannelOp::Apply(ChannelCommand::AddMember(confab_domain::AddMember {
            identity: format!("user{i}"),
            role_sid: None,
            default_role: confab_domain::RoleSid::from_bits(1),
            attributes: None,
            last_consumed_message_index: None,
            last_consumption_timestamp: None,
            date_created: None,
            date_updated: None,
        }))
    };
    for i in 0..10 {
        f.runtime
            .execute(channel, confab_domain::Caller::Account, add(i))
            .await
            .unwrap();
    }
    let over = f
        .runtime
        .execute(channel, confab_domain::Caller::Account, add(10))
        .await;
    assert!(matches!(
        over,
        Err(ChannelError::Domain(DomainError::MemberLimitReached {
            limit: 10
        }))
    ));
    f.runtime.shutdown();
}

#[actix_rt::test]
async fn a_retried_post_with_the_same_client_id_creates_one_message() {
    let f = fixture(Duration::from_millis(50)).await;
    let channel = ChannelSid::from_bits(11);
    f.runtime
        .execute(
            channel,
            confab_domain::Caller::Account,
            create(channel, f.service),
        )
        .await
        .unwrap();
    let keyed = |body: &str| {
        ChannelOp::Apply(ChannelCommand::PostMessage(PostMessage {
            author: Some("alice".into()),
            require_member: false,
            body: body.into(),
            attributes: None,
            date_created: None,
            date_updated: None,
            last_updated_by: None,
            client_id: Some("c-1".into()),
            media: None,
        }))
    };
    let first = index_of(
        &f.runtime
            .execute(channel, confab_domain::Caller::Account, keyed("hi"))
            .await
            .unwrap(),
    );
    let retry = index_of(
        &f.runtime
            .execute(channel, confab_domain::Caller::Account, keyed("hi"))
            .await
            .unwrap(),
    );
    assert_eq!(first, retry);
    // Still recognised after the actor stopped and was rebuilt from the store.
    for _ in 0..100 {
        if f.runtime.active_channels() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_restart = index_of(
        &f.runtime
            .execute(channel, confab_domain::Caller::Account, keyed("hi"))
            .await
            .unwrap(),
    );
    assert_eq!(first, after_restart);
    assert_eq!(
        index_of(
            &f.runtime
                .execute(channel, confab_domain::Caller::Account, post("next"))
                .await
                .unwrap()
        ),
        first + 1
    );
    f.runtime.shutdown();
}
