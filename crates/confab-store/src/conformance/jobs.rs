//! The webhook job queue's contract: jobs live and die with their commit, a claim hides a job
//! until its hold ends, and a job stays until it is finished.

use std::sync::Arc;

use confab_domain::{
    ChannelCommand, ChannelSid, ChannelState, PostMessage, Timestamp, WebhookJob, WebhookJobSid,
    WebhookMethod,
};

use super::World;
use crate::{ChannelCommit, Store, StoreError};

fn job(bits: u128, service: confab_domain::ServiceSid, created: i64) -> WebhookJob {
    WebhookJob {
        sid: WebhookJobSid::from_bits(bits),
        service_sid: service,
        channel_sid: Some(ChannelSid::from_bits(1)),
        event_type: "onMessageSent".into(),
        url: "http://127.0.0.1:9/hook".into(),
        method: WebhookMethod::Post,
        params: vec![
            ("EventType".into(), "onMessageSent".into()),
            ("Body".into(), "héllo & bye".into()),
        ],
        retries: 2,
        attempts: 0,
        created: Timestamp(created),
    }
}

async fn post(world: &mut World, state: &mut ChannelState) -> Vec<confab_domain::ChannelEvent> {
    let mut ctx = confab_domain::ApplyContext {
        now: Timestamp(5),
        sids: &mut world.sids,
        limits: &world.limits,
    };
    state
        .apply(
            ChannelCommand::PostMessage(PostMessage {
                author: None,
                require_member: false,
                body: "hi".into(),
                attributes: None,
                date_created: None,
                date_updated: None,
                last_updated_by: None,
                client_id: None,
                media: None,
            }),
            &mut ctx,
        )
        .unwrap()
}

/// A commit's jobs are stored with it (and become claimable at `jobs_due`); a commit refused
/// for its unique name stores none.
pub async fn webhook_jobs_are_stored_with_their_commit(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let service = world.service.sid;
    let mut state = world.create_channel(1, Some("taken")).await.unwrap();
    let events = post(&mut world, &mut state).await;
    store
        .commit(&ChannelCommit {
            channel: state.channel().clone(),
            events,
            fence: None,
            jobs: vec![job(1, service, 5), job(2, service, 5)],
            jobs_due: Timestamp(1_000),
        })
        .await
        .unwrap();
    assert_eq!(store.pending_jobs().await.unwrap(), (2, Some(Timestamp(5))));
    let early = store
        .claim_jobs(Timestamp(999), Timestamp(2_000), 10)
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "jobs are not claimable before jobs_due: {early:?}"
    );
    let claimed = store
        .claim_jobs(Timestamp(1_000), Timestamp(2_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed.contains(&job(1, service, 5)),
        "a job reads back as written"
    );

    // A second channel asking for the taken unique name: nothing of it is stored, jobs neither.
    let mut second = world.create_channel(2, None).await.unwrap();
    let mut ctx = confab_domain::ApplyContext {
        now: Timestamp(6),
        sids: &mut world.sids,
        limits: &world.limits,
    };
    let events = second
        .apply(
            ChannelCommand::Update(confab_domain::UpdateChannel {
                unique_name: Some("taken".into()),
                ..Default::default()
            }),
            &mut ctx,
        )
        .unwrap();
    let refused = store
        .commit(&ChannelCommit {
            channel: second.channel().clone(),
            events,
            fence: None,
            jobs: vec![job(3, service, 6)],
            jobs_due: Timestamp(0),
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.pending_jobs().await.unwrap().0,
        2,
        "a refused commit stores no job"
    );
}

/// A claimed job is not handed out again until its hold ends; then it is (its claimant may
/// have died), earliest due first and at most `limit` at a time.
pub async fn webhook_job_claims_hold_jobs_until_they_expire(store: Arc<dyn Store>) {
    let world = World::new(store.clone()).await;
    let service = world.service.sid;
    store
        .enqueue_jobs(&[job(1, service, 1)], Timestamp(10))
        .await
        .unwrap();
    store
        .enqueue_jobs(&[job(2, service, 2)], Timestamp(20))
        .await
        .unwrap();
    let first = store
        .claim_jobs(Timestamp(30), Timestamp(100), 1)
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![job(1, service, 1)],
        "earliest due first, limit respected"
    );
    let second = store
        .claim_jobs(Timestamp(30), Timestamp(100), 10)
        .await
        .unwrap();
    assert_eq!(
        second,
        vec![job(2, service, 2)],
        "a held job is not claimed twice"
    );
    let none = store
        .claim_jobs(Timestamp(99), Timestamp(200), 10)
        .await
        .unwrap();
    assert!(none.is_empty(), "every job is held: {none:?}");
    let again = store
        .claim_jobs(Timestamp(100), Timestamp(200), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "jobs come back when their hold ends");
}

/// A retry stores the job's new attempts and due time; a finished job is gone for good, even
/// when a late retry names it.
pub async fn webhook_jobs_retry_and_finish(store: Arc<dyn Store>) {
    let world = World::new(store.clone()).await;
    let service = world.service.sid;
    store
        .enqueue_jobs(&[job(1, service, 1), job(2, service, 1)], Timestamp(0))
        .await
        .unwrap();
    let mut tried = job(1, service, 1);
    tried.attempts = 1;
    store.retry_job(&tried, Timestamp(50)).await.unwrap();
    store.finish_job(WebhookJobSid::from_bits(2)).await.unwrap();
    store.finish_job(WebhookJobSid::from_bits(2)).await.unwrap();
    assert_eq!(store.pending_jobs().await.unwrap(), (1, Some(Timestamp(1))));
    assert!(store
        .claim_jobs(Timestamp(49), Timestamp(60), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = store
        .claim_jobs(Timestamp(50), Timestamp(60), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed,
        vec![tried.clone()],
        "the retry's attempts are stored"
    );
    store.finish_job(tried.sid).await.unwrap();
    store.retry_job(&tried, Timestamp(70)).await.unwrap();
    assert_eq!(
        store.pending_jobs().await.unwrap(),
        (0, None),
        "finished stays finished"
    );
}
