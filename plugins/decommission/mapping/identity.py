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
* Reservnummer and other identity schemes (:mod:`decommission.plan.identity_schemes`): the
  built-in ones (the national reservnummer and the regional formats of HL7 Sweden's base
  profiles) and those a region adds in its mapping spec, tried in order on what is not a
  personnummer. The first scheme whose pattern matches and whose check passes names the
  identifier; when none passes, the first whose pattern matched gives the reason (a wrong
  check character ``ID_INVALID_CHECKSUM``, a birth date that does not exist ``ID_INVALID_DATE``).
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
from decommission.plan.identity_schemes import IdentityScheme, chosen

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

#: Earliest birth year accepted as a real date, and the first year no personnummer has.
_MIN_YEAR = 1800
_END_YEAR = 2100

_RE_12 = r"[0-9]{8}[-+]?[0-9]{4}"
_RE_10 = r"[0-9]{6}[-+]?[0-9]{4}"
_SEPARATORS = r"[-+]"

_VGR_LETTERS = {"K": 5, "M": 7, "X": 8}
_LUHN_WEIGHTS = np.array([2, 1, 2, 1, 2, 1, 2, 1, 2], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


class IdType(StrEnum):
    """Kind of a patient identifier; the value is what ``classify`` writes (a ``str`` and an ``Enum``)."""

    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"
    RESERVNUMMER = "reservnummer"
    TEST_NUMBER = "test_number"
    INVALID = "invalid"


def classify(
    values: pd.Series,
    *,
    reference_date: date = DEFAULT_REFERENCE_DATE,
    schemes: tuple[IdentityScheme, ...] | None = None,
) -> pd.DataFrame:
    """Classify raw patient identifiers.

    :param values: raw identifiers (strings; integers are read as their digits).
    :param reference_date: date that fixes the century of 10-digit forms.
    :param schemes: the identity schemes tried on what is not a personnummer, in order (None: the defaults).
    :returns: a DataFrame with the index of ``values`` and object columns ``id_type``
        (an :class:`IdType` value), ``reason`` (None when valid, else
        ``ID_INVALID_FORMAT``, ``ID_INVALID_CHECKSUM`` or ``ID_INVALID_DATE``),
        ``normalised`` (12 digits ``YYYYMMDDNNNC`` for personnummer, samordningsnummer
        and test numbers; a reservnummer as written, surrounding blanks removed; None when
        invalid) and ``scheme`` (``personnummer``, ``samordningsnummer`` or the name of the
        identity scheme; for a refused identifier the scheme whose shape it has, else None).
    """
    n = len(values)
    text = values.astype("string").fillna("").str.strip().str.upper()
    id_type = np.full(n, IdType.INVALID.value, dtype=object)
    reason = np.full(n, Reason.ID_INVALID_FORMAT, dtype=object)
    normalised = np.full(n, None, dtype=object)

    scheme = np.full(n, None, dtype=object)
    pos12 = np.flatnonzero(text.str.fullmatch(_RE_12).to_numpy(dtype=bool))
    pos10 = np.flatnonzero(text.str.fullmatch(_RE_10).to_numpy(dtype=bool))

    if len(pos12) or len(pos10):
        compact12 = text.iloc[pos12].str.replace(_SEPARATORS, "", regex=True).to_numpy(dtype=object)
        full10 = _expand_10(text.iloc[pos10], reference_date)
        positions = np.concatenate([pos12, pos10])
        numbers = np.concatenate([compact12, full10])
        kind, why = _classify_12(numbers)
        id_type[positions] = kind
        reason[positions] = why
        ok = kind != IdType.INVALID.value
        normalised[positions[ok]] = numbers[ok]
        scheme[positions[ok]] = np.where(
            kind[ok] == IdType.SAMORDNINGSNUMMER.value, IdType.SAMORDNINGSNUMMER.value, IdType.PERSONNUMMER.value
        )

    # every other scheme, on what is not a personnummer (a few rows: the patterns run on those only)
    schemes = chosen((), ()) if schemes is None else schemes
    rest = np.flatnonzero(id_type == IdType.INVALID.value)
    if len(rest) and schemes:
        written = values.iloc[rest].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        kind, why, named = _by_scheme(text.iloc[rest], schemes)
        matched = named != None  # noqa: E711 - elementwise on an object array
        hit = rest[matched]
        id_type[hit] = kind[matched]
        reason[hit] = why[matched]
        scheme[hit] = named[matched]
        good = matched & (kind == IdType.RESERVNUMMER.value)
        normalised[rest[good]] = written[good]

    return pd.DataFrame(
        {"id_type": id_type, "reason": reason, "normalised": normalised, "scheme": scheme},
        index=values.index,
        dtype=object,
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
    """Make a Region Stockholm reservnummer ``99yyyyNNNNNC`` (Luhn over positions 5-11, as Inera gives it).

    :param birth_year: four-digit year (the year the number was given out).
    :param serial: 0-99999.
    :raises ValueError: when a value is out of range.
    """
    if not 0 <= birth_year <= 9999:
        raise ValueError(f"birth_year must be 0-9999, got {birth_year!r}")
    body = f"{birth_year:04d}{_serial(serial, 99999, 5)}"
    return "99" + body + _luhn_digit(body[2:])


def make_reservnummer_vgr(birth: date, letter: str, serial: int) -> str:
    """Make a Västra Götaland reservnummer (LRID) ``yyyymmdd`` + sex letter + two digits + a check digit.

    The check digit is Luhn over positions 3-11, the letter valued K=5, M=7, X=8.

    :param birth: birth date.
    :param letter: K (woman), M (man) or X (unknown).
    :param serial: 6-89.
    :raises ValueError: when a value is out of range.
    """
    if letter not in _VGR_LETTERS:
        raise ValueError(f"letter must be one of K, M, X, got {letter!r}")
    if not 6 <= serial <= 89:
        raise ValueError(f"serial must be 6-89, got {serial!r}")
    date8 = f"{birth.year:04d}{birth.month:02d}{birth.day:02d}"
    return f"{date8}{letter}{serial:02d}" + _luhn_digit(f"{date8[2:]}{_VGR_LETTERS[letter]}{serial:02d}")


def make_reservnummer_carelink(birth_year: int, month: int, day_code: int, serial: int) -> str:
    """Make an Inera Carelink reservnummer: 12 digits whose day field is 32-59.

    The last digit is a Luhn digit over positions 3-11, as for a personnummer.

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


def _classify_12(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classify 12-digit strings as personnummer, samordningsnummer or test number (else invalid)."""
    k = len(numbers)
    digits = _digits(numbers, 12)
    year, month, day = _number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8)
    serial = _number(digits, 8, 11)
    luhn = _luhn_vec(digits)

    test = np.isin(numbers, list(TEST_NUMBERS))
    person = ~test
    samordning = person & (day > 60)

    bad_format = person & (serial == 0)
    bad_checksum = person & ~bad_format & ~luhn
    # the century of a personnummer is 18, 19 or 20 (Skatteverket); 99... is Stockholm's reserve series
    real_date = _date_ok(year, month, np.where(samordning, day - 60, day)) & (year < _END_YEAR)
    bad_date = person & ~bad_format & ~bad_checksum & ~real_date
    bad = bad_format | bad_checksum | bad_date

    kind = np.full(k, IdType.INVALID.value, dtype=object)
    kind[person & ~samordning & ~bad] = IdType.PERSONNUMMER.value
    kind[samordning & ~bad] = IdType.SAMORDNINGSNUMMER.value
    kind[test] = IdType.TEST_NUMBER.value

    why = np.full(k, None, dtype=object)
    why[bad_format] = Reason.ID_INVALID_FORMAT
    why[bad_checksum] = Reason.ID_INVALID_CHECKSUM
    why[bad_date] = Reason.ID_INVALID_DATE
    return kind, why


def _by_scheme(text: pd.Series, schemes: tuple[IdentityScheme, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind, reason and scheme name per upper-cased identifier; the scheme is None where no pattern matched.

    The first scheme that matches and passes its checks names a row; a row no scheme passes takes
    the reason and name of the first scheme whose pattern it matched.
    """
    n = len(text)
    kind = np.full(n, IdType.INVALID.value, dtype=object)
    why = np.full(n, Reason.ID_INVALID_FORMAT, dtype=object)
    named = np.full(n, None, dtype=object)
    passed = np.zeros(n, dtype=bool)
    for s in schemes:
        open_rows = np.flatnonzero(~passed)
        if not len(open_rows):
            break
        match = text.iloc[open_rows].str.fullmatch(s.pattern).to_numpy(dtype=bool)
        rows = open_rows[match]
        if not len(rows):
            continue
        compact = text.iloc[rows].str.replace(_SEPARATORS, "", regex=True).to_numpy(dtype=object)
        check_ok = _scheme_check(compact, s)
        date_ok = _scheme_date(compact, s)
        ok = check_ok & date_ok
        first = named[rows] == None  # noqa: E711 - no earlier scheme matched these rows
        fail = rows[~ok & first]
        named[fail] = s.name
        why[fail] = np.where(check_ok[~ok & first], Reason.ID_INVALID_DATE, Reason.ID_INVALID_CHECKSUM)
        good = rows[ok]
        passed[good] = True
        named[good] = s.name
        kind[good] = IdType.RESERVNUMMER.value
        why[good] = None
    return kind, why, named


def _matrix(compact: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Rows grouped by length: length -> (row positions, (rows, length) uint8 matrix of the characters)."""
    lengths = np.array([len(c) for c in compact], dtype=np.int64)
    out = {}
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        raw = "".join(compact[rows]).encode("ascii", "replace")
        out[int(length)] = (rows, np.frombuffer(raw, dtype=np.uint8).reshape(len(rows), int(length)))
    return out


def _scheme_check(compact: np.ndarray, scheme: IdentityScheme) -> np.ndarray:
    """The scheme's check character rule (Luhn over given positions, letters valued by the scheme)."""
    if scheme.check is None:
        return np.ones(len(compact), dtype=bool)
    values = np.full(256, -1, dtype=np.int64)
    values[48:58] = np.arange(10)
    for letter, value in scheme.letter_values.items():
        values[ord(letter.upper())] = value
    out = np.zeros(len(compact), dtype=bool)
    start, stop = scheme.check_from - 1, scheme.check_to
    for length, (rows, chars) in _matrix(compact).items():
        if length <= stop:
            continue
        body = values[chars[:, start:stop]]
        check = values[chars[:, stop]]
        weights = np.where((np.arange(stop - start)[::-1] % 2) == 0, 2, 1)
        products = body * weights
        total = (products // 10 + products % 10).sum(axis=1)
        digit_ok = (chars[:, stop] >= 48) & (chars[:, stop] <= 57)
        out[rows] = (body >= 0).all(axis=1) & digit_ok & ((10 - total % 10) % 10 == check)
    return out


def _scheme_date(compact: np.ndarray, scheme: IdentityScheme) -> np.ndarray:
    """The birth date a scheme holds at ``date_at`` exists (no date declared: always true)."""
    if scheme.date_at is None:
        return np.ones(len(compact), dtype=bool)
    out = np.zeros(len(compact), dtype=bool)
    at = scheme.date_at - 1
    for length, (rows, chars) in _matrix(compact).items():
        if length < at + 8:
            continue
        digits = chars[:, at : at + 8].astype(np.int64) - 48
        numeric = ((digits >= 0) & (digits <= 9)).all(axis=1)
        digits = np.where(numeric[:, None], digits, 0)
        out[rows] = numeric & _date_ok(_number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8))
    return out
