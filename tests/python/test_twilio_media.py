"""Media through the official helper library: uploads to the media API, media messages created
and read with `twilio`, content downloads, who may read them, the size limit, a restart, and a
cluster sharing one S3 bucket (an `s3s-fs` server and a `redis-server` started here on free
ports)."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import (
    ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, Node, client_for, confab_binary,
)
from test_twilio_tokens import twilio_token

LIMIT = 1024 * 1024
PNG = bytes([0x89]) + b"PNG\r\n\x1a\n" + bytes(range(256)) * 64


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what):
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def upload(client, node, service_sid, body, content_type, filename=None):
    """POST the bytes to the media API with the helper library's own HTTP client."""
    url = f"{node.url}/v1/Services/{service_sid}/Media"
    params = {"Filename": filename} if filename else None
    return client.request("POST", url, params=params, data=body, headers={"Content-Type": content_type})


def fetch_content(url, auth=None, token=None):
    headers = {"X-Twilio-Token": token} if token else {}
    return requests.get(url, auth=auth, headers=headers, timeout=30)


def media_message(client, service_sid, channel_sid, media_sid, author="alice"):
    return client.chat.v2.services(service_sid).channels(channel_sid).messages.create(
        media_sid=media_sid, from_=author
    )


@pytest.fixture(scope="module")
def media_node():
    with tempfile.TemporaryDirectory() as data_dir:
        n = Node(data_dir, CONFAB_MEDIA_MAX_UPLOAD_BYTES=str(LIMIT))
        yield n
        n.stop()


