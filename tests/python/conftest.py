"""Fixtures: a real `confab` node per test module, and the official Twilio client pointed at it."""

import os
import pathlib
import re
import subprocess
import tempfile

import pytest
from twilio.rest import Client

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "python-test-token"
API_KEY_SID = "SK" + "cd" * 16
API_KEY_SECRET = "python-test-secret"


def confab_binary():
    path = os.environ.get("CONFAB_BIN") or str(ROOT / "target" / "debug" / "confab")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build -p confab-server` or set CONFAB_BIN")
    return path


class Node:
    """A `confab serve` process on free loopback ports with its own data directory."""

    def __init__(self, data_dir, **settings):
        """`settings` are more `CONFAB_*` variables (`CONFAB_REDIS_URL=...`)."""
        env = dict(os.environ)
        env.update(
            CONFAB_ACCOUNT_SID=ACCOUNT_SID,
            CONFAB_AUTH_TOKEN=AUTH_TOKEN,
            CONFAB_API_KEY_SID=API_KEY_SID,
            CONFAB_API_KEY_SECRET=API_KEY_SECRET,
            RUST_LOG="warn",
        )
        env.update(settings)
        self.proc = subprocess.Popen(
            [confab_binary(), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
             "--data-dir", data_dir],
            stdout=subprocess.PIPE, env=env, text=True,
        )
        for line in self.proc.stdout:
            match = re.match(r"Confab is serving .* at (\S+)/v2", line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise RuntimeError("confab exited before serving")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def node():
    with tempfile.TemporaryDirectory() as data_dir:
        n = Node(data_dir)
        yield n
        n.stop()


def client_for(node, username=ACCOUNT_SID, password=AUTH_TOKEN):
    client = Client(username, password, account_sid=ACCOUNT_SID)
    client.chat.base_url = node.url
    return client


@pytest.fixture
def client(node):
    return client_for(node)


@pytest.fixture
def service(client):
    svc = client.chat.v2.services.create(friendly_name="pytest")
    yield svc
    try:
        client.chat.v2.services(svc.sid).delete()
    except Exception:
        pass
