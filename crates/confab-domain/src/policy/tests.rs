use super::*;
use crate::channel::{
    AddMember, ApplyContext, ConsumptionUpdate, InviteMember, MessageChange, PostMessage,
    UpdateChannel, UpdateMember, UpdateMessage,
};
use crate::limits::Limits;
use crate::permissions::DefaultRoles;
use crate::resources::{ChannelType, Message, ServiceLimits};
use crate::sid::{ChannelSid, CountingSids};
use crate::time::Timestamp;

/// The channel user role of `world`'s service: the roles are the first SIDs `CountingSids(100)`
/// draws, in `DefaultRoles::new`'s order.
fn default_member_role() -> RoleSid {
    let mut sids = CountingSids(100);
    DefaultRoles::new(ServiceSid::from_bits(2), &mut sids, Timestamp(0))
        .channel_user
        .sid
}

struct World {
    policy: ServicePolicy,
    roles: DefaultRoles,
    state: ChannelState,
}

fn world(kind: ChannelType, created_by: Option<&str>) -> World {
    let service_sid = ServiceSid::from_bits(2);
    let mut sids = CountingSids(100);
    let roles = DefaultRoles::new(service_sid, &mut sids, Timestamp(0));
    let service = Service::new(
        service_sid,
        "s",
        &roles,
        ServiceLimits {
            channel_members: 100,
            user_channels: 100,
        },
        Timestamp(0),
    );
    let policy = ServicePolicy {
        service,
        roles: roles.clone().into_vec(),
    };
    let limits = Limits::default();
    let mut ctx = ApplyContext {
        now: Timestamp(1),
        sids: &mut sids,
        limits: &limits,
    };
    let (mut state, _) = ChannelState::create(
        CreateChannel {
            sid: ChannelSid::from_bits(1),
            service_sid,
            friendly_name: None,
            unique_name: None,
            attributes: None,
            kind,
            created_by: created_by.map(str::to_owned),
            date_created: None,
            date_updated: None,
        },
        &mut ctx,
    )
    .unwrap();
    for (who, role) in [
        ("admin", roles.channel_admin.sid),
        ("member", roles.channel_user.sid),
    ] {
        state
            .apply(ChannelCommand::AddMember(add(who, Some(role))), &mut ctx)
            .unwrap();
    }
    state
        .apply(
            ChannelCommand::Invite(InviteMember {
                identity: "guest".into(),
                role_sid: roles.channel_user.sid,
                created_by: None,
            }),
            &mut ctx,
        )
        .unwrap();
    World {
        policy,
        roles,
        state,
    }
}

fn add(identity: &str, role_sid: Option<RoleSid>) -> AddMember {
    AddMember {
        identity: identity.into(),
        role_sid,
        default_role: default_member_role(),
        attributes: None,
        last_consumed_message_index: None,
        last_consumption_timestamp: None,
        date_created: None,
        date_updated: None,
    }
}

fn message(author: &str, by_account: bool) -> Message {
    Message {
        sid: crate::sid::MessageSid::from_bits(7),
        channel_sid: ChannelSid::from_bits(1),
        service_sid: ServiceSid::from_bits(2),
        index: 0,
        author: author.into(),
        by_account: Some(by_account),
        member_sid: None,
        body: "hi".into(),
        attributes: Default::default(),
        was_edited: false,
        last_updated_by: None,
        client_id: None,
        media: None,
        date_created: Timestamp(1),
        date_updated: Timestamp(1),
    }
}

impl World {
    fn grants<'a>(&'a self, identity: &'a str, service_admin: bool) -> UserGrants<'a> {
        UserGrants {
            identity,
            service_role: Some(if service_admin {
                self.roles.service_admin.sid
            } else {
                self.roles.service_user.sid
            }),
            policy: &self.policy,
        }
    }

    fn may(
        &self,
        identity: &str,
        service_admin: bool,
        cmd: &ChannelCommand,
    ) -> Result<(), DomainError> {
        authorize(
            Some(&self.grants(identity, service_admin)),
            &self.state,
            cmd,
        )
    }
}

fn update_channel(name: bool, attributes: bool) -> ChannelCommand {
    ChannelCommand::Update(UpdateChannel {
        friendly_name: name.then(|| "n".to_owned()),
        attributes: attributes.then(|| "{}".to_owned()),
        ..UpdateChannel::default()
    })
}

#[test]
fn account_may_do_anything() {
    let w = world(ChannelType::Private, None);
    assert_eq!(authorize(None, &w.state, &ChannelCommand::Delete), Ok(()));
}

#[test]
fn update_without_fields_needs_a_permission() {
    let w = world(ChannelType::Public, Some("admin"));
    let empty = update_channel(false, false);
    assert_eq!(
        w.may("member", false, &empty),
        Err(DomainError::NotAuthorized {
            permission: Permission::EditChannelAttributes
        })
    );
    assert_eq!(
        w.may("stranger", false, &empty),
        Err(DomainError::NotAuthorized {
            permission: Permission::EditChannelAttributes
        })
    );
    assert_eq!(w.may("admin", false, &empty), Ok(()));
}

