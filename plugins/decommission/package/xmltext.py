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

from decommission.package import isotime

#: any character XML 1.0 does not allow (RE2 syntax; Arrow strings are valid UTF-8, so no surrogates)
ILLEGAL_RE2 = r"[^\t\n\r\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]"
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTR = (*_TEXT, ('"', "&quot;"), ("\t", "&#9;"), ("\n", "&#10;"))
_TEXT_TABLE = str.maketrans(dict(_TEXT))
# one pass finds the values to rewrite or refuse: whatever is not plain allowed text (the
# complement of the allowed set minus & < > \r, and for attributes also minus " \t \n)
_BEYOND = r"\x{3F}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}"
_TEXT_RE2 = rf"[^\t\n\x{{20}}-\x{{25}}\x{{27}}-\x{{3B}}\x{{3D}}{_BEYOND}]"
_ATTR_RE2 = rf"[^\x{{20}}\x{{21}}\x{{23}}-\x{{25}}\x{{27}}-\x{{3B}}\x{{3D}}{_BEYOND}]"
_ATTR_TABLE = str.maketrans(dict(_ATTR))


def is_xml_safe(text: str) -> bool:
    """Return True when ``text`` holds only characters XML 1.0 allows."""
    return _ILLEGAL.search(text) is None


# str.translate looks every character up in a dict: ten times the cost of these `in` tests,
# and paths, ids and names (the strings escaped here, thousands per package) rarely need it


def text(value: str) -> str:
    """Escape a Python string for element content."""
    if "&" in value or "<" in value or ">" in value or "\r" in value:
        return value.translate(_TEXT_TABLE)
    return value


def attr(value: str) -> str:
    """Escape a Python string for a double-quoted attribute value."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "\r" in value or "\n" in value or "\t" in value:
        return value.translate(_ATTR_TABLE)
    return value


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
        return isotime.timestamps(column)
    if pa.types.is_date(kind):
        return isotime.dates(column)
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    return pc.cast(column, pa.string())


class IllegalCharacter(ValueError):
    """A value holds a character XML 1.0 forbids; ``index`` is its row (the value is not in the message)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"row {index} holds a character that XML 1.0 does not allow")
        self.index = index


def escape(column: pa.Array, *, attribute: bool = False) -> pa.Array:
    """Escape a string column for element content (or a double-quoted attribute).

    One regex pass finds the few values that need a look; only those are checked and rewritten.

    :raises IllegalCharacter: a value holds a character XML 1.0 forbids
    """
    out = pc.cast(column, pa.large_string())
    found = pc.match_substring_regex(out, _ATTR_RE2 if attribute else _TEXT_RE2)
    if not pc.any(found).as_py():
        return out
    found = pc.fill_null(found, False)
    changed = pc.filter(out, found)
    bad = first_illegal(changed)
    if bad is not None:
        raise IllegalCharacter(pc.indices_nonzero(found)[bad].as_py())
    for old, new in _ATTR if attribute else _TEXT:
        changed = pc.replace_substring(changed, pattern=old, replacement=new)
    return pc.replace_with_mask(out, found, changed)


def lit(value: str) -> pa.Scalar:
    """A large_string scalar (the kernels do not mix string and large_string)."""
    return pa.scalar(value, pa.large_string())


def wrap(column: pa.Array, before: str, after: str) -> pa.Array:
    """``before + value + after`` per row; an empty string where the value is null."""
    joined = pc.binary_join_element_wise(lit(before), column, lit(after), lit(""))
    return pc.fill_null(joined, lit(""))


class Rows:
    """Row-wise text of literals and columns, joined by one kernel call in :meth:`render`.

    A column without nulls joins as it is; a column with nulls is wrapped first, so that a null
    value drops its element (``binary_join_element_wise`` would null the whole row).
    """

    def __init__(self) -> None:
        self._parts: list[pa.Array | str] = []

    def text(self, literal: str) -> Rows:
        if self._parts and isinstance(self._parts[-1], str):
            self._parts[-1] += literal
        else:
            self._parts.append(literal)
        return self

    def value(self, column: pa.Array, before: str, after: str) -> Rows:
        """``before + value + after``, or nothing where the value is null (already escaped text)."""
        if column.null_count:
            self._parts.append(wrap(column, before, after))
            return self
        return self.text(before).column(column).text(after)

    def column(self, column: pa.Array) -> Rows:
        self._parts.append(column)
        return self

    def render(self) -> pa.Array:
        parts = [lit(p) if isinstance(p, str) else p for p in self._parts]
        return pc.binary_join_element_wise(*parts, lit(""))
