"""The signature a receiver checks: `Parley-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`.

Each v1 is HMAC-SHA256 with an endpoint secret over `<t>.<raw body>`; a second v1 appears
while a rotated-out secret is still in its overlap window. docs/api.md has the receiver's
side in Python and Node.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify(secret: str, body: bytes, signature_header: str, *, now: float | None = None) -> bool:
    """What a receiver does (used by the tests and shown in the docs)."""
    parts = [p.split("=", 1) for p in signature_header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")
