//! `user_channels`' contract: what a session's `init` reads of an identity's channels, whether
//! the backend reads it at once or method by method.

use std::sync::Arc;

use confab_domain::{ChannelCommand, ChannelSid, InviteMember};

use super::{add, World};
use crate::{Store, USER_CHANNELS_PAGE};

/// Memberships come in pages until `max` is reached, in joining order; invites up to `max`;
/// each with its channel, and nobody else's.
pub async fn a_users_channels_are_its_memberships_and_invites(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let service = world.service.sid;
    let joined = USER_CHANNELS_PAGE + 5;
    for bits in 1..=joined as u128 {
        let mut state = world.create_channel(bits, None).await.unwrap();
        world.apply(&mut state, add("ann", role)).await;
        if bits == 1 {
            world.apply(&mut state, add("bob", role)).await;
        }
    }
    let mut invited = world.create_channel(9_000, None).await.unwrap();
    let invite = ChannelCommand::Invite(InviteMember {
        identity: "ann".into(),
        role_sid: role,
        created_by: None,
    });
    world.apply(&mut invited, invite).await;

    let all = store.user_channels(service, "ann", joined).await.unwrap();
    let channels: Vec<ChannelSid> = all.memberships.iter().map(|(c, _)| c.sid).collect();
    let expected: Vec<ChannelSid> = (1..=joined as u128).map(ChannelSid::from_bits).collect();
    assert_eq!(channels, expected, "every membership, in joining order");
    assert!(
        all.memberships
            .iter()
            .all(|(c, m)| m.identity == "ann" && m.channel_sid == c.sid),
        "each membership with its own channel"
    );
    assert_eq!(all.invitations.len(), 1);
    let (channel, invite) = &all.invitations[0];
    assert_eq!(
        (channel.sid, invite.identity.as_str()),
        (invited.channel().sid, "ann")
    );

    let few = store.user_channels(service, "ann", 3).await.unwrap();
    assert_eq!(
        few.memberships.len(),
        USER_CHANNELS_PAGE,
        "memberships are read a page at a time until `max`"
    );
    assert_eq!(few.invitations.len(), 1);

    let bob = store.user_channels(service, "bob", joined).await.unwrap();
    assert_eq!(bob.memberships.len(), 1);
    assert!(bob.invitations.is_empty());
    let nobody = store.user_channels(service, "zed", joined).await.unwrap();
    assert!(nobody.memberships.is_empty() && nobody.invitations.is_empty());
}
