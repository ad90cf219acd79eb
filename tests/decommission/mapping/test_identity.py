"""Tests of decommission.mapping.identity.

No real person's number appears here: valid numbers are made with the helpers for
births in 1800-1830 (nobody born then ever got a personnummer), plus the official test
number 191212121212.
"""

from __future__ import annotations

import inspect
import random
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from decommission.mapping.identity import (
    DEFAULT_REFERENCE_DATE,
    IdType,
    classify,
    luhn_ok,
    make_personnummer,
    make_reservnummer_carelink,
    make_reservnummer_sthlm,
    make_reservnummer_vgr,
    make_samordningsnummer,
)
from decommission.model import Reason

BIRTH = date(1825, 6, 15)
PNR = make_personnummer(BIRTH, 123)  # 182506151234-style, 12 digits
SAMORD = make_samordningsnummer(BIRTH, 124)
STHLM = make_reservnummer_sthlm(1825, 12345)
VGR = make_reservnummer_vgr(BIRTH, "K", 12)
CARELINK = make_reservnummer_carelink(1825, 6, 45, 123)


def with_check(eleven: str) -> str:
    """Append the Luhn digit (over the last nine of the eleven digits) that makes the number pass."""
    return next(eleven + d for d in "0123456789" if luhn_ok(eleven[2:] + d))


def _vgr_digit(yymmdd: str, letter: str, serial: str) -> str:
    """The check digit of a VGR reserve number: Luhn with K=5, M=7, X=8."""
    body = yymmdd + str({"K": 5, "M": 7, "X": 8}[letter]) + serial
    return next(d for d in "0123456789" if luhn_ok(body + d))


