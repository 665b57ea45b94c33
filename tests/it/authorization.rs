//! Who may do what: every realtime operation × every way a user can stand with a channel ×
//! both channel types, against one table written out here (not derived from the server's
//! rules), and the same operations through REST as the account, which may do anything. Then
//! the review's findings: a demoted admin's open session, a user named `system`, and an update
//! without fields.

use std::time::Duration;

use confab_client::{Client, Events, Request};
use confab_testkit::{RestClient, TestNode};
use serde_json::{json, Value};

use crate::realtime::{connect, service};

/// How the acting user stands with the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A member with the channel user role (`cu`).
    ChannelUser,
    /// A member with the channel admin role (`ca`).
    ChannelAdmin,
    /// Not a member; service admin role (`sa`).
    ServiceAdmin,
    /// Not a member; service user role (`su`).
    ServiceUser,
    /// Invited, not a member (`inv`).
    Invited,
}

const ROLES: [Role; 5] = [
    Role::ChannelUser,
    Role::ChannelAdmin,
    Role::ServiceAdmin,
    Role::ServiceUser,
    Role::Invited,
];

impl Role {
    fn identity(self) -> &'static str {
        match self {
            Role::ChannelUser => "cu",
            Role::ChannelAdmin => "ca",
            Role::ServiceAdmin => "sa",
            Role::ServiceUser => "su",
            Role::Invited => "inv",
        }
    }

    fn member(self) -> bool {
        matches!(self, Role::ChannelUser | Role::ChannelAdmin)
    }
}

const OPS: [&str; 18] = [
    "getChannel",
    "join",
    "leave",
    "decline",
    "invite",
    "add",
    "removeMember",
    "updateChannelEmpty",
    "updateChannelName",
    "deleteChannel",
    "getMembers",
    "sendMessage",
    "getMessages",
    "updateOthersMessage",
    "removeOthersMessage",
    "typing",
    "setAllMessagesConsumed",
    "getUnconsumedMessagesCount",
];

/// The expected outcome: `None` allowed, `Some(code)` refused with that Twilio code.
fn expected(op: &str, role: Role, private: bool) -> Option<u32> {
    const HIDDEN: Option<u32> = Some(50300);
    const NOT_MEMBER: Option<u32> = Some(50400);
    const DENIED: Option<u32> = Some(50107);
    // A private channel does not exist for users who are neither members nor invited.
    if private && matches!(role, Role::ServiceAdmin | Role::ServiceUser) {
        return HIDDEN;
    }
    let member = role.member();
    // What the default roles grant: service admin manages any channel it can see; channel
    // admin manages its channel; channel users and service users manage nothing.
    let manager = matches!(role, Role::ChannelAdmin | Role::ServiceAdmin);
    match op {
        "getChannel" | "getMembers" => None,
        "join" if member => Some(50404),
        "join" => None,
        "decline" if role == Role::Invited => None,
        "decline" => Some(50601),
        "invite" | "add" | "removeMember" | "updateChannelEmpty" | "updateChannelName"
        | "deleteChannel" => (!manager).then_some(50107),
        "leave"
        | "sendMessage"
        | "getMessages"
        | "typing"
        | "setAllMessagesConsumed"
        | "getUnconsumedMessagesCount"
            if !member =>
        {
            NOT_MEMBER
        }
        "updateOthersMessage" | "removeOthersMessage" if !member => NOT_MEMBER,
        "updateOthersMessage" | "removeOthersMessage" if role == Role::ChannelUser => DENIED,
        _ => None,
    }
}

