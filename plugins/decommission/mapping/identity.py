"""Classify Swedish patient identifiers: personnummer, samordningsnummer, reservnummer.

``classify`` takes a pandas Series of raw identifiers as a legacy system wrote them and
returns, for every row, the kind of identifier, the finding reason when it is not
valid, and a normalised form. The work is vectorised (pandas string matching, numpy
arithmetic on digit arrays); no Python code runs per row.

Accepted forms (surrounding whitespace is ignored, letters are upper-cased):

* ``YYYYMMDDNNNC``, ``YYYYMMDD-NNNC`` (and ``YYYYMMDD+NNNC``): 12 digits.
* ``YYMMDD-NNNC``, ``YYMMDD+NNNC`` and ``YYMMDDNNNC``: 10 digits; the century is the
  latest one that puts the birth date on or before ``reference_date``, one century
  earlier again for ``+`` (100 years or older). Never today's date: the output is
  deterministic.
* Region Stockholm reservnummer: any 12-digit value beginning with ``99``
  (``99yyyyNNNNNC``); its last digit is a Luhn check over the last ten digits.
* Västra Götaland reservnummer: ``yyyymmdd`` + a letter A-Z + three digits
  (``yyyymmdd-Xnnn`` is accepted too); no check digit, the date must exist.
* Inera Carelink reservnummer: a 12-digit value whose day is 32-59; no Luhn check,
  the month must be 01-12.
* The official test number ``191212121212`` (``19121212-1212``, ``121212+1212``).

Checks on personnummer and samordningsnummer (day + 60), first failing one wins, in
the order of :attr:`decommission.model.Reason.ORDER`: serial ``000`` is
``ID_INVALID_FORMAT``; a bad Luhn digit is ``ID_INVALID_CHECKSUM``; a date that does
not exist (month 13, 30 February, day 00 or 60, a year before 1800) is
``ID_INVALID_DATE``. Null, empty and anything else is ``ID_INVALID_FORMAT``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import numpy as np
import pandas as pd

from decommission.model import Reason

__all__ = [
    "DEFAULT_REFERENCE_DATE",
    "TEST_NUMBERS",
    "IdType",
    "classify",
    "luhn_ok",
    "make_personnummer",
    "make_reservnummer_carelink",
    "make_reservnummer_sthlm",
    "make_reservnummer_vgr",
    "make_samordningsnummer",
]

#: Reference date for the century of 10-digit forms when the caller gives none.
DEFAULT_REFERENCE_DATE = date(2025, 1, 1)

#: Official test numbers (Skatteverket), 12-digit form.
TEST_NUMBERS = frozenset({"191212121212"})

#: Earliest birth year accepted as a real date.
_MIN_YEAR = 1800

_RE_12 = r"[0-9]{8}[-+]?[0-9]{4}"
_RE_10 = r"[0-9]{6}[-+]?[0-9]{4}"
_RE_VGR = r"[0-9]{8}-?[A-Z][0-9]{3}"
_SEPARATORS = r"[-+]"

_LUHN_WEIGHTS = np.array([2, 1, 2, 1, 2, 1, 2, 1, 2], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


class IdType(StrEnum):
    """Kind of a patient identifier; the value is what ``classify`` writes (a ``str`` and an ``Enum``)."""

    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"
    RESERVNUMMER = "reservnummer"
    TEST_NUMBER = "test_number"
    INVALID = "invalid"


def classify(values: pd.Series, *, reference_date: date = DEFAULT_REFERENCE_DATE) -> pd.DataFrame:
    """Classify raw patient identifiers.

    :param values: raw identifiers (strings; integers are read as their digits).
    :param reference_date: date that fixes the century of 10-digit forms.
    :returns: a DataFrame with the index of ``values`` and object columns ``id_type``
        (an :class:`IdType` value), ``reason`` (None when valid, else
        ``ID_INVALID_FORMAT``, ``ID_INVALID_CHECKSUM`` or ``ID_INVALID_DATE``) and
        ``normalised`` (12 digits ``YYYYMMDDNNNC`` for personnummer, samordningsnummer
        and test numbers; the upper-cased compact string for reservnummer; None when
        invalid).
    """
    n = len(values)
    text = values.astype("string").fillna("").str.strip().str.upper()
    id_type = np.full(n, IdType.INVALID.value, dtype=object)
    reason = np.full(n, Reason.ID_INVALID_FORMAT, dtype=object)
    normalised = np.full(n, None, dtype=object)

    pos12 = np.flatnonzero(text.str.fullmatch(_RE_12).to_numpy(dtype=bool))
    pos10 = np.flatnonzero(text.str.fullmatch(_RE_10).to_numpy(dtype=bool))
    posvgr = np.flatnonzero(text.str.fullmatch(_RE_VGR).to_numpy(dtype=bool))

    if len(pos12) or len(pos10):
        compact12 = text.iloc[pos12].str.replace(_SEPARATORS, "", regex=True).to_numpy(dtype=object)
        full10 = _expand_10(text.iloc[pos10], reference_date)
        positions = np.concatenate([pos12, pos10])
        numbers = np.concatenate([compact12, full10])
        raw12 = np.concatenate([np.ones(len(pos12), dtype=bool), np.zeros(len(pos10), dtype=bool)])
        kind, why = _classify_12(numbers, raw12)
        id_type[positions] = kind
        reason[positions] = why
        ok = kind != IdType.INVALID.value
        normalised[positions[ok]] = numbers[ok]

    if len(posvgr):
        compact = text.iloc[posvgr].str.replace("-", "", regex=False).to_numpy(dtype=object)
        digits = _digits(compact, 12, keep=8)
        ok = _date_ok(_number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8))
        id_type[posvgr[ok]] = IdType.RESERVNUMMER.value
        reason[posvgr[ok]] = None
        normalised[posvgr[ok]] = compact[ok]
        reason[posvgr[~ok]] = Reason.ID_INVALID_DATE

    return pd.DataFrame(
        {"id_type": id_type, "reason": reason, "normalised": normalised}, index=values.index, dtype=object
    )


def luhn_ok(ten_digits: str) -> bool:
    """Tell whether a digit string ends in a correct Luhn check digit.

    :param ten_digits: usually the 10-digit form ``YYMMDDNNNC``; any length of at
        least two ASCII digits is checked the same way.
    :returns: False for a wrong check digit and for anything that is not digits.
    """
    if not isinstance(ten_digits, str) or len(ten_digits) < 2:
        return False
    if not (ten_digits.isascii() and ten_digits.isdigit()):
        return False
    return _luhn_digit(ten_digits[:-1]) == ten_digits[-1]


def make_personnummer(birth: date, serial: int) -> str:
    """Make a 12-digit personnummer ``YYYYMMDDNNNC`` with a correct check digit.

    :param birth: birth date.
    :param serial: birth number 0-999; its last digit is odd for men, even for women.
        Serial 0 gives a number with a correct check digit that :func:`classify`
        rejects as ``ID_INVALID_FORMAT`` (useful for fixtures).
    :raises ValueError: when the serial is out of range.
    """
    return _with_check(f"{birth.year:04d}{birth.month:02d}{birth.day:02d}", _serial(serial, 999, 3))


def make_samordningsnummer(birth: date, serial: int) -> str:
    """Make a 12-digit samordningsnummer (birth day + 60) with a correct check digit.

    :param birth: birth date.
    :param serial: 0-999, as for :func:`make_personnummer`.
    :raises ValueError: when the serial is out of range.
    """
    return _with_check(f"{birth.year:04d}{birth.month:02d}{birth.day + 60:02d}", _serial(serial, 999, 3))


def make_reservnummer_sthlm(birth_year: int, serial: int) -> str:
    """Make a Region Stockholm reservnummer ``99yyyyNNNNNC``.

    :param birth_year: four-digit year.
    :param serial: 0-99999.
    :raises ValueError: when a value is out of range.
    """
    if not 0 <= birth_year <= 9999:
        raise ValueError(f"birth_year must be 0-9999, got {birth_year!r}")
    body = f"{birth_year:04d}{_serial(serial, 99999, 5)}"
    return "99" + body + _luhn_digit(body)


def make_reservnummer_vgr(birth: date, letter: str, serial: int) -> str:
    """Make a Västra Götaland reservnummer ``yyyymmdd`` + letter + three digits.

    :param birth: birth date.
    :param letter: one letter A-Z.
    :param serial: 0-999.
    :raises ValueError: when a value is out of range.
    """
    if not (len(letter) == 1 and "A" <= letter <= "Z"):
        raise ValueError(f"letter must be one of A-Z, got {letter!r}")
    return f"{birth.year:04d}{birth.month:02d}{birth.day:02d}{letter}{_serial(serial, 999, 3)}"


def make_reservnummer_carelink(birth_year: int, month: int, day_code: int, serial: int) -> str:
    """Make an Inera Carelink reservnummer: 12 digits whose day field is 32-59.

    The last digit is a Luhn digit, although :func:`classify` does not require one.

    :param birth_year: four-digit year.
    :param month: 1-12.
    :param day_code: 32-59.
    :param serial: 0-999.
    :raises ValueError: when a value is out of range.
    """
    if not 0 <= birth_year <= 9999:
        raise ValueError(f"birth_year must be 0-9999, got {birth_year!r}")
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month!r}")
    if not 32 <= day_code <= 59:
        raise ValueError(f"day_code must be 32-59, got {day_code!r}")
    return _with_check(f"{birth_year:04d}{month:02d}{day_code:02d}", _serial(serial, 999, 3))


def _serial(serial: int, maximum: int, width: int) -> str:
    if not 0 <= serial <= maximum:
        raise ValueError(f"serial must be 0-{maximum}, got {serial!r}")
    return f"{serial:0{width}d}"


def _with_check(yyyymmdd: str, serial: str) -> str:
    body = yyyymmdd + serial
    return body + _luhn_digit(body[2:])


def _luhn_digit(body: str) -> str:
    """Return the Luhn check digit for a string of digits (the check digit excluded)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _digits(strings: np.ndarray, width: int, *, keep: int | None = None) -> np.ndarray:
    """Turn equal-length ASCII strings into a (rows, keep) int64 array of their digits."""
    if len(strings) == 0:
        return np.zeros((0, keep or width), dtype=np.int64)
    raw = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).reshape(-1, width)
    return raw[:, : keep or width].astype(np.int64) - 48