def test_a_media_message_round_trips_and_members_only_read_it(media_node):
    client = client_for(media_node)
    service = client.chat.v2.services.create(friendly_name="media")
    chat = client.chat.v2.services(service.sid)
    room = chat.channels.create(unique_name="room")
    other = chat.channels.create(unique_name="other")
    chat.channels(room.sid).members.create(identity="alice")
    chat.channels(room.sid).members.create(identity="bob")
    chat.channels(other.sid).members.create(identity="mallory")

    response = upload(client, media_node, service.sid, PNG, "image/png", "cat.png")
    assert response.status_code == 201, response.text
    media = json.loads(response.text)
    assert media["sid"].startswith("ME")
    assert (media["size"], media["content_type"], media["filename"]) == (len(PNG), "image/png", "cat.png")
    assert media["service_sid"] == service.sid and media["message_sid"] is None

    message = media_message(client, service.sid, room.sid, media["sid"])
    assert message.type == "media"
    assert message.media == {
        "sid": media["sid"], "size": len(PNG), "content_type": "image/png", "filename": "cat.png",
    }
    fetched = chat.channels(room.sid).messages(message.sid).fetch()
    assert fetched.type == "media" and fetched.media["sid"] == media["sid"]
    listed = chat.channels(room.sid).messages.list()
    assert [m.media["sid"] for m in listed if m.type == "media"] == [media["sid"]]

    record = json.loads(client.request("GET", media["url"]).text)
    assert record["message_sid"] == message.sid and record["channel_sid"] == room.sid
    content = fetch_content(record["links"]["content"], auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert content.status_code == 200 and content.content == PNG
    # The temporary URL needs no credentials.
    assert fetch_content(record["links"]["content_direct_temporary"]).content == PNG
    # A member of the channel reads it with a user token; a member of another channel is refused.
    bob = twilio_token(service.sid, "bob")
    assert fetch_content(record["links"]["content"], token=bob).content == PNG
    mallory = twilio_token(service.sid, "mallory")
    refused = fetch_content(record["links"]["content"], token=mallory)
    assert refused.status_code == 404 and refused.json()["code"] == 20404
    assert fetch_content(record["links"]["content"]).status_code == 401

    # A media is attached once.
    with pytest.raises(Exception) as again:
        media_message(client, service.sid, other.sid, media["sid"], author="mallory")
    assert getattr(again.value, "code", None) == 50511


def test_an_oversized_upload_is_refused_with_twilios_code_and_stores_nothing(media_node):
    client = client_for(media_node)
    service = client.chat.v2.services.create(friendly_name="big")
    response = upload(client, media_node, service.sid, b"\0" * (LIMIT + 1), "application/pdf", "big.pdf")
    assert response.status_code == 413, response.text
    assert json.loads(response.text)["code"] == 50512
    fitting = upload(client, media_node, service.sid, b"\0" * LIMIT, "application/pdf", "fits.pdf")
    assert fitting.status_code == 201, fitting.text


def test_a_restart_keeps_the_media():
    with tempfile.TemporaryDirectory() as data_dir:
        node = Node(data_dir)
        client = client_for(node)
        service = client.chat.v2.services.create(friendly_name="kept")
        media = json.loads(upload(client, node, service.sid, PNG, "image/png").text)
        node.stop()
        restarted = Node(data_dir)
        try:
            url = f"{restarted.url}/v1/Services/{service.sid}/Media/{media['sid']}/Content"
            assert fetch_content(url, auth=(ACCOUNT_SID, AUTH_TOKEN)).content == PNG
        finally:
            restarted.stop()


@pytest.fixture
def redis_and_s3():
    s3s = os.environ.get("S3S_FS") or shutil.which("s3s-fs")
    redis = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not s3s or not redis:
        raise RuntimeError("the cluster test needs s3s-fs and redis-server (scripts/test.sh installs both)")
    with tempfile.TemporaryDirectory() as root:
        os.mkdir(os.path.join(root, "media"))
        s3_port, redis_port = free_port(), free_port()
        s3 = subprocess.Popen(
            [s3s, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", "pytest-access",
             "--secret-key", "pytest-secret-key", root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        rd = subprocess.Popen(
            [redis, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--dir", root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(s3_port, s3, "s3s-fs")
            wait_for_port(redis_port, rd, "redis-server")
            yield {
                "CONFAB_REDIS_URL": f"redis://127.0.0.1:{redis_port}/",
                "CONFAB_MEDIA_BACKEND": "s3",
                "CONFAB_MEDIA_S3_BUCKET": "media",
                "CONFAB_MEDIA_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
                "CONFAB_MEDIA_S3_ACCESS_KEY_ID": "pytest-access",
                "CONFAB_MEDIA_S3_SECRET_ACCESS_KEY": "pytest-secret-key",
                "CONFAB_MEDIA_S3_PATH_STYLE": "true",
            }
        finally:
            for proc in (s3, rd):
                proc.terminate()
                proc.wait(timeout=10)


def test_a_cluster_on_one_bucket_serves_media_from_any_node(redis_and_s3):
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = Node(a_dir, CONFAB_NODE_ID="py-a", **redis_and_s3)
        b = Node(b_dir, CONFAB_NODE_ID="py-b", **redis_and_s3)
        try:
            client_a, client_b = client_for(a), client_for(b)
            service = client_a.chat.v2.services.create(friendly_name="cluster media")
            room = client_a.chat.v2.services(service.sid).channels.create(unique_name="room")
            media = json.loads(upload(client_a, a, service.sid, PNG, "image/png", "cat.png").text)
            message = media_message(client_a, service.sid, room.sid, media["sid"])
            # The other node reads the message and the media, and serves the bytes.
            seen = client_b.chat.v2.services(service.sid).channels(room.sid).messages(message.sid).fetch()
            assert seen.type == "media" and seen.media["sid"] == media["sid"]
            url = f"{b.url}/v1/Services/{service.sid}/Media/{media['sid']}/Content"
            assert fetch_content(url, auth=(ACCOUNT_SID, AUTH_TOKEN)).content == PNG
        finally:
            a.stop()
            b.stop()


def test_confab_chat_sends_a_file(media_node, tmp_path):
    """`confab chat`'s `/send PATH` uploads the file and sends it as a media message."""
    client = client_for(media_node)
    service = client.chat.v2.services.create(friendly_name="terminal")
    picture = tmp_path / "snap.png"
    picture.write_bytes(PNG)
    env = dict(os.environ, CONFAB_ACCOUNT_SID=ACCOUNT_SID, CONFAB_AUTH_TOKEN=AUTH_TOKEN,
               CONFAB_API_KEY_SID=API_KEY_SID, CONFAB_API_KEY_SECRET=API_KEY_SECRET, RUST_LOG="warn")
    chat = subprocess.run(
        [confab_binary(), "chat", "--identity", "dave", "--service", service.sid, "--channel", "files",
         "--url", media_node.url],
        input=f"/send {picture}\n", capture_output=True, text=True, env=env, timeout=60,
    )
    assert chat.returncode == 0, chat.stderr
    messages = client.chat.v2.services(service.sid).channels("files").messages.list()
    assert [(m.type, m._from, m.media["filename"], m.media["content_type"]) for m in messages] == [
        ("media", "dave", "snap.png", "image/png")
    ]
    url = f"{media_node.url}/v1/Services/{service.sid}/Media/{messages[0].media['sid']}/Content"
    assert fetch_content(url, auth=(ACCOUNT_SID, AUTH_TOKEN)).content == PNG
