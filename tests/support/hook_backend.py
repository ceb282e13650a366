#!/usr/bin/env python3
"""A small app backend for the hook and webhook tests (Python's http.server).

  hook_backend.py PORT [--secret-file F] [--fail-first N]

POST /hook answers a relay hook by the words of the room's name (split on
"-"): allow, deny (a long reason with control characters), denypub
(publishes refused, joins allowed), replace (new data), bigdata (data over
the relay's default max_message_bytes, in an answer under its answer
limit), counter (data numbered by request), slow (answers after 3 s), err
(HTTP 500), garbage (not JSON), huge (2 MB), noallow (JSON without
"allow"). Rooms without any of these words are allowed.

POST /webhook records a control-plane webhook after checking its
Meridian-Signature (t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>)
with the secret in --secret-file; a bad signature gets 401. The first
--fail-first N webhook requests get 503 instead, to exercise retries.

GET /stats returns {"connections": accepted TCP connections, "hooks": every
hook request body, "webhooks": every accepted webhook body, "bad_signatures":
n, "webhook_requests": n, "webhook_attempts": the Meridian-Webhook-Id of every
webhook request, accepted or not}. Keep-alive (HTTP/1.1) is on, so "connections"
shows whether a client reuses them.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"connections": 0, "hooks": [], "webhooks": [], "bad_signatures": 0,
         "webhook_requests": 0, "webhook_attempts": []}
COUNTER = [0]
ARGS = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/stats":
            self.reply(404, "{}")
            return
        with LOCK:
            self.reply(200, json.dumps(STATS))

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/webhook":
            self.webhook(body)
        else:
            self.hook(body)

    def hook(self, body):
        req = json.loads(body)
        with LOCK:
            STATS["hooks"].append(req)
            COUNTER[0] += 1
            count = COUNTER[0]
        words = req.get("room", "").split("-")
        if "slow" in words:
            time.sleep(3)
            self.reply(200, '{"allow":true}')
        elif "denypub" in words and req["hook"] == "publish":
            self.reply(200, json.dumps({"allow": False, "reason": "no spam"}))
        elif "deny" in words:
            reason = "no\nentry\x07 for " + req["user"] + " " + "é" * 300
            self.reply(200, json.dumps({"allow": False, "reason": reason}))
        elif "replace" in words:
            self.reply(200, json.dumps({"allow": True, "data": {"replaced": req.get("data")}}))
        elif "bigdata" in words:
            self.reply(200, json.dumps({"allow": True, "data": "x" * 66000}))
        elif "counter" in words:
            self.reply(200, json.dumps({"allow": True, "data": {"n": count}}))
        elif "err" in words:
            self.reply(500, '{"allow":true}')
        elif "garbage" in words:
            self.reply(200, "<html>not json", "text/html")
        elif "huge" in words:
            self.reply(200, '{"allow":true,"pad":"' + "x" * (2 << 20) + '"}')
        elif "noallow" in words:
            self.reply(200, '{"reason":"allow is missing"}')
        else:
            self.reply(200, '{"allow":true}')

    def webhook(self, body):
        with LOCK:
            STATS["webhook_requests"] += 1
            STATS["webhook_attempts"].append(self.headers.get("Meridian-Webhook-Id"))
            failing = STATS["webhook_requests"] <= ARGS.fail_first
        if failing:
            self.reply(503, '{"error":"not now"}')
            return
        secret = open(ARGS.secret_file, "rb").read().strip() if ARGS.secret_file else b""
        sig = self.headers.get("Meridian-Signature", "")
        parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
        t = parts.get("t", "")
        want = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = t.isdigit() and abs(time.time() - int(t)) < 300
        if not fresh or not hmac.compare_digest(want, parts.get("v1", "")):
            with LOCK:
                STATS["bad_signatures"] += 1
            self.reply(401, '{"error":"bad signature"}')
            return
        with LOCK:
            STATS["webhooks"].append({"id": self.headers.get("Meridian-Webhook-Id"),
                                      "body": json.loads(body)})
        self.reply(200, "{}")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--secret-file")
    p.add_argument("--fail-first", type=int, default=0)
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