def _number(digits: np.ndarray, start: int, stop: int) -> np.ndarray:
    value = np.zeros(len(digits), dtype=np.int64)
    for col in range(start, stop):
        value = value * 10 + digits[:, col]
    return value


def _luhn_vec(digits12: np.ndarray) -> np.ndarray:
    """Luhn check over the last ten of twelve digits, one bool per row."""
    products = digits12[:, 2:11] * _LUHN_WEIGHTS
    total = (products // 10 + products % 10).sum(axis=1)
    return (10 - total % 10) % 10 == digits12[:, 11]


def _date_ok(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    valid_month = (month >= 1) & (month <= 12)
    last = _DAYS_IN_MONTH[np.where(valid_month, month, 0)] + ((month == 2) & leap)
    return (year >= _MIN_YEAR) & valid_month & (day >= 1) & (day <= last)


def _expand_10(text10: pd.Series, reference_date: date) -> np.ndarray:
    """Prefix the century to 10-digit forms; returns 12-digit strings."""
    if len(text10) == 0:
        return np.zeros(0, dtype=object)
    plus = (text10.str.slice(6, 7) == "+").to_numpy(dtype=bool)
    compact = text10.str.replace(_SEPARATORS, "", regex=True).to_numpy(dtype=object)
    digits = _digits(compact, 10)
    yy, month, day = _number(digits, 0, 2), _number(digits, 2, 4), _number(digits, 4, 6)
    day = np.where(day > 60, day - 60, day)
    ref = reference_date
    year = ref.year - (ref.year - yy) % 100
    after_reference = (month * 100 + day) > (ref.month * 100 + ref.day)
    year = np.where((year == ref.year) & after_reference, year - 100, year)
    year = np.where(plus, year - 100, year)
    century = pd.Series(year // 100).astype("string").str.zfill(2).to_numpy(dtype=object)
    return century + compact


def _classify_12(numbers: np.ndarray, raw12: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classify 12-digit strings; ``raw12`` marks those written with 12 digits."""
    k = len(numbers)
    digits = _digits(numbers, 12)
    year, month, day = _number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8)
    serial = _number(digits, 8, 11)
    luhn = _luhn_vec(digits)

    sthlm = raw12 & (digits[:, 0] == 9) & (digits[:, 1] == 9)
    test = ~sthlm & np.isin(numbers, list(TEST_NUMBERS))
    carelink = ~sthlm & ~test & (day >= 32) & (day <= 59)
    person = ~sthlm & ~test & ~carelink
    samordning = person & (day > 60)

    bad_format = person & (serial == 0)
    bad_checksum = (person & ~bad_format & ~luhn) | (sthlm & ~luhn)
    real_date = _date_ok(year, month, np.where(samordning, day - 60, day))
    bad_date = (person & ~bad_format & ~bad_checksum & ~real_date) | (
        carelink & ~((month >= 1) & (month <= 12) & (year >= _MIN_YEAR))
    )
    bad = bad_format | bad_checksum | bad_date

    kind = np.full(k, IdType.INVALID.value, dtype=object)
    kind[person & ~samordning & ~bad] = IdType.PERSONNUMMER.value
    kind[samordning & ~bad] = IdType.SAMORDNINGSNUMMER.value
    kind[(sthlm | carelink) & ~bad] = IdType.RESERVNUMMER.value
    kind[test] = IdType.TEST_NUMBER.value

    why = np.full(k, None, dtype=object)
    why[bad_format] = Reason.ID_INVALID_FORMAT
    why[bad_checksum] = Reason.ID_INVALID_CHECKSUM
    why[bad_date] = Reason.ID_INVALID_DATE
    return kind, why
