"""Reading the archive's answers: the JSON the protocol promises, or an error saying what came instead.

An archive (or a proxy in front of it) can answer 200 with an HTML error page, JSON cut off in
the middle, or JSON without a field the client needs. Each of these becomes an
:class:`ArchiveMalformedAnswer` worded "the archive answered <endpoint> for <package> with
<what>", never a bare ``JSONDecodeError`` or ``KeyError``. Messages give sizes, types and
positions, never the answer's content: it may hold anything.

Shared by the HTTP client (:mod:`decommission.deliver.archive`) and the receipt trigger
(:mod:`decommission.deliver.triggers`).
"""

from __future__ import annotations

import json
from typing import Any

from decommission.deliver.archive_connection import ArchiveMalformedAnswer

#: the protocol's field types, in words for errors
_TYPE_NAMES = {int: "a whole number", str: "text", list: "a list", dict: "an object", bool: "true or false"}


def malformed(where: str, subject: str, what: str) -> ArchiveMalformedAnswer:
    """Return the error for a broken answer.

    :param where: the request, e.g. ``PATCH /api/v1/packages/p-1/upload`` (never a patient key)
    :param subject: what the request was about, e.g. ``package p-1``
    :param what: what came instead of a protocol answer
    """
    return ArchiveMalformedAnswer(f"the archive answered {where} for {subject} with {what}")


def json_object(body: bytes, content_type: str, where: str, subject: str) -> dict[str, Any]:
    """Parse an answer that must be a JSON object.

    :param body: the answer's bytes
    :param content_type: its ``Content-Type`` header ("" when none), to tell an HTML page from cut JSON
    :raises ArchiveMalformedAnswer: empty, not JSON, cut, or JSON that is not an object
    """
    if not body.strip():
        raise malformed(where, subject, f"an empty body ({_media_type(content_type)})")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise malformed(where, subject, describe_unparsable(body, content_type, exc)) from None
    if not isinstance(document, dict):
        raise malformed(where, subject, f"JSON that is {_type_name(document)}, not an object")
    return document


def describe_unparsable(body: bytes, content_type: str, exc: Exception) -> str:
    """Say what an answer that is not JSON looks like: an HTML page, cut JSON, or something else."""
    media_type = _media_type(content_type)
    head = body.lstrip()[:64].lower()
    if "html" in media_type or head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return f"an HTML page ({media_type}, {len(body)} bytes), not JSON"
    if head.startswith((b"{", b"[")) and isinstance(exc, json.JSONDecodeError):
        return f"cut or broken JSON ({len(body)} bytes, unreadable at byte {exc.pos}: {exc.msg})"
    return f"a body that is not JSON ({media_type}, {len(body)} bytes)"


def field(document: dict[str, Any], name: str, kind: type, where: str, subject: str) -> Any:
    """Return ``document[name]`` when it is there with the protocol's type, else raise naming the field.

    :param kind: ``int``, ``str``, ``list``, ``dict`` or ``bool`` (``True`` is not a whole number here)
    :raises ArchiveMalformedAnswer: the field is missing or of another type
    """
    if name not in document:
        raise malformed(where, subject, f"JSON without '{name}'")
    value = document[name]
    # bool is a subclass of int in Python; the protocol's numbers are never true or false
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise malformed(
            where, subject, f"'{name}' that is {_type_name(value)}, not {_TYPE_NAMES.get(kind, kind.__name__)}"
        )
    return value


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower() or "no content type"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return {float: "a decimal number"}.get(kind) or _TYPE_NAMES[kind]
    return type(value).__name__
