"""Webhook secrets and signatures (API.md 13).

`Egret-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, with a second
`v1=` signed by the previous secret while a rotated one is still valid. Receivers recompute
the HMAC with their secret and accept the request when any `v1=` matches (README has the
snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from core.keyformat import ALPHABET

SECRET_PREFIX = "whsec_"
SECRET_RANDOM_LENGTH = 32


def secret_generate() -> str:
    return SECRET_PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_RANDOM_LENGTH))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets_])


def verify(header: str, body: bytes, secret: str, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (used by the tests): the timestamp is recent and one of the
    `v1=` values is the HMAC of this body with `secret`."""
    parts = [part.partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in parts if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, value) for key, _, value in parts if key == "v1")
