"""The official Twilio Python helper library drives Confab's Chat v2 REST API."""

import json
from datetime import datetime, timezone

import pytest
from twilio.base.exceptions import TwilioRestException

from conftest import API_KEY_SECRET, API_KEY_SID, client_for


def chat(client):
    return client.chat.v2


# --- services -------------------------------------------------------------------------------

def test_services_create_fetch_update_list_delete(client):
    svc = chat(client).services.create(friendly_name="first")
    assert svc.sid.startswith("IS") and svc.friendly_name == "first"
    assert svc.default_channel_role_sid.startswith("RL")
    assert svc.links["channels"].endswith(f"/v2/Services/{svc.sid}/Channels")

    fetched = chat(client).services(svc.sid).fetch()
    assert fetched.sid == svc.sid and isinstance(fetched.date_created, datetime)

    updated = chat(client).services(svc.sid).update(
        friendly_name="renamed", typing_indicator_timeout=9, read_status_enabled=False,
        notifications_new_message_enabled=True, notifications_new_message_template="${MESSAGE}",
        limits_channel_members=50, webhook_filters=["onMessageSent", "onChannelAdded"],
    )
    assert updated.friendly_name == "renamed"
    assert updated.typing_indicator_timeout == 9
    assert updated.read_status_enabled is False
    assert updated.notifications["new_message"]["enabled"] is True
    assert updated.limits["channel_members"] == 50
    assert updated.webhook_filters == ["onMessageSent", "onChannelAdded"]

    sids = [s.sid for s in chat(client).services.stream(page_size=2)]
    assert svc.sid in sids

    assert chat(client).services(svc.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        chat(client).services(svc.sid).fetch()
    assert err.value.status == 404 and err.value.code == 20404


# --- roles ----------------------------------------------------------------------------------

def test_roles_crud(client, service):
    roles = chat(client).services(service.sid).roles
    defaults = {r.friendly_name for r in roles.list()}
    assert defaults == {"service admin", "service user", "channel admin", "channel user"}

    role = roles.create(friendly_name="moderator", type="channel",
                        permission=["sendMessage", "deleteAnyMessage"])
    assert role.type == "channel" and role.permissions == ["sendMessage", "deleteAnyMessage"]
    assert roles(role.sid).fetch().friendly_name == "moderator"
    updated = roles(role.sid).update(permission=["sendMessage"])
    assert updated.permissions == ["sendMessage"]
    assert roles(role.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        roles(role.sid).fetch()
    assert err.value.status == 404

    with pytest.raises(TwilioRestException) as err:
        roles.create(friendly_name="bad", type="channel", permission=["flyToTheMoon"])
    assert (err.value.status, err.value.code) == (400, 50104)


# --- users ----------------------------------------------------------------------------------

def test_users_crud_and_fetch_by_identity(client, service):
    users = chat(client).services(service.sid).users
    user = users.create(identity="alice", friendly_name="Alice", attributes=json.dumps({"team": "a"}))
    assert user.sid.startswith("US") and user.identity == "alice"
    assert json.loads(user.attributes) == {"team": "a"}
    assert user.role_sid == service.default_service_role_sid

    assert users("alice").fetch().sid == user.sid
    assert users(user.sid).fetch().identity == "alice"

    updated = users(user.sid).update(friendly_name="Alice B.")
    assert updated.friendly_name == "Alice B."

    users.create(identity="bob")
    identities = [u.identity for u in users.stream(page_size=1)]
    assert identities == ["alice", "bob"]

    with pytest.raises(TwilioRestException) as err:
        users.create(identity="alice")
    assert (err.value.status, err.value.code) == (409, 50201)

    assert users("bob").delete() is True
    assert [u.identity for u in users.list()] == ["alice"]


# --- channels -------------------------------------------------------------------------------

def test_channels_crud_and_fetch_by_unique_name(client, service):
    channels = chat(client).services(service.sid).channels
    ch = channels.create(friendly_name="General", unique_name="general",
                         attributes=json.dumps({"topic": "all"}))
    assert ch.sid.startswith("CH") and ch.type == "public" and ch.created_by == "system"
    assert ch.url.endswith(f"/Channels/{ch.sid}")
    priv = channels.create(friendly_name="Secret", type="private")
    assert priv.type == "private"

    assert channels("general").fetch().sid == ch.sid
    assert channels(ch.sid).fetch().unique_name == "general"

    updated = channels("general").update(friendly_name="Town square", attributes=json.dumps({"x": 1}))
    assert updated.friendly_name == "Town square" and json.loads(updated.attributes) == {"x": 1}

    assert {c.sid for c in channels.list()} == {ch.sid, priv.sid}
    assert [c.sid for c in channels.list(type=["private"])] == [priv.sid]

    assert channels(priv.sid).delete() is True
    assert [c.sid for c in channels.list()] == [ch.sid]


def test_channel_errors(client, service):
    channels = chat(client).services(service.sid).channels
    channels.create(unique_name="taken")

    with pytest.raises(TwilioRestException) as err:
        channels("CH" + "0" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 50300)

    with pytest.raises(TwilioRestException) as err:
        channels("no-such-name").fetch()
    assert (err.value.status, err.value.code) == (404, 50300)

    with pytest.raises(TwilioRestException) as err:
        channels.create(unique_name="taken")
    assert (err.value.status, err.value.code) == (409, 50307)

    with pytest.raises(TwilioRestException) as err:
        channels.create(friendly_name="bad", attributes="{not json")
    assert (err.value.status, err.value.code) == (400, 50304)
    assert [c.unique_name for c in channels.list()] == ["taken"]


# --- members --------------------------------------------------------------------------------

def test_members_crud_and_fetch_by_identity(client, service):
    ch = chat(client).services(service.sid).channels.create(unique_name="room")
    members = chat(client).services(service.sid).channels(ch.sid).members
    m = members.create(identity="alice", attributes=json.dumps({"seat": 1}))
    assert m.sid.startswith("MB") and m.identity == "alice"
    assert m.role_sid == service.default_channel_role_sid
    # Adding a member creates the user.
    assert chat(client).services(service.sid).users("alice").fetch().joined_channels_count == 1

    assert members("alice").fetch().sid == m.sid
    assert members(m.sid).fetch().identity == "alice"

    updated = members("alice").update(last_consumed_message_index=0)
    assert updated.last_consumed_message_index == 0

    with pytest.raises(TwilioRestException) as err:
        members.create(identity="alice")
    assert (err.value.status, err.value.code) == (409, 50404)

    members.create(identity="bob")
    assert [x.identity for x in members.list(identity=["bob"])] == ["bob"]
    assert chat(client).services(service.sid).channels(ch.sid).fetch().members_count == 2

    assert members("bob").delete() is True
    assert [x.identity for x in members.list()] == ["alice"]


# --- messages -------------------------------------------------------------------------------

def test_messages_crud_and_paging_through_hundreds(client, service):
    ch = chat(client).services(service.sid).channels.create(unique_name="busy")
    messages = chat(client).services(service.sid).channels(ch.sid).messages
    sent = [messages.create(body=f"message {i}", from_="alice") for i in range(260)]
    assert [m.index for m in sent] == list(range(260))
    assert sent[0]._from == "alice" and sent[0].to == ch.sid

    streamed = list(messages.stream(page_size=37))
    assert [m.index for m in streamed] == list(range(260))
    assert [m.body for m in streamed] == [f"message {i}" for i in range(260)]
    newest_first = list(messages.stream(order="desc", page_size=50, limit=60))
    assert [m.index for m in newest_first] == list(range(259, 199, -1))

    system = messages.create(body="from nobody")
    assert system._from == "system"

    fetched = messages(sent[5].sid).fetch()
    assert fetched.body == "message 5"
    edited = messages(sent[5].sid).update(body="edited", attributes=json.dumps({"e": True}))
    assert edited.body == "edited" and edited.was_edited is True
    assert messages(sent[5].sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        messages(sent[5].sid).fetch()
    assert err.value.status == 404

    with pytest.raises(TwilioRestException) as err:
        messages.create(body="x" * (32 * 1024 + 1))
    assert (err.value.status, err.value.code) == (400, 50504)

    with pytest.raises(TwilioRestException) as err:
        messages.create(body="hi", attributes="[unclosed")
    assert (err.value.status, err.value.code) == (400, 50304)


def test_message_dates_can_be_set(client, service):
    ch = chat(client).services(service.sid).channels.create()
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    msg = chat(client).services(service.sid).channels(ch.sid).messages.create(body="old", date_created=when)
    assert msg.date_created == when


# --- invites --------------------------------------------------------------------------------

def test_invites_crud(client, service):
    ch = chat(client).services(service.sid).channels.create(type="private", unique_name="vip")
    invites = chat(client).services(service.sid).channels(ch.sid).invites
    inv = invites.create(identity="carol")
    assert inv.sid.startswith("IN") and inv.identity == "carol"
    assert invites(inv.sid).fetch().identity == "carol"
    assert [i.sid for i in invites.list(identity=["carol"])] == [inv.sid]
    with pytest.raises(TwilioRestException) as err:
        invites.create(identity="carol")
    assert err.value.status == 409
    assert invites(inv.sid).delete() is True
    assert invites.list() == []


# --- user channels --------------------------------------------------------------------------

def test_user_channels(client, service):
    svc = chat(client).services(service.sid)
    ch = svc.channels.create(unique_name="uc")
    svc.channels(ch.sid).members.create(identity="dave")
    for i in range(3):
        svc.channels(ch.sid).messages.create(body=str(i))
    user_channels = svc.users("dave").user_channels
    listed = user_channels.list()
    assert [u.channel_sid for u in listed] == [ch.sid]
    assert listed[0].status == "joined"

    updated = user_channels(ch.sid).update(last_consumed_message_index=0, notification_level="muted")
    assert updated.last_consumed_message_index == 0
    assert updated.unread_messages_count == 2
    assert updated.notification_level == "muted"
    assert user_channels(ch.sid).fetch().member_sid.startswith("MB")

    assert user_channels(ch.sid).delete() is True
    assert user_channels.list() == []


# --- credentials and webhooks ---------------------------------------------------------------

def test_credentials_crud(client):
    creds = client.chat.v2.credentials
    c = creds.create(type="fcm", friendly_name="push", secret="s3cret")
    assert c.sid.startswith("CR") and c.type == "fcm"
    assert creds(c.sid).fetch().friendly_name == "push"
    assert creds(c.sid).update(friendly_name="push2").friendly_name == "push2"
    assert c.sid in [x.sid for x in creds.list()]
    assert creds(c.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        creds(c.sid).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_channel_webhooks_crud(client, service):
    ch = chat(client).services(service.sid).channels.create()
    hooks = chat(client).services(service.sid).channels(ch.sid).webhooks
    w = hooks.create(type="webhook", configuration_url="https://example.invalid/hook",
                     configuration_method="POST", configuration_filters=["onMessageSent"])
    assert w.sid.startswith("WH") and w.configuration["url"] == "https://example.invalid/hook"
    assert w.configuration["filters"] == ["onMessageSent"]
    assert hooks(w.sid).fetch().type == "webhook"
    assert hooks(w.sid).update(configuration_retry_count=2).configuration["retry_count"] == 2
    assert [x.sid for x in hooks.list()] == [w.sid]
    assert hooks(w.sid).delete() is True
    assert hooks.list() == []


# --- authentication -------------------------------------------------------------------------

def test_api_key_credentials_work(node):
    keyed = client_for(node, API_KEY_SID, API_KEY_SECRET)
    svc = keyed.chat.v2.services.create(friendly_name="via key")
    assert keyed.chat.v2.services(svc.sid).fetch().friendly_name == "via key"


def test_bad_credentials_are_refused(node):
    bad = client_for(node, password="wrong")
    with pytest.raises(TwilioRestException) as err:
        bad.chat.v2.services.create(friendly_name="nope")
    assert (err.value.status, err.value.code) == (401, 20003)


def test_webhook_enabled_header_is_accepted(client, service):
    ch = chat(client).services(service.sid).channels.create(x_twilio_webhook_enabled="true")
    msg = chat(client).services(service.sid).channels(ch.sid).messages.create(
        body="hi", x_twilio_webhook_enabled="false")
    assert msg.index == 0


def test_pages_lead_forward_and_back(client, service):
    channels = client.chat.v2.services(service.sid).channels
    for i in range(5):
        channels.create(unique_name=f"paging-{i}")
    first = channels.page(page_size=2)
    assert first.previous_page() is None
    second = first.next_page()
    assert [c.unique_name for c in second] == ["paging-2", "paging-3"]
    back = second.previous_page()
    assert [c.unique_name for c in back] == [c.unique_name for c in first]
