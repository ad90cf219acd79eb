"""The hospital-shaped record model end to end: map -> package -> validate (record.xsd) -> reconcile.

Each new entity (transfer, procedure, observation, order) and each new field of the older ones
(death, diagnosis rank and text, medication route/unit/frequency/start/stop, lab reference range)
is mapped from a source table, packed, validated, and reconciled: the content fingerprints of the
source rows equal those read back from the package's record files, and the read-back sample's
field-by-field comparison finds nothing. Every coded field carries its code system and version as
attributes of its element; an invalid code in a new coded field is flagged and archived, never dropped.
Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from decommission.errors import MappingError
from decommission.mapping.identity import make_personnummer
from decommission.mapping.transform import MapResult, map_partition
from decommission.model import CODED, ENTITIES, FINDINGS_FILE
from decommission.package import records, sip
from decommission.package.records import ELEMENTS, camel
from decommission.plan.mapping_spec import MappingSpec, load_spec
from decommission.reconcile import breakdown
from decommission.reconcile.digest import compared_fields
from decommission.reconcile.package_digests import RecordReader, owners_of
from decommission.reconcile.readback import _render, compare, parse_record
from decommission.validate.tarindex import patient_records
from decommission.validate.validator import validate_package
from tests.decommission.fixtures import make_context, patient_table

NS = {"r": records.NS}
NEW_ENTITIES = ("transfer", "procedure", "observation", "order")
PNR = [make_personnummer(dt.date(1950, 1, 1), 241), make_personnummer(dt.date(1961, 6, 2), 378)]

SPEC = {
    "system": "sjukhus",
    "timezone": "Europe/Stockholm",
    "patient_table": "pat",
    "code_systems": {"vitalparametrar": {"title": "the ward's own vital sign codes", "codes": ["PULS", "BTS", "SPO2"]}},
    "tables": {
        "pat": patient_table(
            death_date={"column": "dod", "transform": "date"},
            death_cause={"column": "dodsorsak"},
            death_cause_system={"value": "icd10se"},
            death_cause_system_version={"value": "2024"},
        ),
        "vtf": {
            "entity": "case",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "care_unit": {"column": "enhet"},
                "start_time": {"column": "inskriven", "transform": "local_time"},
                "admission_source": {"column": "kom_fran"},
                "discharge_destination": {"column": "gick_till"},
            },
        },
        "flytt": {
            "entity": "transfer",
            "key": ["vtf", "rad"],
            "key_prefix": "flytt-",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "care_unit": {"column": "enhet"},
                "event": {"column": "handelse"},
                "start_time": {"column": "fran", "transform": "local_time"},
                "end_time": {"column": "till", "transform": "local_time"},
            },
        },
        "diag": {
            "entity": "diagnosis",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "code": {"column": "kod", "transform": "trim"},
                "code_system": {"value": "icd10se"},
                "rank": {"column": "rang"},
                "text": {"column": "text"},
            },
            "rules": [{"rule": "code", "column": "kod", "system": "icd10se"}],
        },
        "atg": {
            "entity": "procedure",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "care_unit": {"column": "enhet"},
                "code": {"column": "kva"},
                "code_system": {"value": "kva"},
                "code_system_version": {"value": "2024"},
                "text": {"column": "text"},
                "rank": {"column": "rang"},
                "start_time": {"column": "start", "transform": "local_time"},
                "end_time": {"column": "slut", "transform": "local_time"},
            },
            "rules": [{"rule": "code", "column": "kva", "system": "kva"}],
        },
        "lm": {
            "entity": "medication",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "atc": {"column": "atc"},
                "atc_system": {"value": "atc"},
                "atc_system_version": {"value": "2025"},
                "product": {"column": "preparat"},
                "dose": {"column": "dos"},
                "route": {"column": "vag"},
                "unit": {"column": "enhet"},
                "frequency": {"column": "frekvens"},
                "start_time": {"column": "start", "transform": "local_time"},
                "stop_time": {"column": "stopp", "transform": "local_time"},
            },
            # no rule: the field's code system implies one (every coded field is checked)
        },
        "lab": {
            "entity": "lab_result",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "code": {"column": "npu"},
                "code_system": {"value": "npu"},
                "value": {"column": "varde"},
                "unit": {"column": "enhet"},
                "time": {"column": "tid", "transform": "local_time"},
                "reference_low": {"column": "ref_lag"},
                "reference_high": {"column": "ref_hog"},
                "reference_range": {"column": "ref"},
                "abnormal_flag": {"column": "avvikande"},
            },
        },
        "obs": {
            "entity": "observation",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "code": {"column": "kod"},
                "code_system": {"value": "vitalparametrar"},
                "code_system_version": {"value": "1"},
                "name": {"column": "namn"},
                "value": {"column": "varde"},
                "unit": {"column": "enhet"},
                "reference_low": {"column": "ref_lag"},
                "reference_high": {"column": "ref_hog"},
                "abnormal_flag": {"column": "avvikande"},
                "time": {"column": "tid", "transform": "local_time"},
            },
        },
        "best": {
            "entity": "order",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "patient_key": {"column": "pat"},
                "case_id": {"column": "vtf"},
                "order_type": {"column": "typ"},
                "code": {"column": "kod"},
                "code_system": {"column": "kodverk", "lookup": {"N": "npu", "K": "kva"}},
                "code_system_version": {"value": "2024"},
                "text": {"column": "text"},
                "ordering_unit": {"column": "bestallare"},
                "performing_unit": {"column": "utforare"},
                "status": {"column": "status"},
                "time": {"column": "bestalld", "transform": "local_time"},
                "completed_time": {"column": "klar", "transform": "local_time"},
            },
        },
    },
}


def source_tables() -> dict[str, pa.Table]:
    """Two patients; in every new coded field one row holds an invalid code (the last of its table)."""
    t = "2024-03-31 0{}:30:00"  # around the spring change: 02:30 does not exist (flagged, converted as documented)
    return {
        "pat": pa.table(
            {
                "id": [1, 2],
                "pnr": PNR,
                "dod": [None, "2024-04-02"],
                "dodsorsak": [None, "I21.X9Z"],  # invalid ICD-10-SE: flagged, archived as written
            }
        ),
        "vtf": pa.table(
            {
                "id": [10, 20],
                "pat": [1, 2],
                "enhet": ["Avd 41 Kirurgi", "IVA"],
                "inskriven": ["2024-03-30 10:00:00", "2024-04-01 08:00:00"],
                "kom_fran": ["Akutmottagningen", "Hemmet"],
                "gick_till": ["Hemmet", "Avliden"],
            }
        ),
        "flytt": pa.table(
            {
                "vtf": [10, 10, 20],
                "rad": [1, 2, 1],
                "_row_key": ["flytt-10-1", "flytt-10-2", "flytt-20-1"],  # made at extraction
                "pat": [1, 1, 2],
                "enhet": ["Akutmottagningen", "Avd 41 Kirurgi", "IVA"],
                "handelse": ["admission", "transfer", "inskrivning"],
                "fran": ["2024-03-30 10:00:00", t.format(1), "2024-04-01 08:00:00"],
                "till": [t.format(1), None, "2024-04-02 05:10:00"],
            }
        ),
        "diag": pa.table(
            {
                "id": [1, 2, 3],
                "pat": [1, 1, 2],
                "vtf": [10, 10, 20],
                "kod": ["K35.8  ", "E11.9", "I21.9"],
                "rang": ["huvud", "bi", "1"],
                "text": ["Akut appendicit", "Diabetes typ 2", "Akut hjärtinfarkt"],
            }
        ),
        "atg": pa.table(
            {
                "id": [1, 2],
                "pat": [1, 2],
                "vtf": [10, 20],
                "enhet": ["Operation 1", "IVA"],
                "kva": ["JEA01", "XYZ"],  # the second is no KVÅ code
                "text": ["Appendektomi", "Okänd åtgärd"],
                "rang": ["1", "1"],
                "start": ["2024-03-30 13:00:00", "2024-04-01 09:00:00"],
                "slut": ["2024-03-30 13:45:00", None],
            }
        ),
        "lm": pa.table(
            {
                "id": [1, 2],
                "pat": [1, 2],
                "vtf": [10, None],
                "atc": ["N02BE01", "Q02BE01"],  # the second is no ATC code at any level
                "preparat": ["Alvedon", "Okänt"],
                "dos": ["1 g", "1"],
                "vag": ["oral", "iv"],
                "enhet": ["g", "st"],
                "frekvens": ["x 4", "vb"],
                "start": ["2024-03-30 14:00:00", "2024-04-01 09:00:00"],
                "stopp": ["2024-04-03 08:00:00", None],
            }
        ),
        "lab": pa.table(
            {
                "id": [1, 2],
                "pat": [1, 2],
                "npu": ["NPU03230", "NPU19748"],
                "varde": ["3,2", "<0.5"],
                "enhet": ["mmol/L", "mg/L"],
                "tid": ["2024-03-30 11:00:00", "2024-04-01 08:30:00"],
                "ref_lag": ["3,5", None],
                "ref_hog": ["5,0", None],
                "ref": [None, "<5"],
                "avvikande": ["L", None],
            }
        ),
        "obs": pa.table(
            {
                "id": [1, 2, 3],
                "pat": [1, 1, 2],
                "vtf": [10, 10, 20],
                "kod": ["PULS", "SPO2", "TEMP"],  # TEMP is not in the ward's list
                "namn": ["Puls", "Saturation", "Temperatur"],
                "varde": ["112", "94", "38,5"],
                "enhet": ["/min", "%", "°C"],
                "ref_lag": ["50", "95", "36,0"],
                "ref_hog": ["100", None, "37,5"],
                "avvikande": ["H", "L", "H"],
                "tid": ["2024-03-30 10:05:00", "2024-03-30 10:05:00", "2024-04-01 08:05:00"],
            }
        ),
        "best": pa.table(
            {
                "id": [1, 2, 3],
                "pat": [1, 1, 2],
                "vtf": [10, 10, 20],
                "typ": ["order", "remiss", "order"],
                "kod": ["NPU03230", "JEA01", "NPU9"],  # the third is no NPU code
                "kodverk": ["N", "K", "N"],
                "text": ["Kalium", "Remiss för appendektomi", "Troponin"],
                "bestallare": ["Akutmottagningen", "Akutmottagningen", "IVA"],
                "utforare": ["Klinisk kemi", "Kirurgkliniken", "Klinisk kemi"],
                "status": ["utförd", "utförd", "makulerad"],
                "bestalld": ["2024-03-30 10:10:00", "2024-03-30 10:20:00", "2024-04-01 08:10:00"],
                "klar": ["2024-03-30 11:00:00", "2024-03-30 13:00:00", None],
            }
        ),
    }


#: the invalid code in each table with one: flagged, kept
INVALID = {"pat": 1, "atg": 1, "lm": 1, "obs": 1, "best": 1}


def map_all(tmp: Path, tables: dict[str, pa.Table] | None = None) -> tuple[MappingSpec, MapResult, Path]:
    spec = MappingSpec.model_validate(SPEC)
    tables = source_tables() if tables is None else tables
    out = tmp / "mapped"
    return spec, map_partition(spec, lambda t: tables[t], out), out


def build(tmp: Path, mapped: Path, name: str = "out") -> sip.PackageResult:
    return sip.build_package(
        mapped={e: mapped / f"{e}.parquet" for e in ENTITIES},
        context=make_context(tmp / f"docs-{name}", system_id="sjukhus"),
        partition_id="p0001",
        out_dir=tmp / name,
        directory=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[MappingSpec, MapResult, Path, sip.PackageResult]:
    tmp = tmp_path_factory.mktemp("hospital")
    spec, result, mapped = map_all(tmp)
    return spec, result, mapped, build(tmp, mapped)


def record_roots(package: sip.PackageResult) -> list[etree._Element]:
    return [etree.fromstring(data) for _key, data in patient_records(package.container)]


def test_every_row_of_every_new_entity_is_archived_an_invalid_code_flagged_not_dropped(run):
    spec, result, mapped, package = run
    tables = source_tables()
    assert result.extracted == result.mapped == {name: tables[name].num_rows for name in spec.tables}
    assert result.disposed == {}
    flagged = {name: reasons.get("CODE_INVALID", 0) for name, reasons in result.flagged.items()}
    assert {n: k for n, k in flagged.items() if k} == INVALID
    findings = pq.read_table(mapped / FINDINGS_FILE).to_pylist()
    assert {(f["source_table"], f["disposition"]) for f in findings if f["reason"] == "CODE_INVALID"} == {
        (name, "keep_flagged") for name in INVALID
    }
    for entity in NEW_ENTITIES:
        assert package.counts[entity] == pq.read_metadata(mapped / f"{entity}.parquet").num_rows > 0
    # the invalid codes are in the records as the source wrote them, each with its flag
    roots = record_roots(package)
    flagged_codes = {
        (etree.QName(code.getparent()).localname, code.text)
        for root in roots
        for code in root.iter()
        if code.getparent() is not None
        and code.getparent().find("r:quality/r:flag[@reason='CODE_INVALID']", NS) is not None
        and etree.QName(code).localname in {camel(c) for coded in CODED.values() for c in coded}
    }
    assert flagged_codes == {
        ("patient", "I21.X9Z"),
        ("procedure", "XYZ"),
        ("medication", "Q02BE01"),
        ("observation", "TEMP"),
        ("order", "NPU9"),
    }


def test_the_package_is_valid_against_record_xsd_and_the_records_in_the_model_order(run):
    _spec, _result, _mapped, package = run
    report = validate_package(package.container)
    assert report.ok, [(p.requirement, p.path, p.message) for p in report.problems]
    for root in record_roots(package):
        containers = [etree.QName(child).localname for child in root][1:]
        assert containers == [ELEMENTS[e][0] for e in ENTITIES if e != "patient"]


def test_every_coded_field_carries_its_code_system_and_version_as_attributes(run):
    _spec, _result, _mapped, package = run
    roots = record_roots(package)
    expected = {
        ("patient", "deathCause"): ("icd10se", "2024"),
        ("procedure", "code"): ("kva", "2024"),
        ("medication", "atc"): ("atc", "2025"),
        ("observation", "code"): ("vitalparametrar", "1"),
        ("order", "code"): ({"npu", "kva"}, "2024"),
    }
    for (element, child), (system, version) in expected.items():
        nodes = [n for root in roots for n in root.iter(f"{{{records.NS}}}{element}")]
        codes = [n.find(f"r:{child}", NS) for n in nodes]
        codes = [c for c in codes if c is not None]
        assert codes, (element, child)
        systems = {c.get("codeSystem") for c in codes}
        assert systems == (system if isinstance(system, set) else {system}), (element, child)
        assert {c.get("codeSystemVersion") for c in codes} == {version}, (element, child)
    # the model: every coded column of every entity, the new ones included, has both columns beside it
    for entity in ("patient", "procedure", "medication", "observation", "order"):
        assert CODED[entity], entity


def test_new_fields_are_written_as_the_source_holds_them(run):
    _spec, _result, _mapped, package = run
    text = b"".join(data for _key, data in patient_records(package.container)).decode("utf-8")
    root = etree.fromstring(dict(patient_records(package.container))["2"])
    assert root.findtext("r:patient/r:deathDate", namespaces=NS) == "2024-04-02"
    lab = root.find("r:labResults/r:labResult", NS)
    assert lab.findtext("r:value", namespaces=NS) == "<0.5"
    assert lab.findtext("r:referenceRange", namespaces=NS) == "<5"
    assert "<referenceLow>3,5</referenceLow>" in text and "<abnormalFlag>L</abnormalFlag>" in text
    assert "<rank>huvud</rank>" in text and "<text>Akut appendicit</text>" in text
    assert "<route>oral</route>" in text and "<frequency>x 4</frequency>" in text
    assert "<stopTime>2024-04-03T06:00:00Z</stopTime>" in text
    assert "<dischargeDestination>Avliden</dischargeDestination>" in text
    assert '<transfer id="flytt-10-2" caseId="10">' in text
    assert "<orderType>remiss</orderType>" in text and "<performingUnit>Kirurgkliniken</performingUnit>" in text


def test_fingerprints_of_source_and_package_agree_for_every_table(run):
    spec, _result, mapped, package = run
    tables = source_tables()
    fates = breakdown._Fates(
        [pq.read_table(mapped / FINDINGS_FILE, columns=["source_table", "source_key", "disposition"])]
    )
    source = breakdown._tally_all(spec, iter(tables.items()), fates, ids=True)
    reader = RecordReader(spec, owners_of(spec, source["ids"]))
    for _key, record in patient_records(package.container):
        reader.read(record)
    for name in spec.tables:
        assert source["fp_rows"][name] == reader.rows[name] == tables[name].num_rows, name
        assert source["fp"][name] == reader.fp[name] % 2**64, name
    # the new fields are among those compared
    compared = {name: set(compared_fields(t)) for name, t in spec.tables.items()}
    assert {"reference_low", "reference_high", "abnormal_flag", "value", "unit", "name", "code"} <= compared["obs"]
    assert {"route", "frequency", "start_time", "stop_time", "atc"} <= compared["lm"]
    assert {"order_type", "ordering_unit", "performing_unit", "status", "completed_time"} <= compared["best"]
    assert {"event", "care_unit", "start_time", "end_time"} <= compared["flytt"]
    assert {"code", "rank", "text", "start_time"} <= compared["atg"]
    assert {"death_cause"} <= compared["pat"]


def test_the_validator_hands_every_record_file_to_the_digests_read_while_validating(run):
    spec, _result, mapped, package = run
    tables = source_tables()
    fates = breakdown._Fates(
        [pq.read_table(mapped / FINDINGS_FILE, columns=["source_table", "source_key", "disposition"])]
    )
    owners = owners_of(spec, breakdown._tally_all(spec, iter(tables.items()), fates, ids=True)["ids"])
    during, after = RecordReader(spec, owners), RecordReader(spec, owners)
    assert validate_package(package.container, read_record=during.read).ok
    for _key, record in patient_records(package.container):
        after.read(record)
    assert sum(during.rows.values()) > 0 and (during.fp, during.rows) == (after.fp, after.rows)


def test_a_changed_value_of_a_new_field_changes_its_table_fingerprint_only(run):
    spec, _result, _mapped, package = run
    one, other = (RecordReader(spec, owners_of(spec, {})) for _ in range(2))
    for _key, record in patient_records(package.container):
        one.read(record)
        other.read(record.replace(b"<abnormalFlag>H</abnormalFlag>", b"<abnormalFlag>N</abnormalFlag>"))
    assert one.fp["obs"] != other.fp["obs"]
    assert {n: v for n, v in one.fp.items() if n != "obs"} == {n: v for n, v in other.fp.items() if n != "obs"}


def test_the_read_back_comparison_finds_every_new_field_equal(run):
    _spec, _result, mapped, package = run
    expected = {
        entity: {
            str(r[ENTITIES[entity].key]): _render(entity, r)
            for r in pq.read_table(mapped / f"{entity}.parquet").to_pylist()
        }
        for entity in ENTITIES
    }
    archived: dict[str, dict] = {entity: {} for entity in ENTITIES}
    for _key, record in patient_records(package.container):
        for entity, found in parse_record(record).items():
            archived[entity].update(found)
    assert compare(expected, archived) == []
    assert archived["patient"]["2"]["death_cause_system"] == "icd10se"
    assert archived["medication"]["1"]["atc_system_version"] == "2025"


def test_the_same_input_gives_byte_identical_packages(run, tmp_path):
    _spec, _result, _mapped, package = run
    _spec2, _result2, mapped2 = map_all(tmp_path)
    again = build(tmp_path, mapped2, "again")
    assert again.sha256 == package.sha256


@pytest.mark.parametrize(
    ("table", "field", "spec", "message"),
    [
        ("atg", "code_system", {"value": "kvaa"}, "tables.atg.fields.code_system: unknown code system 'kvaa'"),
        (
            "best",
            "code_system",
            {"column": "kodverk", "lookup": {"N": "npu", "X": "icd11"}},
            "tables.best.fields.code_system: unknown code system 'icd11'",
        ),
        ("atg", "code_system", {"value": "icd10se"}, "the code rule on column 'kva' checks 'kva'"),
    ],
)
def test_a_coded_fields_system_must_be_known_and_agree_with_its_rule(table, field, spec, message, tmp_path):
    import yaml

    raw = {**SPEC, "tables": {**SPEC["tables"]}}
    raw["tables"][table] = {**SPEC["tables"][table], "fields": {**SPEC["tables"][table]["fields"], field: spec}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(MappingError, match=message) as caught:
        load_spec(path)
    assert "line " in str(caught.value)


def test_a_coded_field_with_a_declared_system_is_checked_without_a_rule():
    spec = MappingSpec.model_validate(SPEC)
    implied = {
        (name, r.column, r.system, tuple(sorted((r.systems or {}).items())))
        for name, t in spec.tables.items()
        for r in t.rules
        if r.rule == "code"
    }
    assert ("lm", "atc", "atc", ()) in implied
    assert ("pat", "dodsorsak", "icd10se", ()) in implied
    assert ("obs", "kod", "vitalparametrar", ()) in implied
    assert ("best", "kod", None, (("K", "kva"), ("N", "npu"))) in implied
    # an explicit rule is not doubled
    assert sum(1 for r in spec.tables["atg"].rules if r.rule == "code") == 1


def test_the_demo_anaesthesia_asa_class_is_an_observation_in_a_declared_code_system():
    spec = load_spec(Path(__file__).resolve().parents[2] / "include" / "mappings" / "anestesi.yaml")
    asa = spec.tables["operation_asa"]
    assert asa.entity == "observation" and spec.source_table("operation_asa") == "operation"
    assert asa.fields["code"].column == "asa_klass" and asa.fields["code_system"].value == "asa"
    system = spec.code_system("asa")
    from decommission.mapping import codes

    valid = codes.valid(system, pa.array(["ASA 1", "ASA 2E", "ASA 6", "ASA 7", "III", ""], pa.string()))
    assert list(valid) == [True, True, True, False, False, False]
