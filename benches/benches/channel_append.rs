//! Message append through the `ChannelActor` into `SqliteStore`: one channel written
//! sequentially, and 100 channels written at once (group commit batches across channels).

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_cluster::{ChannelOp, ChannelRuntime, LocalBroker, RuntimeConfig};
use confab_domain::{
    ChannelCommand, ChannelSid, ChannelType, CreateChannel, DefaultRoles, PostMessage, Service,
    ServiceLimits, ServiceSid, Timestamp,
};
use confab_store::{SqliteOptions, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn post(i: u64) -> ChannelOp {
    ChannelOp::Apply(ChannelCommand::PostMessage(PostMessage {
        author: Some("bench".into()),
        require_member: false,
        body: format!("message number {i} with a body of ordinary chat length"),
        attributes: None,
        date_created: None,
        date_updated: None,
        last_updated_by: None,
        client_id: None,
        media: None,
    }))
}

async fn setup(channels: u128) -> (ChannelRuntime, Vec<ChannelSid>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("bench.db"), SqliteOptions::default()).expect("open"),
    );
    let service_sid = ServiceSid::from_bits(1);
    let roles = DefaultRoles::new(
        service_sid,
        &mut confab_domain::CountingSids(10),
        Timestamp(0),
    );
    let service = Service::new(
        service_sid,
        "bench",
        &roles,
        ServiceLimits {
            channel_members: 1000,
            user_channels: 250,
        },
        Timestamp(0),
    );
    store
        .create_service(&service, &roles.into_vec())
        .await
        .expect("service");
    let runtime = ChannelRuntime::new(
        store,
        Arc::new(LocalBroker::new(1024)),
        RuntimeConfig::default(),
    );
    let mut sids = Vec::new();
    for bits in 0..channels {
        let sid = ChannelSid::from_bits(1000 + bits);
        runtime
            .execute(
                sid,
                confab_domain::Caller::Account,
                ChannelOp::Create(CreateChannel {
                    sid,
                    service_sid,
                    friendly_name: None,
                    unique_name: None,
                    attributes: None,
                    kind: ChannelType::Public,
                    created_by: None,
                    date_created: None,
                    date_updated: None,
                }),
            )
            .await
            .expect("create channel");
        sids.push(sid);
    }
    (runtime, sids, dir)
}

fn channel_append(c: &mut Criterion) {
    let system = actix_rt::System::new();
    let mut group = c.benchmark_group("append");
    group.measurement_time(Duration::from_secs(5));

    let (runtime, channels, _dir) = system.block_on(setup(1));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_channel", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    runtime
                        .execute(channels[0], confab_domain::Caller::Account, post(i))
                        .await
                        .expect("post");
                }
                start.elapsed()
            })
        })
    });
    runtime.shutdown();

    let (runtime, channels, _dir) = system.block_on(setup(100));
    group.throughput(Throughput::Elements(channels.len() as u64));
    group.bench_function("100_channels_at_once", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let posts = channels
                        .iter()
                        .map(|sid| runtime.execute(*sid, confab_domain::Caller::Account, post(i)));
                    for result in futures::future::join_all(posts).await {
                        result.expect("post");
                    }
                }
                start.elapsed()
            })
        })
    });
    runtime.shutdown();
    group.finish();
}

criterion_group!(benches, channel_append);
criterion_main!(benches);
