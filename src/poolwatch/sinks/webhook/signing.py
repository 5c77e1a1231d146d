"""Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver's proof of origin.

`webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. The timestamp is the
attempt's, so a retry hours later is not refused as a replay; id and body never change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode('ascii')}"


def headers(key: bytes | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three `webhook-*` headers; the signature only when a key is configured."""
    out = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        out["webhook-signature"] = signature(key, msg_id, timestamp, body)
    return out


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: `whsec_` + base64 of at least 24 bytes."""
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected a secret like whsec_<base64>") from None
    if len(key) < 24:
        raise ValueError("expected a secret like whsec_<base64> of at least 24 bytes")
    return key
