"""A generic webhook, signed per the Standard Webhooks specification.

Each event carries ``webhook-id`` (the outbox event id, stable across retries, so a receiver can
drop duplicates), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, where the key is the base64 part of
a ``whsec_...`` secret (any other secret string is used as UTF-8 bytes). The body is::

    {"type": "memdiag.finding.v1", "timestamp": "...",
     "data": {"action": "trigger|update|resolve", "test": false, "first_seen": "...", "finding": {...}}}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from memdiag.delivery.sink import Context, option, rfc3339

EVENT_TYPE = "memdiag.finding.v1"


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError:
            raise ValueError("option 'secret' starts with whsec_ but the rest is not base64") from None
    return secret.encode("utf-8")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookSink:
    style = "alert"
    default_repeat = "change"  # a receiver hears new, changed and resolved findings
    secret_options = ("secret",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True)
        secret = option(options, "secret", str)
        self.key = signing_key(secret) if secret else None
        self.headers = {str(k): str(v) for k, v in option(options, "headers", dict, {}).items()}

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        now = time.time()
        body = json.dumps({
            "type": EVENT_TYPE,
            "timestamp": rfc3339(now),
            "data": {"action": action, "test": ctx.test, "first_seen": ctx.first_seen, "finding": finding},
        }, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        ts = int(now)
        headers = {**self.headers, "Content-Type": "application/json", "webhook-id": ctx.event_id,
                   "webhook-timestamp": str(ts)}
        if self.key is not None:
            headers["webhook-signature"] = sign(self.key, ctx.event_id, ts, body)
        ctx.http.request("POST", self.url, headers=headers, data=body)
        return None
