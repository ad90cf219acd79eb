"""Quality flags: how a finding travels with its row into the archive, and how flagged values are written.

A row the mapping found something on is archived (unless a decision disposes of it) with its
flags: one per finding, as canonical JSON in the record model's ``quality`` column, which the
packager writes as ``<quality><flag .../></quality>`` in the record file. A flag names the
reason, the source column, the model fields it feeds, the disposition and a detail; a value that
could not go into XML as it is says how it is written instead (``encoding``):

* ``backslash-u``: text holding characters XML 1.0 forbids. Every ``\\`` is doubled and every
  forbidden character becomes ``\\uXXXX`` (four upper-case hex digits; all of them lie in the
  BMP). :func:`unescape` gives the source text back exactly.
* ``base64``: bytes that do not decode with the codec tried (``codec``): their base64 (RFC 4648,
  no line breaks). Decoding the base64 gives the source bytes back exactly.

A corrected value carries its original in ``original`` (with the ``backslash-u`` escape, so
that any text fits in XML and comes back exactly).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

#: how a flagged value is written when it is not the source value as it is
BACKSLASH_U = "backslash-u"
BASE64 = "base64"
#: what a flag may say; the packager writes them as attributes in this order (record.xsd)
KEYS = (
    "reason",
    "column",
    "fields",
    "disposition",
    "detail",
    "encoding",
    "codec",
    "original",
    "reference",
    "decided_by",
)
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|\\\\")
_ESCAPED = re.compile(r"\\(\\|u([0-9A-F]{4}))")


def escape(text: str) -> str:
    """``text`` with ``\\`` doubled and every character XML 1.0 forbids as ``\\uXXXX`` (reversible)."""
    return _FORBIDDEN.sub(lambda m: "\\\\" if m.group() == "\\" else f"\\u{ord(m.group()):04X}", text)


def unescape(text: str) -> str:
    """The inverse of :func:`escape`."""
    return _ESCAPED.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(2), 16)), text)


def as_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def from_base64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def flag(reason: str, **values: Any) -> dict[str, Any]:
    """One flag; keys without a value are left out."""
    out = {"reason": reason}
    out.update({k: v for k, v in values.items() if v not in (None, "", [], ())})
    unknown = set(out) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown flag keys {sorted(unknown)}")
    return out


def to_json(flags: list[Mapping[str, Any]]) -> str:
    """The canonical JSON of a row's flags (sorted keys, no spaces): the same flags, the same text."""
    return json.dumps(list(flags), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str | None) -> list[dict[str, Any]]:
    return json.loads(text) if text else []


def canonical(flags: list[Mapping[str, Any]]) -> str:
    """One comparable text of a row's flags, whether they came from JSON or from a record file's XML."""
    parts = []
    for f in flags:
        items = []
        for key in KEYS:
            value = f.get(key)
            if value in (None, "", [], ()):
                continue
            items.append(f"{key}={' '.join(value) if isinstance(value, list | tuple) else value}")
        parts.append(";".join(items))
    return " | ".join(parts)
