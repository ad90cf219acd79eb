"""Names inside a package: safe file names (NFC, no separators, no personnummer), folder names, MIME types."""

from __future__ import annotations

import functools
import mimetypes
import re
import unicodedata

from decommission.errors import PackageError

XML = "application/xml"
_MIME = mimetypes.MimeTypes()  # built-in table only: the same answer on every host
_EXTRA_TYPES = {
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "md": "text/markdown",
    "xsd": XML,
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_PATIENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_PERSONNUMMER = re.compile(r"(?<!\d)(?:\d{6}|\d{8})[-+]?\d{4}(?!\d)")
MIMETYPE_RE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@functools.lru_cache(maxsize=8192)  # many attachments share a name; the function is pure
def safe_filename(name: str | None, fallback: str) -> str:
    """NFC, no path separators or control characters, no personnummer; ``fallback`` if nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    text = _PERSONNUMMER.sub("_", text)
    text = "".join(c if c.isalnum() or c in "._-()+" else "_" for c in text)
    text = re.sub(r"_*\._*", ".", re.sub(r"_+", "_", text)).strip(" ._")
    encoded = text.encode()
    if len(encoded) > 150:
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        text = encoded[: 140 - len(ext)].decode(errors="ignore") + (f".{ext}" if ext else "")
    if not text or text.split(".")[0].upper() in _RESERVED:
        text = f"{fallback}_{text}" if text else fallback
    return text


def attachment_name(filename: str | None, index: int, protected: bool) -> str:
    """The safe file name; for a patient with protected identity only ``attachment-<n>.<ext>``."""
    name = safe_filename(filename, f"attachment-{index}")
    if not protected:
        return name
    ext = name.rpartition(".")[2] if "." in name[1:] else ""
    return f"attachment-{index}.{ext}" if ext.isascii() and ext.isalnum() and len(ext) <= 10 else f"attachment-{index}"


@functools.lru_cache(maxsize=1024)
def mimetype(name: str) -> str:
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    return _EXTRA_TYPES.get(suffix) or _MIME.guess_type(name, strict=False)[0] or "application/octet-stream"


def folder_name(number: int, key: str, personal_id: str | None) -> str:
    if not _PATIENT_KEY.fullmatch(key):
        raise PackageError(f"patient #{number}: patient_key is not usable as a folder name")
    digits = re.sub(r"\D", "", personal_id or "")
    if len(digits) >= 10 and digits[-10:] in re.sub(r"\D", "", key):
        raise PackageError(f"patient #{number}: patient_key holds the personal id; refusing to put it in a path")
    return key
