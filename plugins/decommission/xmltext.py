"""XML text built from whole Arrow columns at once, and the scalar escapes for the few strings built in Python.

Packaging renders millions of values; escaping them one at a time in Python was most of its cost.
Here a column is checked for characters XML 1.0 forbids (lxml would refuse them; string building
would write broken XML silently), escaped and wrapped in its element with pyarrow.compute kernels.
Order of the replacements matters: ``&`` first; ``\\r`` becomes ``&#13;`` or a parser turns
``\\r\\n`` into ``\\n``; attributes also escape ``"``, tab and newline.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

#: any character XML 1.0 does not allow (RE2 syntax; Arrow strings are valid UTF-8, so no surrogates)
ILLEGAL_RE2 = r"[^\t\n\r\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]"
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTR = (*_TEXT, ('"', "&quot;"), ("\t", "&#9;"), ("\n", "&#10;"))
_TEXT_TABLE = str.maketrans(dict(_TEXT))
_ATTR_TABLE = str.maketrans(dict(_ATTR))


def is_xml_safe(text: str) -> bool:
    """Return True when ``text`` holds only characters XML 1.0 allows."""
    return _ILLEGAL.search(text) is None


def text(value: str) -> str:
    """Escape a Python string for element content."""
    return value.translate(_TEXT_TABLE)


def attr(value: str) -> str:
    """Escape a Python string for a double-quoted attribute value."""
    return value.translate(_ATTR_TABLE)


def first_illegal(column: pa.Array) -> int | None:
    """Index of the first value holding a character XML 1.0 forbids, or None."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return None
    found = pc.match_substring_regex(column, ILLEGAL_RE2)
    if not pc.any(found).as_py():
        return None
    return pc.index(found, True).as_py()


def as_text(column: pa.Array) -> pa.Array:
    """Render a column as XML schema lexical values (strings; null stays null).

    Timestamps become UTC ``YYYY-MM-DDThh:mm:ss[.ffffff]Z``, dates ``YYYY-MM-DD``, booleans
    ``true``/``false``.
    """
    kind = column.type
    if pa.types.is_timestamp(kind):
        utc = column if kind.tz else pc.assume_timezone(column, "UTC")
        seconds = pc.cast(pc.floor_temporal(utc, unit="second"), pa.timestamp("s", tz="UTC"))
        base = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
        micros = pc.add(pc.multiply(pc.millisecond(utc), 1000), pc.microsecond(utc))
        digits = pc.utf8_lpad(pc.cast(micros, pa.string()), width=6, padding="0")
        fraction = pc.if_else(pc.equal(micros, 0), "", pc.binary_join_element_wise(".", digits, ""))
        return pc.binary_join_element_wise(base, fraction, "Z", "")
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    if pa.types.is_date(kind):
        return pc.cast(column, pa.string())
    return pc.cast(column, pa.string())


def escape(column: pa.Array, *, attribute: bool = False) -> pa.Array:
    """Escape a string column for element content (or a double-quoted attribute)."""
    out = pc.cast(column, pa.large_string())
    for old, new in _ATTR if attribute else _TEXT:
        out = pc.replace_substring(out, pattern=old, replacement=new)
    return out


def lit(value: str) -> pa.Scalar:
    """A large_string scalar (the kernels do not mix string and large_string)."""
    return pa.scalar(value, pa.large_string())


def wrap(column: pa.Array, before: str, after: str) -> pa.Array:
    """``before + value + after`` per row; an empty string where the value is null."""
    joined = pc.binary_join_element_wise(lit(before), column, lit(after), lit(""))
    return pc.fill_null(joined, lit(""))


def concat(columns: list[pa.Array]) -> pa.Array:
    """Row-wise concatenation of non-null large_string columns."""
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*columns, lit(""))
