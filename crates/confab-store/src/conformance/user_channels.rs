//! `user_channels`' contract: what a session's `init` reads of an identity's channels, whether
//! the backend reads it at once or method by method.

use std::sync::Arc;

use confab_domain::{ChannelCommand, ChannelSid, InviteMember};

use super::{add, World};
use crate::Store;

/// The first `max` memberships, in joining order, and the first `max` invites, in creation order;
/// each with its channel, and nobody else's.
pub async fn a_users_channels_are_its_memberships_and_invites(store: Arc<dyn Store>) {
    let mut world = World::new(store.clone()).await;
    let role = world.service.default_channel_role_sid;
    let service = world.service.sid;
    // More than a page of the REST API (100), so that a backend which pages must go on.
    let joined: usize = 105;
    for bits in 1..=joined as u128 {
        let mut state = world.create_channel(bits, None).await.unwrap();
        world.apply(&mut state, add("ann", role)).await;
        if bits == 1 {
            world.apply(&mut state, add("bob", role)).await;
        }
    }
    let invite = |identity: &str| {
        ChannelCommand::Invite(InviteMember {
            identity: identity.into(),
            role_sid: role,
            created_by: None,
        })
    };
    let mut invited = Vec::new();
    for bits in 9_000..9_004 {
        let mut state = world.create_channel(bits, None).await.unwrap();
        world.apply(&mut state, invite("ann")).await;
        if bits == 9_000 {
            world.apply(&mut state, invite("bob")).await;
        }
        invited.push(state.channel().sid);
    }

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
    let invitations: Vec<ChannelSid> = all.invitations.iter().map(|(c, _)| c.sid).collect();
    assert_eq!(invitations, invited, "every invite, in creation order");
    assert!(
        all.invitations
            .iter()
            .all(|(c, i)| i.identity == "ann" && i.channel_sid == c.sid),
        "each invite with its own channel"
    );

    let few = store.user_channels(service, "ann", 3).await.unwrap();
    let firsts: Vec<ChannelSid> = few.memberships.iter().map(|(c, _)| c.sid).collect();
    assert_eq!(firsts, expected[..3], "the first `max` memberships");
    assert_eq!(few.invitations.len(), 3, "at most `max` invites");

    let bob = store.user_channels(service, "bob", joined).await.unwrap();
    assert_eq!(bob.memberships.len(), 1);
    let bobs: Vec<ChannelSid> = bob.invitations.iter().map(|(c, _)| c.sid).collect();
    assert_eq!(bobs, invited[..1], "only bob's own invite");
    let nobody = store.user_channels(service, "zed", joined).await.unwrap();
    assert!(nobody.memberships.is_empty() && nobody.invitations.is_empty());
}
