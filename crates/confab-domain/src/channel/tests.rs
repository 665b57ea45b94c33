use proptest::prelude::*;

use super::*;
use crate::sid::CountingSids;

fn role() -> RoleSid {
    RoleSid::from_bits(9)
}

fn new_channel(sids: &mut CountingSids, limits: &Limits) -> ChannelState {
    let mut ctx = ApplyContext {
        now: Timestamp(1_000),
        sids,
        limits,
    };
    let cmd = CreateChannel {
        sid: ChannelSid::from_bits(1),
        service_sid: ServiceSid::from_bits(2),
        friendly_name: Some("general".into()),
        unique_name: Some("general".into()),
        attributes: None,
        kind: ChannelType::Public,
        created_by: None,
        date_created: None,
        date_updated: None,
    };
    ChannelState::create(cmd, &mut ctx).unwrap().0
}

fn add(identity: &str) -> ChannelCommand {
    ChannelCommand::AddMember(AddMember {
        identity: identity.into(),
        role_sid: None,
        default_role: role(),
        attributes: None,
        last_consumed_message_index: None,
        last_consumption_timestamp: None,
        date_created: None,
        date_updated: None,
    })
}

fn post(author: &str, body: &str, require_member: bool) -> ChannelCommand {
    ChannelCommand::PostMessage(PostMessage {
        author: Some(author.into()),
        require_member,
        body: body.into(),
        attributes: None,
        date_created: None,
        date_updated: None,
        last_updated_by: None,
        client_id: None,
        media: None,
    })
}

fn apply(
    state: &mut ChannelState,
    sids: &mut CountingSids,
    limits: &Limits,
    cmd: ChannelCommand,
) -> Result<Vec<ChannelEvent>, DomainError> {
    let mut ctx = ApplyContext {
        now: Timestamp(2_000),
        sids,
        limits,
    };
    state.apply(cmd, &mut ctx)
}

#[test]
fn new_channel_starts_at_seq_one_and_index_zero() {
    let limits = Limits::default();
    let state = new_channel(&mut CountingSids(0), &limits);
    assert_eq!(state.channel().last_seq, 1);
    assert_eq!(state.channel().next_message_index, 0);
    assert_eq!(state.channel().created_by, "system");
}

#[test]
fn messages_get_consecutive_indices_from_zero() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    for expected in 0..3 {
        let events = apply(&mut state, &mut sids, &limits, post("system", "hi", false)).unwrap();
        match &events[0].kind {
            ChannelEventKind::MessageAdded { message } => assert_eq!(message.index, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(state.channel().messages_count, 3);
    assert_eq!(state.channel().last_message.map(|m| m.index), Some(2));
}

#[test]
fn non_member_cannot_post_when_membership_is_required() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    let before = state.clone();
    assert_eq!(
        apply(&mut state, &mut sids, &limits, post("alice", "hi", true)),
        Err(DomainError::NotMember)
    );
    assert_eq!(state, before);
}

#[test]
fn a_media_message_carries_its_media_and_no_body() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    let media = crate::MessageMedia {
        sid: crate::MediaSid::from_bits(9),
        size: 3,
        content_type: "image/png".into(),
        filename: Some("a.png".into()),
    };
    let with = |body: &str| match post("system", body, false) {
        ChannelCommand::PostMessage(p) => ChannelCommand::PostMessage(PostMessage {
            media: Some(Box::new(media.clone())),
            ..p
        }),
        _ => unreachable!(),
    };
    let before = state.clone();
    assert!(matches!(
        apply(&mut state, &mut sids, &limits, with("caption")),
        Err(DomainError::InvalidParameter { .. })
    ));
    assert_eq!(state, before);
    let events = apply(&mut state, &mut sids, &limits, with("")).unwrap();
    match &events[0].kind {
        ChannelEventKind::MessageAdded { message } => {
            assert_eq!(message.kind(), "media");
            assert_eq!(message.media.as_deref(), Some(&media));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn joining_accepts_a_pending_invite_with_its_role() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    let invite_role = RoleSid::from_bits(77);
    apply(
        &mut state,
        &mut sids,
        &limits,
        ChannelCommand::Invite(InviteMember {
            identity: "bob".into(),
            role_sid: invite_role,
            created_by: Some("alice".into()),
        }),
    )
    .unwrap();
    let events = apply(&mut state, &mut sids, &limits, add("bob")).unwrap();
    assert!(matches!(
        events[0].kind,
        ChannelEventKind::InviteRemoved {
            end: InviteEnd::Accepted,
            ..
        }
    ));
    assert_eq!(state.member("bob").unwrap().role_sid, invite_role);
    assert!(state.invite("bob").is_none());
}

#[test]
fn adding_an_existing_member_is_refused() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    apply(&mut state, &mut sids, &limits, add("bob")).unwrap();
    assert_eq!(
        apply(&mut state, &mut sids, &limits, add("bob")),
        Err(DomainError::AlreadyMember)
    );
}

#[test]
fn member_limit_is_enforced() {
    let limits = Limits {
        members_per_channel: 2,
        ..Limits::default()
    };
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    apply(&mut state, &mut sids, &limits, add("a")).unwrap();
    apply(&mut state, &mut sids, &limits, add("b")).unwrap();
    assert_eq!(
        apply(&mut state, &mut sids, &limits, add("c")),
        Err(DomainError::MemberLimitReached { limit: 2 })
    );
}

#[test]
fn advancing_the_read_horizon_never_moves_it_back() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    apply(&mut state, &mut sids, &limits, add("bob")).unwrap();
    let consume = |c| {
        ChannelCommand::UpdateMember(UpdateMember {
            member: MemberRef::Identity("bob".into()),
            role_sid: None,
            attributes: None,
            consumption: Some(c),
            last_consumption_timestamp: None,
            notification_level: None,
            date_created: None,
            date_updated: None,
        })
    };
    apply(
        &mut state,
        &mut sids,
        &limits,
        consume(ConsumptionUpdate::Advance(5)),
    )
    .unwrap();
    apply(
        &mut state,
        &mut sids,
        &limits,
        consume(ConsumptionUpdate::Advance(3)),
    )
    .unwrap();
    assert_eq!(
        state.member("bob").unwrap().last_consumed_message_index,
        Some(5)
    );
    apply(
        &mut state,
        &mut sids,
        &limits,
        consume(ConsumptionUpdate::Set(None)),
    )
    .unwrap();
    assert_eq!(
        state.member("bob").unwrap().last_consumed_message_index,
        None
    );
}

