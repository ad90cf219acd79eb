"""The rules of a mapping spec as whole-column checks (pyarrow.compute, RE2 patterns): what they find is flagged.

Each check returns a numpy mask of the rows that break it; details and raw values are
computed afterwards, in Python, for the broken rows only (a few per cent at most).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from decommission.mapping import codecs8, codes, identity
from decommission.mapping.arrow_text import as_array, key_text, mask, py_values, text, true_mask
from decommission.model import Reason
from decommission.plan.code_systems import REGISTRY
from decommission.plan.mapping_spec import RuleSpec

#: XML 1.0 forbids these (Arrow text is valid UTF-8, so no lone surrogates can occur)
XML_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_XML_ILLEGAL_PY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
#: UTF-8 read as Latin-1/CP1252, CP850 read as CP1252, 7-bit Swedish (ISO 646-SE), U+FFFD
ENCODING_SUSPECTS = {
    "utf8_as_latin1": r"Ã[\x{0080}-\x{00BF}\x{0152}\x{0153}\x{0160}\x{0161}\x{0178}\x{017D}\x{017E}"
    r"\x{201A}-\x{201E}\x{2020}-\x{2022}\x{2026}\x{2030}]",
    "cp850_as_cp1252": r"[A-Za-z][†„”Ž™]|[†„”Ž™][A-Za-z]",
    "iso646_se": r"[A-Za-z][{}|\[\]\\]|[{}|\[\]\\][A-Za-z]",
    "replacement_char": r"\x{FFFD}",
}
#: one pass over the text finds the rows any text pattern could match; each pattern then runs on those only
_ANY_TEXT_PATTERN = "|".join(f"(?:{p})" for p in (XML_ILLEGAL, *ENCODING_SUSPECTS.values()))
SENTINEL_DAYS = ("1900-01-01", "9999-12-31")
TRUE_VALUES = [1, True, "1", "J", "j", "Y", "y", "true", "True", "T"]

#: rule name -> the reason it gives (personal_id gives one of three, see identity.classify)
RULE_REASON = {
    "soft_deleted": Reason.SOFT_DELETED,
    "personal_id": Reason.ID_INVALID_FORMAT,
    "sentinel_date": Reason.SENTINEL_DATE,
    "xml_chars": Reason.XML_ILLEGAL_CHAR,
    "encoding": Reason.ENCODING_SUSPECT,
    "not_empty": Reason.EMPTY_ATTACHMENT,
    "code": Reason.CODE_INVALID,
}


@dataclass
class Finding:
    """Rows that break one check: the mask, the reason (or one per row), how to describe them."""

    hit: np.ndarray
    reason: str | np.ndarray
    detail: Callable[[np.ndarray], list[str]]
    #: the raw values of given rows, for the keyed digest (None: no value worth a digest)
    raw: Callable[[np.ndarray], list[Any]] | None


class TextScan:
    """The rows of a text column that any text pattern matches (one regex pass), and pattern hits among them."""

    def __init__(self, col: pa.ChunkedArray) -> None:
        self.n = len(col)
        self.rows = np.flatnonzero(mask(pc.match_substring_regex(text(col), _ANY_TEXT_PATTERN)))
        self.subset = text(col.take(pa.array(self.rows, pa.int64())))

    def hits(self, pattern: str) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        if len(self.rows):
            out[self.rows[mask(pc.match_substring_regex(self.subset, pattern))]] = True
        return out


def check(
    rule: RuleSpec,
    col: pa.ChunkedArray,
    *,
    reference_date: dt.date,
    ids: Any = None,
    scans: dict | None = None,
    rows: pa.Table | None = None,
    code_system: Callable[[str], Any] | None = None,
) -> list[Finding]:
    """Evaluate one rule on a whole column; several findings when a rule has several patterns.

    :param ids: identity.classify of the column, when the caller has it already.
    :param scans: a cache of :class:`TextScan` per column name, shared by the rules of a table.
    :param rows: the slice the column belongs to (a code rule's ``system_column`` is read from it).
    :param code_system: name -> :class:`~decommission.plan.code_systems.CodeSystem` (the spec's own lists too).
    """
    raw = _raw(col)
    scan = _scan(rule.column, col, scans) if rule.rule in ("xml_chars", "encoding") else None
    if rule.rule == "soft_deleted":
        values = rule.values if rule.values is not None else TRUE_VALUES
        return [Finding(true_mask(col, values), Reason.SOFT_DELETED, _fixed("marked deleted in the source"), None)]
    if rule.rule == "personal_id":
        ids = ids if ids is not None else classify(col, reference_date)
        why = ids["reason"].to_numpy(dtype=object)
        return [Finding(pd.notna(why), why, _fixed("identifier fails validation"), raw)]
    if rule.rule == "sentinel_date":
        day = _day_text(col)
        hit = mask(pc.is_in(day, value_set=pa.array(SENTINEL_DAYS, pa.string())))
        return [
            Finding(hit, Reason.SENTINEL_DATE, lambda rows: [f"sentinel date {d}" for d in py_values(day, rows)], raw)
        ]
    if rule.rule == "xml_chars":
        hit = scan.hits(XML_ILLEGAL)
        return [Finding(hit, Reason.XML_ILLEGAL_CHAR, lambda rows: [_xml_detail(v) for v in py_values(col, rows)], raw)]
    if rule.rule == "encoding":
        return [
            Finding(scan.hits(pattern), Reason.ENCODING_SUSPECT, _fixed(f"pattern {kind}"), raw)
            for kind, pattern in ENCODING_SUSPECTS.items()
        ]
    if rule.rule == "not_empty":
        arr = as_array(col)
        empty = pc.or_kleene(pc.is_null(arr), pc.equal(pc.binary_length(arr), 0))
        return [Finding(mask(empty), Reason.EMPTY_ATTACHMENT, _fixed("zero bytes"), None)]
    if rule.rule == "code":
        return [_code_finding(rule, col, rows, code_system or REGISTRY.__getitem__, raw)]
    raise AssertionError(f"unhandled rule {rule.rule}")  # pragma: no cover - the spec enum is closed


def decode(col: pa.ChunkedArray, codec: str) -> tuple[pa.ChunkedArray, Finding | None]:
    """A bytes column read as text with its declared codec; rows that do not decode are a finding.

    Text columns (already decoded by the driver) are returned as they are. UTF-8 is checked
    by Arrow on the whole column; the single-byte codecs map the whole buffer at once
    (:mod:`decommission.mapping.codecs8`). No repair: a row that fails keeps a null here; the mapping
    writes its bytes as base64 instead and flags it with the byte offset.
    """
    if not (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
        return col, None
    if codec in codecs8.SINGLE_BYTE:
        decoded_array, offsets = codecs8.decode(as_array(col), codec)
        failed = {row: f"bytes not {codec} at offset {at}" for row, at in offsets.items()}
        return _decoded(col, pa.chunked_array([decoded_array]), failed)
    if codec == "utf-8":
        try:
            return pc.cast(col, pa.large_string()), None
        except pa.ArrowInvalid:
            pass  # some rows are not UTF-8: find them one by one below
    values, failed = [], {}
    for i, raw in enumerate(col.to_pylist()):
        try:
            values.append(None if raw is None else raw.decode(codec))
        except UnicodeDecodeError as exc:
            values.append(None)
            failed[i] = f"bytes not {codec} at offset {exc.start}"
    return _decoded(col, pa.chunked_array([pa.array(values, pa.large_string())]), failed)


def _decoded(
    col: pa.ChunkedArray, decoded: pa.ChunkedArray, failed: dict[int, str]
) -> tuple[pa.ChunkedArray, Finding | None]:
    if not failed:
        return decoded, None
    hit = np.zeros(len(col), dtype=bool)
    hit[list(failed)] = True
    raw_values = _raw(col)
    return decoded, Finding(hit, Reason.ENCODING_SUSPECT, lambda rows: [failed[int(r)] for r in rows], raw_values)


def trimmed(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Text without fixed-width padding: the trailing blanks a ``char(n)`` column pads with."""
    return pc.utf8_rtrim(as_array(text(col)), characters=" ")


def _code_finding(
    rule: RuleSpec, col: pa.ChunkedArray, rows: pa.Table | None, code_system: Callable[[str], Any], raw: Any
) -> Finding:
    """Codes judged by their system (one for the column, or one per row from ``system_column``), padding aside."""
    values = trimmed(col)
    absent = mask(pc.is_null(values)) if rule.optional else np.zeros(len(values), dtype=bool)
    if rule.system is not None:
        ok = codes.valid(code_system(rule.system), values) | absent
        return Finding(~ok, Reason.CODE_INVALID, _fixed(f"not a valid {rule.system} code"), raw)
    which = key_text(rows[rule.system_column]) if rows is not None else pa.nulls(len(values), pa.string())
    named = pc.index_in(pc.utf8_trim_whitespace(which), value_set=pa.array(list(rule.systems), pa.string()))
    named = pc.fill_null(named, -1).to_numpy(zero_copy_only=False)
    ok = np.zeros(len(values), dtype=bool)
    for i, system in enumerate(rule.systems.values()):
        rows_i = np.flatnonzero(named == i)
        if len(rows_i):
            ok[rows_i] = codes.valid(code_system(system), values.take(pa.array(rows_i, pa.int64())))
    ok |= absent
    systems = list(rule.systems.values())

    def detail(hit_rows: np.ndarray) -> list[str]:
        return [
            f"not a valid {systems[named[r]]} code"
            if named[r] >= 0
            else f"no known code system in {rule.system_column}"
            for r in hit_rows
        ]

    return Finding(~ok, Reason.CODE_INVALID, detail, raw)


def _scan(name: str, col: pa.ChunkedArray, scans: dict | None) -> TextScan:
    if scans is None:
        return TextScan(col)
    if name not in scans:
        scans[name] = TextScan(col)
    return scans[name]


def classify(col: pa.ChunkedArray, reference_date: dt.date, schemes: Any = None) -> pd.DataFrame:
    """identity.classify over an Arrow column (vectorised there)."""
    values = pd.Series(as_array(text(col)).to_pandas(), dtype=object)
    return identity.classify(values, reference_date=reference_date, schemes=schemes)


def _day_text(col: pa.ChunkedArray) -> pa.Array:
    arr = as_array(col)
    if pa.types.is_timestamp(arr.type):
        return pc.cast(pc.cast(arr, pa.date32()), pa.string())
    if pa.types.is_date(arr.type):
        return pc.cast(arr, pa.string())
    return pc.utf8_slice_codeunits(text(arr), 0, 10)


def _raw(col: pa.ChunkedArray) -> Callable[[np.ndarray], list[Any]]:
    return lambda rows: [None if v is None else str(v) for v in py_values(col, rows)]


def _fixed(detail: str) -> Callable[[np.ndarray], list[str]]:
    return lambda rows: [detail] * len(rows)


def _xml_detail(value: Any) -> str:
    found = _XML_ILLEGAL_PY.search(value if isinstance(value, str) else str(value))
    return f"character U+{ord(found.group()):04X} at offset {found.start()}" if found else "XML-illegal character"