def bad_check(number: str) -> str:
    """The same number with a wrong last digit."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def one(value: object, **kwargs: object) -> tuple[str, str | None, str | None]:
    row = classify(pd.Series([value], dtype=object), **kwargs).iloc[0]  # type: ignore[arg-type]
    return row["id_type"], row["reason"], row["normalised"]


class TestClassifyValid:
    @pytest.mark.parametrize(
        ("raw", "kind", "normalised"),
        [
            pytest.param(PNR, IdType.PERSONNUMMER, PNR, id="personnummer-12"),
            pytest.param(PNR[:8] + "-" + PNR[8:], IdType.PERSONNUMMER, PNR, id="personnummer-12-hyphen"),
            pytest.param(f"  {PNR}\t", IdType.PERSONNUMMER, PNR, id="personnummer-whitespace"),
            pytest.param(int(PNR), IdType.PERSONNUMMER, PNR, id="personnummer-as-integer"),
            pytest.param(SAMORD, IdType.SAMORDNINGSNUMMER, SAMORD, id="samordningsnummer"),
            pytest.param(SAMORD[:8] + "-" + SAMORD[8:], IdType.SAMORDNINGSNUMMER, SAMORD, id="samordning-hyphen"),
            pytest.param(STHLM, IdType.RESERVNUMMER, STHLM, id="reserv-stockholm"),
            pytest.param(VGR, IdType.RESERVNUMMER, VGR, id="reserv-vgr"),
            pytest.param(VGR.lower(), IdType.RESERVNUMMER, VGR.lower(), id="reserv-vgr-lower-case-as-written"),
            pytest.param(CARELINK, IdType.RESERVNUMMER, CARELINK, id="reserv-carelink"),
            pytest.param("22950606-FH20", IdType.RESERVNUMMER, "22950606-FH20", id="reserv-national-as-written"),
            pytest.param("191212121212", IdType.TEST_NUMBER, "191212121212", id="test-number-12"),
            pytest.param("19121212-1212", IdType.TEST_NUMBER, "191212121212", id="test-number-hyphen"),
            pytest.param("121212+1212", IdType.TEST_NUMBER, "191212121212", id="test-number-10-plus"),
        ],
    )
    def test_classify_valid_forms(self, raw: object, kind: IdType, normalised: str) -> None:
        assert one(raw) == (kind.value, None, normalised)

    def test_classify_leap_day_is_a_date(self) -> None:
        leap = make_personnummer(date(1828, 2, 29), 11)
        assert one(leap) == (IdType.PERSONNUMMER.value, None, leap)


class TestClassifyTenDigits:
    @pytest.mark.parametrize(
        ("raw", "reference", "normalised"),
        [
            pytest.param(PNR[2:8] + "-" + PNR[8:], date(1830, 1, 1), PNR, id="minus-same-century"),
            pytest.param(PNR[2:], date(1830, 1, 1), PNR, id="no-separator"),
            pytest.param(PNR[2:8] + "+" + PNR[8:], date(1930, 1, 1), PNR, id="plus-a-century-back"),
            pytest.param(PNR[2:8] + "-" + PNR[8:], date(1825, 7, 1), PNR, id="born-before-reference-day"),
            pytest.param(SAMORD[2:8] + "-" + SAMORD[8:], date(1830, 1, 1), SAMORD, id="samordningsnummer"),
        ],
    )
    def test_classify_takes_century_from_reference_date(self, raw: str, reference: date, normalised: str) -> None:
        assert one(raw, reference_date=reference)[2] == normalised

    def test_classify_birthday_after_reference_day_is_previous_century(self) -> None:
        # 1825-06-15 is after 1825-01-01, so the number reads as 1725: a year before 1800
        assert one(PNR[2:8] + "-" + PNR[8:], reference_date=date(1825, 1, 1))[1] == Reason.ID_INVALID_DATE

    def test_classify_default_reference_date_is_fixed(self) -> None:
        default = inspect.signature(classify).parameters["reference_date"].default
        assert default == DEFAULT_REFERENCE_DATE == date(2025, 1, 1)


class TestClassifyInvalid:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            pytest.param(None, Reason.ID_INVALID_FORMAT, id="none"),
            pytest.param(float("nan"), Reason.ID_INVALID_FORMAT, id="nan"),
            pytest.param("", Reason.ID_INVALID_FORMAT, id="empty"),
            pytest.param("   ", Reason.ID_INVALID_FORMAT, id="blank"),
            pytest.param("okänd", Reason.ID_INVALID_FORMAT, id="word"),
            pytest.param(PNR[:11], Reason.ID_INVALID_FORMAT, id="eleven-digits"),
            pytest.param(PNR + "0", Reason.ID_INVALID_FORMAT, id="thirteen-digits"),
            pytest.param(PNR[:10] + "O" + PNR[11], Reason.ID_INVALID_FORMAT, id="letter-O-for-zero"),
            pytest.param(PNR[:8] + "--" + PNR[8:], Reason.ID_INVALID_FORMAT, id="double-hyphen"),
            pytest.param("١٨٢٥٠٦١٥١٢٣٤", Reason.ID_INVALID_FORMAT, id="non-ascii-digits"),
            pytest.param(make_personnummer(BIRTH, 0), Reason.ID_INVALID_FORMAT, id="serial-000"),
            pytest.param(make_samordningsnummer(BIRTH, 0), Reason.ID_INVALID_FORMAT, id="samordning-serial-000"),
            pytest.param(bad_check(PNR), Reason.ID_INVALID_CHECKSUM, id="checksum"),
            pytest.param(bad_check(SAMORD), Reason.ID_INVALID_CHECKSUM, id="samordning-checksum"),
            pytest.param(bad_check(STHLM), Reason.ID_INVALID_CHECKSUM, id="stockholm-checksum"),
            pytest.param(bad_check("191212121212"), Reason.ID_INVALID_CHECKSUM, id="test-number-checksum"),
            pytest.param(with_check("18251315123"), Reason.ID_INVALID_DATE, id="month-13"),
            pytest.param(with_check("18250015123"), Reason.ID_INVALID_DATE, id="month-00"),
            pytest.param(with_check("18250230123"), Reason.ID_INVALID_DATE, id="february-30"),
            pytest.param(with_check("18250229123"), Reason.ID_INVALID_DATE, id="february-29-not-leap"),
            pytest.param(with_check("18000229123"), Reason.ID_INVALID_DATE, id="february-29-1800"),
            pytest.param(with_check("18250431123"), Reason.ID_INVALID_DATE, id="april-31"),
            pytest.param(with_check("18250600123"), Reason.ID_INVALID_DATE, id="day-00"),
            pytest.param(with_check("18250660123"), Reason.ID_INVALID_DATE, id="day-60"),
            pytest.param(with_check("18250291123"), Reason.ID_INVALID_DATE, id="samordning-february-31"),
            pytest.param(with_check("18250692123"), Reason.ID_INVALID_DATE, id="day-92"),
            pytest.param(with_check("17990615123"), Reason.ID_INVALID_DATE, id="year-before-1800"),
            pytest.param(with_check("18251345123"), Reason.ID_INVALID_DATE, id="carelink-month-13"),
            pytest.param(bad_check(CARELINK), Reason.ID_INVALID_CHECKSUM, id="carelink-bad-luhn"),
            pytest.param(bad_check(STHLM), Reason.ID_INVALID_CHECKSUM, id="stockholm-bad-luhn"),
            pytest.param(bad_check(VGR), Reason.ID_INVALID_CHECKSUM, id="vgr-bad-luhn"),
            pytest.param("18251301K12" + _vgr_digit("251301", "K", "12"), Reason.ID_INVALID_DATE, id="vgr-month-13"),
        ],
    )
    def test_classify_invalid(self, raw: object, reason: str) -> None:
        assert one(raw) == (IdType.INVALID.value, reason, None)

    def test_classify_format_before_checksum_before_date(self) -> None:
        serial_000_bad_check = bad_check(make_personnummer(BIRTH, 0))
        month_13_bad_check = bad_check(with_check("18251315123"))
        assert one(serial_000_bad_check)[1] == Reason.ID_INVALID_FORMAT
        assert one(month_13_bad_check)[1] == Reason.ID_INVALID_CHECKSUM


class TestClassifyFrame:
    def test_classify_keeps_index_and_columns(self) -> None:
        values = pd.Series([PNR, None, VGR], index=["a", "b", "c"], dtype=object)
        out = classify(values)
        assert list(out.columns) == ["id_type", "reason", "normalised", "scheme"]
        assert list(out.index) == ["a", "b", "c"]
        assert all(dtype == np.dtype(object) for dtype in out.dtypes)
        assert out.loc["a", "reason"] is None
        assert out.loc["b", "normalised"] is None

    def test_classify_empty_series(self) -> None:
        out = classify(pd.Series([], dtype=object))
        assert out.empty
        assert list(out.columns) == ["id_type", "reason", "normalised", "scheme"]

    def test_classify_string_dtype(self) -> None:
        out = classify(pd.Series([PNR, None], dtype="string"))
        assert out["id_type"].tolist() == [IdType.PERSONNUMMER.value, IdType.INVALID.value]

    def test_classify_ten_thousand_rows_vectorised(self) -> None:
        rnd = random.Random(5)
        values, kinds, reasons = [], [], []
        makers = [
            (lambda b, s: make_personnummer(b, s), IdType.PERSONNUMMER, None),
            (lambda b, s: make_personnummer(b, s)[:8] + "-" + make_personnummer(b, s)[8:], IdType.PERSONNUMMER, None),
            (lambda b, s: make_samordningsnummer(b, s), IdType.SAMORDNINGSNUMMER, None),
            (lambda b, s: make_reservnummer_sthlm(b.year, s * 7), IdType.RESERVNUMMER, None),
            (lambda b, s: make_reservnummer_vgr(b, "KMX"[s % 3], 6 + s % 84), IdType.RESERVNUMMER, None),
            (lambda b, s: make_reservnummer_carelink(b.year, b.month, 32 + s % 28, s), IdType.RESERVNUMMER, None),
            (lambda b, s: bad_check(make_personnummer(b, s)), IdType.INVALID, Reason.ID_INVALID_CHECKSUM),
            (lambda b, s: make_personnummer(b, 0), IdType.INVALID, Reason.ID_INVALID_FORMAT),
            (lambda b, s: make_personnummer(b, s)[:11], IdType.INVALID, Reason.ID_INVALID_FORMAT),
            (lambda b, s: "191212121212", IdType.TEST_NUMBER, None),
        ]
        for _ in range(10_000):
            birth = date.fromordinal(date(1800, 1, 1).toordinal() + rnd.randrange(11_000))
            make, kind, reason = makers[rnd.randrange(len(makers))]
            values.append(make(birth, rnd.randint(1, 999)))
            kinds.append(kind.value)
            reasons.append(reason)
        series = pd.Series(values, index=np.arange(10_000) * 3, dtype=object)
        started = time.perf_counter()
        out = classify(series)
        elapsed = time.perf_counter() - started
        assert out["id_type"].tolist() == kinds
        assert out["reason"].tolist() == reasons
        assert (out.index == series.index).all()
        valid = out["reason"].isna()
        assert out.loc[valid, "normalised"].str.len().isin([12]).all()
        assert elapsed < 5, f"classify took {elapsed:.2f} s for 10 000 rows"


class TestLuhn:
    @pytest.mark.parametrize(
        ("digits", "ok"),
        [
            pytest.param("1212121212", True, id="test-number"),
            pytest.param("1212121213", False, id="wrong-check"),
            pytest.param(PNR[2:], True, id="made"),
            pytest.param("12121212a2", False, id="letter"),
            pytest.param("", False, id="empty"),
            pytest.param("5", False, id="one-digit"),
        ],
    )
    def test_luhn_ok(self, digits: str, ok: bool) -> None:
        assert luhn_ok(digits) is ok

    def test_luhn_ok_rejects_non_strings(self) -> None:
        assert luhn_ok(1212121212) is False  # type: ignore[arg-type]


class TestMakers:
    def test_make_personnummer_has_check_digit(self) -> None:
        number = make_personnummer(date(1812, 3, 4), 56)
        assert number[:11] == "18120304056"
        assert luhn_ok(number[2:])

    def test_make_samordningsnummer_adds_sixty_to_day(self) -> None:
        assert make_samordningsnummer(date(1812, 3, 4), 56)[6:8] == "64"

    def test_make_reservnummer_sthlm_shape(self) -> None:
        number = make_reservnummer_sthlm(1812, 42)
        assert number.startswith("99181200042") and len(number) == 12
        assert luhn_ok(number[4:])  # Luhn over positions 5-11

    def test_make_reservnummer_vgr_shape(self) -> None:
        assert make_reservnummer_vgr(date(1812, 3, 4), "M", 7) == "18120304M07" + _vgr_digit("120304", "M", "07")

    def test_make_reservnummer_carelink_day_field(self) -> None:
        assert make_reservnummer_carelink(1812, 3, 40, 7)[:11] == "18120340007"

    @pytest.mark.parametrize(
        ("call", "match"),
        [
            pytest.param(lambda: make_personnummer(BIRTH, 1000), "serial must be 0-999", id="serial-high"),
            pytest.param(lambda: make_personnummer(BIRTH, -1), "serial must be 0-999", id="serial-negative"),
            pytest.param(lambda: make_reservnummer_sthlm(1825, 100000), "serial must be 0-99999", id="sthlm"),
            pytest.param(lambda: make_reservnummer_vgr(BIRTH, "Å", 1), "must be one of K, M, X", id="vgr-letter"),
            pytest.param(lambda: make_reservnummer_carelink(1825, 6, 31, 1), "day_code must be 32-59", id="day"),
            pytest.param(lambda: make_reservnummer_carelink(1825, 13, 40, 1), "month must be 1-12", id="month"),
        ],
    )
    def test_makers_reject_out_of_range(self, call, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            call()

    def test_idtype_is_str_enum(self) -> None:
        assert isinstance(IdType.PERSONNUMMER, str)
        assert IdType("reservnummer") is IdType.RESERVNUMMER