fn request(op: &str, channel: &str) -> Request {
    let channel = channel.to_owned();
    match op {
        "getChannel" => Request::GetChannel { channel },
        "join" => Request::Join { channel },
        "leave" => Request::Leave { channel },
        "decline" => Request::Decline { channel },
        "invite" => Request::Invite {
            channel,
            identity: "newcomer".into(),
        },
        "add" => Request::Add {
            channel,
            identity: "newcomer".into(),
        },
        "removeMember" => Request::RemoveMember {
            channel,
            identity: "cx".into(),
        },
        "updateChannelEmpty" => Request::UpdateChannel {
            channel,
            friendly_name: None,
            unique_name: None,
            attributes: None,
        },
        "updateChannelName" => Request::UpdateChannel {
            channel,
            friendly_name: Some("renamed".into()),
            unique_name: None,
            attributes: None,
        },
        "deleteChannel" => Request::DeleteChannel { channel },
        "getMembers" => Request::GetMembers { channel },
        "sendMessage" => Request::SendMessage {
            channel,
            body: "hi".into(),
            attributes: None,
            client_id: None,
            media_sid: None,
        },
        "getMessages" => Request::GetMessages {
            channel,
            page_size: None,
            anchor: None,
            direction: None,
        },
        "updateOthersMessage" => Request::UpdateMessage {
            channel,
            index: 0,
            body: Some("edited".into()),
            attributes: None,
        },
        "removeOthersMessage" => Request::RemoveMessage { channel, index: 0 },
        "typing" => Request::Typing { channel },
        "setAllMessagesConsumed" => Request::SetAllMessagesConsumed { channel },
        "getUnconsumedMessagesCount" => Request::GetUnconsumedMessagesCount { channel },
        other => panic!("no request for {other}"),
    }
}

