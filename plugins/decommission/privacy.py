"""Keyed hashing, so identifiers can be compared and listed without being shown."""

from __future__ import annotations

import hashlib
import hmac
import os

#: Used only when no key is configured (the demo). Production sets DECOMMISSION_HASH_KEY.
_DEMO_KEY = "decommission-demo-key-not-secret"


def hash_key() -> bytes:
    return os.environ.get("DECOMMISSION_HASH_KEY", _DEMO_KEY).encode()


def keyed_hash(value: str | bytes | None, *, key: bytes | None = None) -> str:
    """Return a short, stable HMAC-SHA256 of ``value`` (hex, 16 chars); ``""`` for None."""
    if value is None:
        return ""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return hmac.new(key or hash_key(), data, hashlib.sha256).hexdigest()[:16]