#[test]
fn over_long_body_is_refused_and_changes_nothing() {
    let limits = Limits {
        message_body_bytes: 4,
        ..Limits::default()
    };
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    let before = state.clone();
    assert_eq!(
        apply(
            &mut state,
            &mut sids,
            &limits,
            post("system", "hello", false)
        ),
        Err(DomainError::BodyTooLong { limit: 4 })
    );
    assert_eq!(state, before);
}

#[test]
fn deleted_channel_refuses_further_commands() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    apply(&mut state, &mut sids, &limits, ChannelCommand::Delete).unwrap();
    assert!(state.is_removed());
    assert_eq!(
        apply(&mut state, &mut sids, &limits, post("system", "x", false)),
        Err(DomainError::ChannelNotFound)
    );
}

#[test]
fn unique_name_that_looks_like_a_sid_is_refused() {
    let limits = Limits::default();
    let mut sids = CountingSids(0);
    let mut state = new_channel(&mut sids, &limits);
    let cmd = ChannelCommand::Update(UpdateChannel {
        unique_name: Some(ChannelSid::from_bits(5).to_string()),
        ..UpdateChannel::default()
    });
    assert!(matches!(
        apply(&mut state, &mut sids, &limits, cmd),
        Err(DomainError::InvalidParameter { ref field, .. }) if field == "UniqueName"
    ));
}

/// A command for the property tests, drawn from a small world of identities so that
/// successes and refusals both happen often.
fn arb_command() -> impl Strategy<Value = ChannelCommand> {
    let identity = prop::sample::select(vec!["a", "b", "c", "system"]);
    prop_oneof![
        identity.clone().prop_map(add),
        identity.clone().prop_map(|i| ChannelCommand::RemoveMember {
            member: MemberRef::Identity(i.into())
        }),
        (identity.clone(), any::<bool>(), 0usize..12).prop_map(|(i, req, len)| post(
            i,
            &"x".repeat(len),
            req
        )),
        identity
            .clone()
            .prop_map(|i| ChannelCommand::Invite(InviteMember {
                identity: i.into(),
                role_sid: role(),
                created_by: None,
            })),
        identity.prop_map(|i| ChannelCommand::Decline { identity: i.into() }),
        Just(ChannelCommand::Update(UpdateChannel {
            attributes: Some("{\"k\":1}".into()),
            ..UpdateChannel::default()
        })),
        Just(ChannelCommand::Update(UpdateChannel {
            attributes: Some("not json".into()),
            ..UpdateChannel::default()
        })),
    ]
}

proptest! {
    /// Whatever the mix of commands, message indices are 0, 1, 2, ... with no gap, event seqs
    /// continue from 1 with no gap, and a refused command leaves the state untouched.
    #[test]
    fn indices_and_seqs_are_gap_free_and_refusals_change_nothing(
        commands in prop::collection::vec(arb_command(), 0..60)
    ) {
        let limits = Limits { message_body_bytes: 8, members_per_channel: 3, ..Limits::default() };
        let mut sids = CountingSids(0);
        let mut state = new_channel(&mut sids, &limits);
        let mut next_seq = 2;
        let mut next_index = 0;
        for cmd in commands {
            let before = state.clone();
            match apply(&mut state, &mut sids, &limits, cmd) {
                Ok(events) => {
                    prop_assert!(!events.is_empty());
                    for event in events {
                        prop_assert_eq!(event.seq, next_seq);
                        next_seq += 1;
                        if let ChannelEventKind::MessageAdded { message } = event.kind {
                            prop_assert_eq!(message.index, next_index);
                            next_index += 1;
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&state, &before),
            }
            prop_assert_eq!(state.channel().last_seq, next_seq - 1);
            prop_assert_eq!(state.channel().next_message_index, next_index);
            prop_assert_eq!(state.channel().members_count as usize, state.members().count());
            prop_assert!(state.members().count() <= limits.members_per_channel);
        }
    }
}
