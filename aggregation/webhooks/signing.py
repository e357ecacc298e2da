"""How a delivery is signed, and how a receiver checks it (the README shows the same).

The signed message is `<timestamp>.<raw body>`: the timestamp header is part of it, so a
captured request cannot be replayed later with a fresh timestamp, and a receiver refuses
one whose timestamp is too old.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-RichHF-Signature"
TIMESTAMP_HEADER = "X-RichHF-Timestamp"
EVENT_HEADER = "X-RichHF-Event"
DELIVERY_HEADER = "X-RichHF-Delivery"
DEFAULT_TOLERANCE_S = 300


def secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature_for(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_is_valid(
    *, secret: str, body: bytes, signature: str, timestamp: str, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(signature_for(secret=secret, timestamp=sent_at, body=body), signature)
