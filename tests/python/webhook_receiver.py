"""A webhook receiver as a Twilio customer writes one: a real HTTP server that checks every
request with the official `twilio` library's RequestValidator and answers 403 to a request whose
signature does not hold.

The integration tests (tests/it/webhooks.rs) start it as a process:

    python webhook_receiver.py --token AUTH_TOKEN [--port PORT]

It prints the port it listens on (127.0.0.1 only) as its first line. Besides the webhook paths
(any path not starting with `/_`), it has three control endpoints the tests use, unsigned:

- `GET /_requests`: every webhook request received, in order, as JSON: method, path, params
  (the form or query parameters, as a list of pairs), `valid` (the validator's verdict) and the
  `I-Twilio-Idempotency-Token` header.
- `POST /_behaviour` with a JSON body `{"path": "/pre", "status": 403, "body": "...",
  "delay_ms": 0, "when": {"ChannelSid": "CH..."}}`: how that path answers from now on, for
  requests whose parameters hold every pair of `when` (optional); the latest matching rule wins,
  and without one a path answers 200 with an empty body.
- `POST /_forward`: replays a request given as JSON `{"path", "params", "signature"}` to itself
  (the tests use it to send a tampered copy of a real request).
"""

import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator


class State:
    def __init__(self, token):
        self.validator = RequestValidator(token)
        self.lock = threading.Lock()
        self.requests = []
        self.behaviour = {}


def make_handler(state, port):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status, body=b"", content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _hook(self, method):
            raw = self._body()
            url = "http://127.0.0.1:%d%s" % (port, self.path)
            if method == "POST":
                pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
                params = dict(pairs)
            else:
                query = urllib.parse.urlsplit(self.path).query
                pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
                params = {}
            signature = self.headers.get("X-Twilio-Signature", "")
            valid = state.validator.validate(url, params, signature)
            path = urllib.parse.urlsplit(self.path).path
            with state.lock:
                state.requests.append(
                    {
                        "method": method,
                        "path": path,
                        "params": pairs,
                        "valid": valid,
                        "signature": signature,
                        "idempotency": self.headers.get("I-Twilio-Idempotency-Token"),
                        "at": time.time(),
                    }
                )
                behaviour = {}
                for rule in reversed(state.behaviour.get(path, [])):
                    when = rule.get("when", {})
                    if all(dict(pairs).get(k) == v for k, v in when.items()):
                        behaviour = dict(rule)
                        break
            if not valid:
                self._answer(403, b'{"error":"invalid signature"}')
                return
            delay = behaviour.get("delay_ms", 0)
            if delay:
                time.sleep(delay / 1000.0)
            self._answer(
                behaviour.get("status", 200), behaviour.get("body", "").encode("utf-8")
            )

        def do_GET(self):
            if self.path == "/_requests":
                with state.lock:
                    body = json.dumps(state.requests).encode("utf-8")
                self._answer(200, body)
            else:
                self._hook("GET")

        def do_POST(self):
            if self.path == "/_behaviour":
                spec = json.loads(self._body())
                with state.lock:
                    state.behaviour.setdefault(spec.pop("path"), []).append(spec)
                self._answer(204)
            elif self.path == "/_forward":
                spec = json.loads(self._body())
                url = "http://127.0.0.1:%d%s" % (port, spec["path"])
                params = dict(spec["params"])
                valid = state.validator.validate(url, params, spec["signature"])
                self._answer(200 if valid else 403)
            else:
                self._hook("POST")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A caller that gave up on a slow answer (the test of the pre-event timeout) closes the
        # connection first: not an error of the receiver.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    state = State(args.token)
    server = Server(("127.0.0.1", args.port), None)
    port = server.server_address[1]
    server.RequestHandlerClass = make_handler(state, port)
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
