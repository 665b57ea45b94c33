//! [`ChangeCounts`](crate::ChangeCounts)' contract, for a backend that counts: every write of a
//! cached record has grown its kind's count by the time the write's method returns, and only
//! its kind's. A backend that does not count (`None`) promises nothing and passes.

use std::sync::Arc;

use confab_domain::{
    ChannelCommand, ChannelSid, ChannelWebhook, RoleSid, ServiceSid, Timestamp, User, UserSid,
    WebhookSid,
};

use super::{post, World};
use crate::{CachedRecords, Store};

/// A channel webhook for checks that need one (the policy cache's tests too).
pub fn sample_webhook(service: ServiceSid, channel: ChannelSid) -> ChannelWebhook {
    ChannelWebhook {
        sid: WebhookSid::from_bits(3),
        service_sid: service,
        channel_sid: channel,
        kind: "webhook".into(),
        url: Some("http://127.0.0.1:9/hook".into()),
        method: Some("POST".into()),
        filters: vec!["onMessageSent".into()],
        triggers: Vec::new(),
        flow_sid: None,
        retry_count: None,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    }
}

/// What each kind's count is now.
fn counts(store: &dyn Store) -> Option<[u64; 3]> {
    let [services, users, webhooks] = CachedRecords::ALL.map(|kind| store.changes(kind));
    Some([services?, users?, webhooks?])
}

/// Runs `write` and checks that exactly the kinds in `changed` were counted.
async fn counted<F: std::future::Future<Output = ()>>(
    store: &dyn Store,
    what: &str,
    changed: &[CachedRecords],
    write: F,
) {
    let before = counts(store).expect("counts");
    write.await;
    let after = counts(store).expect("counts");
    for (i, kind) in CachedRecords::ALL.iter().enumerate() {
        if changed.contains(kind) {
            assert!(after[i] > before[i], "{what} must count for {kind:?}");
        } else {
            assert_eq!(after[i], before[i], "{what} must not count for {kind:?}");
        }
    }
}

/// Every write of a service or role, a user or a webhook counts for its kind; a message counts
/// for none; deleting a channel counts for webhooks, and deleting a service for every kind.
pub async fn writes_of_cached_records_are_counted(store: Arc<dyn Store>) {
    if counts(&*store).is_none() {
        return;
    }
    let s = &*store;
    use CachedRecords::{Services, Users, Webhooks};
    let mut world = World::new(store.clone()).await;
    let service = world.service.clone();
    let mut role = s
        .list_roles(service.sid, &crate::PageRequest::first(10))
        .await
        .unwrap()
        .items
        .remove(0);
    role.sid = RoleSid::from_bits(77);
    counted(s, "create_role", &[Services], async {
        s.create_role(&role).await.unwrap()
    })
    .await;
    role.friendly_name = "renamed".into();
    counted(s, "update_role", &[Services], async {
        s.update_role(&role).await.unwrap()
    })
    .await;
    counted(s, "delete_role", &[Services], async {
        assert!(s.delete_role(service.sid, role.sid).await.unwrap())
    })
    .await;
    let mut renamed = service.clone();
    renamed.friendly_name = "renamed".into();
    counted(s, "update_service", &[Services], async {
        s.update_service(&renamed).await.unwrap()
    })
    .await;

    let mut user = User {
        sid: UserSid::from_bits(5),
        service_sid: service.sid,
        identity: "ann".into(),
        friendly_name: None,
        attributes: Default::default(),
        role_sid: service.default_service_role_sid,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    };
    counted(s, "create_user", &[Users], async {
        s.create_user(&user).await.unwrap()
    })
    .await;
    user.friendly_name = Some("Ann".into());
    counted(s, "update_user", &[Users], async {
        s.update_user(&user).await.unwrap()
    })
    .await;
    counted(s, "delete_user", &[Users], async {
        assert!(s.delete_user(service.sid, user.sid).await.unwrap())
    })
    .await;

    let mut state = world.create_channel(1, None).await.unwrap();
    let channel = state.channel().sid;
    let webhook = sample_webhook(service.sid, channel);
    counted(s, "put_webhook", &[Webhooks], async {
        s.put_webhook(&webhook).await.unwrap()
    })
    .await;
    counted(s, "delete_webhook", &[Webhooks], async {
        assert!(s.delete_webhook(channel, webhook.sid).await.unwrap())
    })
    .await;
    s.put_webhook(&webhook).await.unwrap();
    counted(s, "a message", &[], async {
        world.apply(&mut state, post("hello")).await;
    })
    .await;
    counted(s, "deleting a channel", &[Webhooks], async {
        world.apply(&mut state, ChannelCommand::Delete).await;
    })
    .await;

    let roles = confab_domain::DefaultRoles::new(
        ServiceSid::from_bits(2),
        &mut confab_domain::CountingSids(5000),
        Timestamp(0),
    );
    let other = confab_domain::Service::new(
        ServiceSid::from_bits(2),
        "other",
        &roles,
        service.limits,
        Timestamp(0),
    );
    counted(s, "create_service", &[Services], async {
        s.create_service(&other, &roles.into_vec()).await.unwrap()
    })
    .await;
    counted(s, "delete_service", &CachedRecords::ALL, async {
        assert!(s.delete_service(other.sid).await.unwrap())
    })
    .await;
}