#[test]
fn user_named_system_gains_nothing_from_account_channels() {
    let w = world(ChannelType::Private, None);
    assert_eq!(w.state.channel().created_by, "system");
    let join = ChannelCommand::AddMember(add("system", None));
    assert_eq!(
        w.may("system", false, &join),
        Err(DomainError::ChannelNotFound)
    );
    assert_eq!(
        participation("system", w.state.channel(), false, false),
        Err(DomainError::ChannelNotFound)
    );
    // The account's messages are nobody's own.
    let edit = ChannelCommand::UpdateMessage(UpdateMessage {
        current: message("system", true),
        change: MessageChange {
            body: Some("x".into()),
            ..MessageChange::default()
        },
    });
    assert_eq!(
        w.may("member", false, &edit),
        Err(DomainError::NotAuthorized {
            permission: Permission::EditAnyMessage
        })
    );
}

#[test]
fn creator_may_see_and_join_its_private_channel() {
    let w = world(ChannelType::Private, Some("carol"));
    let join = ChannelCommand::AddMember(add("carol", None));
    assert_eq!(w.may("carol", false, &join), Ok(()));
    let as_creator = ChannelCommand::AddMember(add("carol", Some(w.roles.channel_admin.sid)));
    assert_eq!(w.may("carol", false, &as_creator), Ok(()));
    let as_admin = ChannelCommand::AddMember(add("member2", Some(w.roles.channel_admin.sid)));
    assert!(matches!(
        w.may("member2", false, &as_admin),
        Err(DomainError::ChannelNotFound | DomainError::Forbidden { .. })
    ));
    assert_eq!(
        w.may("dave", false, &join),
        Err(DomainError::ChannelNotFound)
    );
}

#[test]
fn service_role_decides_for_non_members() {
    let w = world(ChannelType::Public, None);
    assert_eq!(w.may("root", true, &ChannelCommand::Delete), Ok(()));
    assert_eq!(
        w.may("root", false, &ChannelCommand::Delete),
        Err(DomainError::NotAuthorized {
            permission: Permission::DestroyChannel
        })
    );
}

#[test]
fn members_act_on_themselves_only() {
    let w = world(ChannelType::Public, None);
    let consume = |who: &str| {
        ChannelCommand::UpdateMember(UpdateMember {
            member: MemberRef::Identity(who.into()),
            role_sid: None,
            attributes: None,
            consumption: Some(ConsumptionUpdate::All),
            last_consumption_timestamp: None,
            notification_level: None,
            date_created: None,
            date_updated: None,
        })
    };
    assert_eq!(w.may("member", false, &consume("member")), Ok(()));
    assert!(matches!(
        w.may("member", false, &consume("admin")),
        Err(DomainError::Forbidden { .. })
    ));
    let post = |author: &str| {
        ChannelCommand::PostMessage(PostMessage {
            author: Some(author.into()),
            require_member: true,
            body: "b".into(),
            attributes: None,
            date_created: None,
            date_updated: None,
            last_updated_by: None,
            client_id: None,
            media: None,
        })
    };
    assert_eq!(w.may("member", false, &post("member")), Ok(()));
    assert!(matches!(
        w.may("member", false, &post("admin")),
        Err(DomainError::Forbidden { .. })
    ));
    assert_eq!(
        w.may("stranger", false, &post("stranger")),
        Err(DomainError::NotMember)
    );
    // A media message needs sendMediaMessage besides sendMessage.
    let media = ChannelCommand::PostMessage(PostMessage {
        body: String::new(),
        media: Some(Box::new(crate::MessageMedia::requested(
            crate::MediaSid::from_bits(1),
        ))),
        ..match post("member") {
            ChannelCommand::PostMessage(p) => p,
            _ => unreachable!(),
        }
    });
    assert_eq!(w.may("member", false, &media), Ok(()));
    let mut text_only = world(ChannelType::Public, None);
    for role in &mut text_only.policy.roles {
        role.permissions
            .retain(|p| *p != Permission::SendMediaMessage);
    }
    assert_eq!(
        text_only.may("member", false, &media),
        Err(DomainError::NotAuthorized {
            permission: Permission::SendMediaMessage
        })
    );
    assert_eq!(text_only.may("member", false, &post("member")), Ok(()));
    let decline = ChannelCommand::Decline {
        identity: "guest".into(),
    };
    assert_eq!(w.may("guest", false, &decline), Ok(()));
    assert_eq!(
        w.may("member", false, &decline),
        Err(DomainError::InviteNotFound)
    );
}

#[test]
fn another_service_sees_nothing() {
    let w = world(ChannelType::Public, None);
    let mut other = w.policy.clone();
    other.service.sid = ServiceSid::from_bits(99);
    let grants = UserGrants {
        identity: "admin",
        service_role: Some(w.roles.service_admin.sid),
        policy: &other,
    };
    assert_eq!(
        authorize(Some(&grants), &w.state, &ChannelCommand::Delete),
        Err(DomainError::ChannelNotFound)
    );
}

#[test]
fn records_from_before_the_flag_name_the_account_by_system() {
    let w = world(ChannelType::Private, Some("alice"));
    let mut legacy = serde_json::to_value(w.state.channel()).unwrap();
    legacy.as_object_mut().unwrap().remove("created_by_account");
    legacy["created_by"] = "system".into();
    let channel: crate::resources::Channel = serde_json::from_value(legacy.clone()).unwrap();
    assert!(channel.by_account());
    assert!(!is_creator(&channel, "system"));
    legacy["created_by"] = "alice".into();
    let channel: crate::resources::Channel = serde_json::from_value(legacy).unwrap();
    assert!(!channel.by_account());
    assert!(is_creator(&channel, "alice"));
    let mut message = serde_json::to_value(message("system", false)).unwrap();
    message.as_object_mut().unwrap().remove("by_account");
    let message: Message = serde_json::from_value(message).unwrap();
    assert!(message.is_by_account());
}
