"""Identity schemes as plan data: every published example accepted under its scheme, a wrong check refused,
a region's own scheme added in the spec, and a refused identifier keeping its patient's record."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from decommission.errors import MappingError
from decommission.mapping.identity import classify
from decommission.mapping.transform import map_partition
from decommission.plan.identity_schemes import BUILTIN, IdentityScheme, chosen
from decommission.plan.mapping_spec import MappingSpec, load_spec
from tests.decommission.fixtures import patient_table

#: (scheme, published example): HL7 Sweden basprofiler (SEBasePatient) and Inera's list of local reserve identities
PUBLISHED = [
    ("reservnummer_national", "22950606-FH20"),
    ("reservnummer_stockholm", "991981000010"),
    ("reservnummer_stockholm", "991945000023"),
    ("reservnummer_stockholm", "991993000032"),
    ("reservnummer_vgr", "19810829M071"),
    ("reservnummer_vgr", "19450829K088"),
    ("reservnummer_vgr", "19930829X802"),
    ("reservnummer_varmland", "19810829SU3A"),
    ("reservnummer_varmland", "19450829SF2B"),
    ("reservnummer_skane", "810829DA1B"),
    ("reservnummer_orebro", "19810829TB1F"),
    ("reservnummer_carelink", "198108320014"),
    ("reservnummer_carelink", "19810832-0014"),  # as legacy systems write a personnummer-shaped number
    ("reservnummer_blekinge", "20200501-AA8A"),
    ("reservnummer_vasternorrland", "20100101014R"),
    ("reservnummer_sormland1", "19600606AA1G"),
    ("reservnummer_sormland2", "18500101N123"),
]


def _one(
    value: str, schemes: tuple[IdentityScheme, ...] | None = None
) -> tuple[str, str | None, str | None, str | None]:
    row = classify(pd.Series([value], dtype=object), schemes=schemes).iloc[0]
    return row["id_type"], row["reason"], row["scheme"], row["normalised"]


@pytest.mark.parametrize(("scheme", "example"), PUBLISHED, ids=[f"{s}-{e}" for s, e in PUBLISHED])
def test_each_published_example_is_accepted_as_written_under_its_scheme(scheme, example):
    # a region lists its own scheme first: Sörmland's first format has Blekinge's shape
    order = chosen((scheme,), ())
    assert _one(example, order) == ("reservnummer", None, scheme, example)
    assert _one(example)[:2] == ("reservnummer", None)  # the default order accepts it too


def _wrong_check(example: str) -> str:
    return example[:-1] + str((int(example[-1]) + 1) % 10)


@pytest.mark.parametrize(
    "example",
    ["991981000010", "19810829M071", "19450829K088", "198108320014"],
    ids=["stockholm", "vgr-m", "vgr-k", "carelink"],
)
def test_a_wrong_check_digit_is_refused(example):
    kind, reason, scheme, normalised = _one(_wrong_check(example))
    assert (kind, reason, normalised) == ("invalid", "ID_INVALID_CHECKSUM", None)
    assert scheme.startswith("reservnummer_")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("19810229M07" + "1", "ID_INVALID_CHECKSUM"),  # 29 February 1981, check digit not recomputed
        ("19810231SU3A", "ID_INVALID_DATE"),  # Värmland: 31 February
        ("20100231014R", "ID_INVALID_DATE"),  # Västernorrland: 31 February
        ("22950606-IH20", "ID_INVALID_FORMAT"),  # the national series has no I (nor O, Q, V, W)
        ("810829GA1B", "ID_INVALID_FORMAT"),  # Skåne: D, E or F
    ],
)
def test_a_scheme_refuses_what_its_format_or_date_does_not_allow(value, reason):
    assert _one(value)[:2] == ("invalid", reason)


def test_every_built_in_scheme_with_a_check_has_a_published_example_tested():
    with_check = {s.name for s in BUILTIN if s.check}
    assert with_check == {"reservnummer_stockholm", "reservnummer_vgr", "reservnummer_carelink"}
    assert {s.name for s in BUILTIN if s.example} <= {name for name, _ in PUBLISHED}


REGION = {
    "name": "reservnummer_norrbotten",
    "title": "a region's own reserve numbers",
    "system": "urn:oid:1.2.752.999.1",
    "pattern": "[0-9]{8}N[0-9]{3}",
    "check": "luhn_letters",
    "check_from": 3,
    "check_to": 11,
    "letter_values": {"N": 4},
    "date_at": 1,
    "example": "19810829N011",
}


def _spec(**extra) -> dict:
    return {
        "system": "region",
        "patient_table": "pat",
        "tables": {
            "pat": patient_table(scheme=True),
            "note": {
                "entity": "document",
                "key": "id",
                "patient_key": "pat",
                "fields": {"document_id": {"column": "id"}, "patient_key": {"column": "pat"}, "text": {"column": "t"}},
            },
        },
    } | extra


def test_a_region_adds_its_own_scheme_and_a_refused_identifier_keeps_the_record(tmp_path):
    # 810829 4 01 -> Luhn digit 1 (the region's letter N valued 4)
    spec = MappingSpec.model_validate(_spec(identity_schemes=[REGION]))
    good, bad = "19810829N011", "19810829N012"
    tables = {
        "pat": pa.table({"id": [1, 2, 3], "pnr": [good, bad, "991981000010"]}),
        "note": pa.table({"id": [1, 2, 3], "pat": [1, 2, 3], "t": ["a", "b", "c"]}),
    }
    result = map_partition(spec, lambda t: tables[t], tmp_path)
    patients = {p["patient_key"]: p for p in pq.read_table(tmp_path / "patient.parquet").to_pylist()}
    assert (patients["1"]["personal_id"], patients["1"]["id_type"], patients["1"]["id_scheme"]) == (
        good,
        "reservnummer",
        "reservnummer_norrbotten",
    )
    assert patients["3"]["id_scheme"] == "reservnummer_stockholm"  # the built-in ones still apply
    # refused: kept as written, flagged, scheme named; the patient's other rows stay in the archive
    assert (patients["2"]["personal_id"], patients["2"]["id_type"], patients["2"]["id_scheme"]) == (
        bad,
        "invalid",
        "reservnummer_norrbotten",
    )
    assert '"ID_INVALID_CHECKSUM"' in patients["2"]["quality"] and '"keep_flagged"' in patients["2"]["quality"]
    assert result.flagged == {"pat": {"ID_INVALID_CHECKSUM": 1}}
    assert sorted(pq.read_table(tmp_path / "document.parquet")["patient_key"].to_pylist()) == ["1", "2", "3"]


def test_the_spec_chooses_the_order_of_the_schemes():
    spec = MappingSpec.model_validate(_spec(id_schemes=["reservnummer_sormland1", "reservnummer_blekinge"]))
    assert [s.name for s in spec.schemes()] == ["reservnummer_sormland1", "reservnummer_blekinge"]
    assert _one("19600606AA1G", spec.schemes())[2] == "reservnummer_sormland1"
    kind, _reason, scheme, _normalised = _one("991981000010", spec.schemes())
    assert (kind, scheme) == ("invalid", None)  # Stockholm's scheme is not chosen


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"id_schemes": ["reservnummer_mars"]}, "unknown identity scheme 'reservnummer_mars'"),
        ({"identity_schemes": [REGION | {"name": "reservnummer_stockholm"}]}, "is a built-in scheme's name"),
        ({"identity_schemes": [REGION | {"example": "19810829X011"}]}, "the example does not match"),
        ({"identity_schemes": [REGION | {"check_to": None}]}, "needs 'check_from' and 'check_to'"),
        ({"identity_schemes": [REGION | {"pattern": "[0-9"}]}, "not a regular expression"),
    ],
)
def test_a_broken_scheme_is_refused_when_the_spec_loads(extra, message, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec(**extra), allow_unicode=True))
    with pytest.raises(MappingError, match=message):
        load_spec(path)


def test_schemes_do_not_take_a_personnummer():
    assert _one("191212121212")[0] == "test_number"
    assert _one(dt.date(1981, 8, 29).strftime("%Y%m%d") + "0000")[:2] == ("invalid", "ID_INVALID_FORMAT")
