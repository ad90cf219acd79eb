"""Keyed hashing, so identifiers can be compared and listed without being shown.

The key must be secret: with a known key, a personnummer's digest is recovered in seconds from
its birth date. It comes from ``DECOMMISSION_HASH_KEY`` (hex, or text) or from the file
``DECOMMISSION_HASH_KEY_FILE`` names (a mounted secret, as docker-compose's init writes one), and
must hold at least :data:`MIN_KEY_BYTES` bytes. Without one, only the demo and the tests
(``DECOMMISSION_ALLOW_DEMO_KEY=1``) run, on a public demo key that every report they write names.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from decommission.errors import DecommissionError

#: public, so never a protection: used only where DECOMMISSION_ALLOW_DEMO_KEY=1 (demo, tests)
_DEMO_KEY = b"decommission-demo-key-not-secret"
MIN_KEY_BYTES = 32


class HashKeyError(DecommissionError):
    """No secret hash key: keyed hashes would not protect identifiers."""


@dataclass(frozen=True)
class HashKey:
    value: bytes
    demo: bool

    @property
    def id(self) -> str:
        """A name for the key that reveals nothing of it, so reports say which key made their hashes."""
        return hmac.new(self.value, b"decommission hash key id", hashlib.sha256).hexdigest()[:12]

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "demo": self.demo}


def current_key() -> HashKey:
    """The configured key (read again when the settings change, e.g. between tests)."""
    return _load(
        os.environ.get("DECOMMISSION_HASH_KEY", ""),
        os.environ.get("DECOMMISSION_HASH_KEY_FILE", ""),
        os.environ.get("DECOMMISSION_ALLOW_DEMO_KEY", "") == "1",
    )


@lru_cache(maxsize=8)
def _load(text: str, file: str, allow_demo: bool) -> HashKey:
    if text:
        value = _decode(text)
    elif file:
        try:
            value = _decode(Path(file).read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise HashKeyError(f"the hash key file {file} cannot be read ({type(exc).__name__})") from exc
    elif allow_demo:
        return HashKey(_DEMO_KEY, demo=True)
    else:
        raise HashKeyError(
            "no hash key: set DECOMMISSION_HASH_KEY_FILE to a secret file (or DECOMMISSION_HASH_KEY) holding at "
            f"least {MIN_KEY_BYTES} random bytes, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    if len(value) < MIN_KEY_BYTES:
        raise HashKeyError(f"the hash key holds {len(value)} bytes; at least {MIN_KEY_BYTES} random bytes are needed")
    return HashKey(value, demo=False)


def _decode(text: str) -> bytes:
    """Hex when it is hex (what the generators print), the text's bytes otherwise."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()


def hash_key() -> bytes:
    return current_key().value


def keyed_hash(value: str | bytes | None, *, key: bytes | None = None) -> str:
    """Return a short, stable HMAC-SHA256 of ``value`` (hex, 16 chars); ``""`` for None."""
    if value is None:
        return ""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return hmac.new(key or hash_key(), data, hashlib.sha256).hexdigest()[:16]
