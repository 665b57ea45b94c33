"""Access tokens minted by the official Twilio helper library open realtime sessions on Confab."""

import asyncio
import json

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID


def twilio_token(service_sid, identity, secret=API_KEY_SECRET, ttl=3600):
    token = AccessToken(ACCOUNT_SID, API_KEY_SID, secret, identity=identity, ttl=ttl)
    token.add_grant(ChatGrant(service_sid=service_sid))
    return token.to_jwt()


async def init_with(node, token):
    """Sends `init`; returns (reply, close code or None)."""
    url = node.url.replace("http://", "ws://") + "/v2/realtime"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "init", "id": 1, "token": token}))
        reply = None
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if frame.get("type") == "reply" and frame.get("id") == 1:
                    reply = frame
                    if reply["ok"]:
                        return reply, None
        except ConnectionClosed as closed:
            return reply, closed.rcvd.code if closed.rcvd else None


def test_helper_library_token_is_accepted(node, service):
    reply, _ = asyncio.run(init_with(node, twilio_token(service.sid, "pyuser")))
    assert reply["ok"] is True
    assert reply["result"]["identity"] == "pyuser"


def test_forged_helper_library_token_is_refused(node, service):
    reply, code = asyncio.run(init_with(node, twilio_token(service.sid, "mallory", secret="wrong")))
    assert reply["ok"] is False and reply["error"]["code"] == 51007
    assert code == 4001


def test_wrong_service_token_is_refused(node):
    reply, code = asyncio.run(init_with(node, twilio_token("IS" + "0" * 32, "lost")))
    assert reply["ok"] is False
    assert code == 4001