/// The SID of the service's role called `name`.
pub(crate) async fn role_sid(rest: &RestClient, service: &str, name: &str) -> String {
    let roles = rest
        .get(&format!("/v2/Services/{service}/Roles?PageSize=50"))
        .await;
    roles.body["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["friendly_name"] == name)
        .unwrap_or_else(|| panic!("no role {name}"))["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn post_ok(rest: &RestClient, path: &str, form: &[(&str, &str)]) -> Value {
    let r = rest.post(path, form).await;
    assert!(r.status / 100 == 2, "POST {path} {form:?}: {:?}", r.body);
    r.body
}

/// The SID of what a POST created.
pub(crate) async fn created_sid(rest: &RestClient, path: &str, form: &[(&str, &str)]) -> String {
    post_ok(rest, path, form).await["sid"]
        .as_str()
        .expect("a created resource has a sid")
        .to_owned()
}

/// A channel with `ca` (channel admin), `cu` and `cx` (channel users) as members, `inv`
/// invited, and message 0 by `cx`. Made by the account through REST.
async fn fixture(rest: &RestClient, service: &str, private: bool, admin_role: &str) -> String {
    let kind = if private { "private" } else { "public" };
    let channel = created_sid(
        rest,
        &format!("/v2/Services/{service}/Channels"),
        &[("Type", kind), ("FriendlyName", "table")],
    )
    .await;
    let base = format!("/v2/Services/{service}/Channels/{channel}");
    post_ok(
        rest,
        &format!("{base}/Members"),
        &[("Identity", "ca"), ("RoleSid", admin_role)],
    )
    .await;
    for identity in ["cu", "cx"] {
        post_ok(rest, &format!("{base}/Members"), &[("Identity", identity)]).await;
    }
    post_ok(rest, &format!("{base}/Invites"), &[("Identity", "inv")]).await;
    post_ok(
        rest,
        &format!("{base}/Messages"),
        &[("From", "cx"), ("Body", "hello")],
    )
    .await;
    channel
}

struct Users {
    clients: Vec<(Role, Client, Events)>,
}

impl Users {
    fn client(&self, role: Role) -> &Client {
        &self
            .clients
            .iter()
            .find(|(r, _, _)| *r == role)
            .expect("a client per role")
            .1
    }
}

async fn users(node: &TestNode, service: &str) -> Users {
    let rest = node.rest();
    let admin = role_sid(&rest, service, "service admin").await;
    post_ok(
        &rest,
        &format!("/v2/Services/{service}/Users"),
        &[("Identity", "sa"), ("RoleSid", &admin)],
    )
    .await;
    let mut clients = Vec::new();
    for role in ROLES {
        let (client, events) = connect(node, service, role.identity()).await;
        clients.push((role, client, events));
    }
    Users { clients }
}

#[tokio::test]
async fn every_operation_for_every_role_and_channel_type() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channel_admin = role_sid(&rest, &service, "channel admin").await;
    let users = users(&node, &service).await;
    let mut failures = Vec::new();
    let mut cases = 0;
    for private in [false, true] {
        for op in OPS {
            for role in ROLES {
                let channel = fixture(&rest, &service, private, &channel_admin).await;
                let got = users
                    .client(role)
                    .send(request(op, &channel))
                    .await
                    .err()
                    .map(|e| e.code().unwrap_or_else(|| panic!("{op}: {e}")));
                let want = expected(op, role, private);
                cases += 1;
                if got != want {
                    failures.push(format!(
                        "{op} as {role:?} on a {} channel: got {got:?}, want {want:?}",
                        if private { "private" } else { "public" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    node.stop().await;
}

#[tokio::test]
async fn the_account_may_do_everything_through_rest() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channel_admin = role_sid(&rest, &service, "channel admin").await;
    for private in [false, true] {
        let channel = fixture(&rest, &service, private, &channel_admin).await;
        let base = format!("/v2/Services/{service}/Channels/{channel}");
        assert_eq!(rest.get(&base).await.status, 200);
        assert_eq!(rest.get(&format!("{base}/Members")).await.status, 200);
        assert_eq!(rest.get(&format!("{base}/Messages")).await.status, 200);
        post_ok(&rest, &base, &[]).await;
        post_ok(&rest, &base, &[("FriendlyName", "renamed")]).await;
        post_ok(
            &rest,
            &format!("{base}/Invites"),
            &[("Identity", "newcomer")],
        )
        .await;
        post_ok(&rest, &format!("{base}/Members"), &[("Identity", "other")]).await;
        post_ok(
            &rest,
            &format!("{base}/Messages"),
            &[("Body", "as the account")],
        )
        .await;
        let messages = rest.get(&format!("{base}/Messages")).await;
        let first = messages.body["messages"][0]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        post_ok(
            &rest,
            &format!("{base}/Messages/{first}"),
            &[("Body", "edited")],
        )
        .await;
        assert_eq!(
            rest.delete(&format!("{base}/Messages/{first}"))
                .await
                .status,
            204
        );
        assert_eq!(rest.delete(&format!("{base}/Members/cx")).await.status, 204);
        assert_eq!(rest.delete(&base).await.status, 204);
    }
    node.stop().await;
}

pub(crate) async fn error_code(client: &Client, request: Request) -> Option<u32> {
    client.send(request).await.err().and_then(|e| e.code())
}

#[tokio::test]
async fn a_demoted_admin_loses_its_rights_on_the_open_session_at_once() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let admin = role_sid(&rest, &service, "service admin").await;
    let user = role_sid(&rest, &service, "service user").await;
    let boss = created_sid(
        &rest,
        &format!("/v2/Services/{service}/Users"),
        &[("Identity", "boss"), ("RoleSid", &admin)],
    )
    .await;
    let (session, _events) = connect(&node, &service, "boss").await;
    let channels = format!("/v2/Services/{service}/Channels");
    let first = created_sid(&rest, &channels, &[]).await;
    // An admin: deletes a channel it is not a member of.
    assert_eq!(
        error_code(&session, Request::DeleteChannel { channel: first }).await,
        None
    );
    // Demoted through REST: the same session is refused at once.
    post_ok(
        &rest,
        &format!("/v2/Services/{service}/Users/{boss}"),
        &[("RoleSid", &user)],
    )
    .await;
    let second = created_sid(&rest, &channels, &[]).await;
    assert_eq!(
        error_code(
            &session,
            Request::DeleteChannel {
                channel: second.clone()
            }
        )
        .await,
        Some(50107)
    );
    assert_eq!(rest.get(&format!("{channels}/{second}")).await.status, 200);
    // A role that loses a permission: the service admins' role without destroyChannel.
    post_ok(
        &rest,
        &format!("/v2/Services/{service}/Users/{boss}"),
        &[("RoleSid", &admin)],
    )
    .await;
    let permissions: Vec<(&str, &str)> = ["createChannel", "joinChannel", "editOwnUserInfo"]
        .iter()
        .map(|p| ("Permission", *p))
        .collect();
    post_ok(
        &rest,
        &format!("/v2/Services/{service}/Roles/{admin}"),
        &permissions,
    )
    .await;
    assert_eq!(
        error_code(&session, Request::DeleteChannel { channel: second }).await,
        Some(50107)
    );
    node.stop().await;
}

#[tokio::test]
async fn a_user_named_system_gains_nothing_from_the_accounts_channels() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channels = format!("/v2/Services/{service}/Channels");
    let private = post_ok(&rest, &channels, &[("Type", "private")]).await;
    assert_eq!(private["created_by"], "system");
    let private = private["sid"].as_str().unwrap().to_owned();
    post_ok(
        &rest,
        &format!("{channels}/{private}/Messages"),
        &[("Body", "from the account")],
    )
    .await;
    let (system, _events) = connect(&node, &service, "system").await;
    for request in [
        Request::GetChannel {
            channel: private.clone(),
        },
        Request::Join {
            channel: private.clone(),
        },
        Request::GetMessages {
            channel: private.clone(),
            page_size: None,
            anchor: None,
            direction: None,
        },
        Request::RemoveMember {
            channel: private.clone(),
            identity: "anyone".into(),
        },
        Request::DeleteChannel {
            channel: private.clone(),
        },
    ] {
        assert_eq!(error_code(&system, request).await, Some(50300));
    }
    // In a public channel it joins like anyone, and the account's messages are not its own.
    let public = created_sid(&rest, &channels, &[]).await;
    let posted = post_ok(
        &rest,
        &format!("{channels}/{public}/Messages"),
        &[("Body", "from the account")],
    )
    .await;
    assert_eq!(posted["from"], "system");
    let posted = posted["sid"].as_str().unwrap().to_owned();
    let join = Request::Join {
        channel: public.clone(),
    };
    assert_eq!(error_code(&system, join).await, None);
    let edit = Request::UpdateMessage {
        channel: public.clone(),
        index: 0,
        body: Some("mine now".into()),
        attributes: None,
    };
    assert_eq!(error_code(&system, edit).await, Some(50107));
    let remove = Request::RemoveMessage {
        channel: public.clone(),
        index: 0,
    };
    assert_eq!(error_code(&system, remove).await, Some(50107));
    let message = rest
        .get(&format!("{channels}/{public}/Messages/{posted}"))
        .await;
    assert_eq!(message.body["body"], "from the account");
    node.stop().await;
}

#[tokio::test]
async fn an_update_without_fields_needs_the_permission_and_moves_nothing() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channels = format!("/v2/Services/{service}/Channels");
    let channel = created_sid(&rest, &channels, &[]).await;
    post_ok(
        &rest,
        &format!("{channels}/{channel}/Members"),
        &[("Identity", "member")],
    )
    .await;
    let (member, _me) = connect(&node, &service, "member").await;
    let (stranger, _se) = connect(&node, &service, "stranger").await;
    let last_seq = |v: Value| v["lastSeq"].as_u64().unwrap();
    let before = last_seq(
        member
            .send(Request::GetChannel {
                channel: channel.clone(),
            })
            .await
            .unwrap(),
    );
    let empty = Request::UpdateChannel {
        channel: channel.clone(),
        friendly_name: None,
        unique_name: None,
        attributes: None,
    };
    assert_eq!(error_code(&stranger, empty.clone()).await, Some(50107));
    assert_eq!(error_code(&member, empty).await, Some(50107));
    let after = member
        .send(Request::GetChannel {
            channel: channel.clone(),
        })
        .await
        .unwrap();
    assert_eq!(last_seq(after.clone()), before);
    assert_eq!(after["dateUpdated"], json!(after["dateUpdated"]));
    node.stop().await;
}

/// The propagation bound of a role change to other nodes: the policy cache's lifetime (500 ms
/// by default) with room to spare.
pub(crate) const POLICY_PROPAGATION: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_lower_channel_member_limit_applies_to_a_loaded_channel_at_once() {
    let node = TestNode::start().unwrap();
    let service = service(&node).await;
    let rest = node.rest();
    let channels = format!("/v2/Services/{service}/Channels");
    let channel = created_sid(&rest, &channels, &[]).await;
    let members = format!("{channels}/{channel}/Members");
    // The channel's owner has it loaded, with the service's limit as it was then.
    for identity in ["a", "b"] {
        post_ok(&rest, &members, &[("Identity", identity)]).await;
    }
    post_ok(
        &rest,
        &format!("/v2/Services/{service}"),
        &[("Limits.ChannelMembers", "2")],
    )
    .await;
    let third = rest.post(&members, &[("Identity", "c")]).await;
    assert_eq!((third.status, third.code()), (403, Some(50403)));
    node.stop().await;
}
