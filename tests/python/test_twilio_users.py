"""Users through the official helper library: a user's channels list the ones it is invited to
(`status` `invited`) after the joined ones, and `is_online` / `is_notifiable` follow the
service's `reachability_enabled`."""

import asyncio
import json
import time

from websockets.asyncio.client import connect

from test_twilio_tokens import twilio_token


def test_user_channels_list_joined_then_invited_channels(client, service):
    chat = client.chat.v2.services(service.sid)
    joined = [chat.channels.create(unique_name=f"joined-{i}") for i in range(2)]
    invited = [chat.channels.create(unique_name=f"invited-{i}") for i in range(2)]
    for channel in joined:
        chat.channels(channel.sid).members.create(identity="bob")
    for channel in invited:
        chat.channels(channel.sid).invites.create(identity="bob")

    # One per page: the paging walks the memberships, then the invites, each once.
    listed = chat.users("bob").user_channels.list(page_size=1)
    assert [(c.channel_sid, c.status) for c in listed] == (
        [(c.sid, "joined") for c in joined] + [(c.sid, "invited") for c in invited]
    )
    pending = listed[-1]
    assert pending.member_sid is None and pending.unread_messages_count is None
    assert pending.links["member"] is None
    fetched = chat.users("bob").user_channels(invited[0].sid).fetch()
    assert fetched.status == "invited"
    # Joining accepts the invite: the channel is listed as joined.
    chat.channels(invited[0].sid).members.create(identity="bob")
    statuses = {c.channel_sid: c.status for c in chat.users("bob").user_channels.list()}
    assert statuses[invited[0].sid] == "joined" and statuses[invited[1].sid] == "invited"


async def online_while_connected(node, service_sid, identity, check):
    """Runs `check()` while `identity` has a realtime session open; returns its result."""
    url = node.url.replace("http://", "ws://") + "/v2/realtime"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "init", "id": 1, "token": twilio_token(service_sid, identity)}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if frame.get("type") == "reply" and frame.get("id") == 1:
                assert frame["ok"], frame
                return frame["result"], await asyncio.to_thread(check)


def test_is_online_follows_reachability(node, client):
    tracked = client.chat.v2.services.create(friendly_name="tracked")
    client.chat.v2.services(tracked.sid).update(reachability_enabled=True)
    untracked = client.chat.v2.services.create(friendly_name="untracked")
    for svc in (tracked, untracked):
        client.chat.v2.services(svc.sid).users.create(identity="carol")

    def carol(svc):
        return lambda: client.chat.v2.services(svc.sid).users("carol").fetch()

    init, seen = asyncio.run(online_while_connected(node, tracked.sid, "carol", carol(tracked)))
    assert init["reachabilityEnabled"] is True and init["user"]["online"] is True
    assert (seen.is_online, seen.is_notifiable) == (True, False)
    # The session's end reaches the node a moment after the socket closes.
    for _ in range(100):
        offline = carol(tracked)()
        if offline.is_online is False:
            break
        time.sleep(0.1)
    assert (offline.is_online, offline.is_notifiable) == (False, False)

    init, seen = asyncio.run(online_while_connected(node, untracked.sid, "carol", carol(untracked)))
    assert init["reachabilityEnabled"] is False and init["user"]["online"] is None
    assert (seen.is_online, seen.is_notifiable) == (None, None)
