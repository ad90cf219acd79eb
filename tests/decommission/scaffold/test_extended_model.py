"""The record model grows (issue 14 item 2, /work/notes/model-extension.md): the scaffold guesses the new
entities and fields from the same name table, and its drafts of the demo sources still load."""

from __future__ import annotations

import json

import pytest

from decommission.__main__ import main
from decommission.model import ENTITIES, Entity
from decommission.plan.mapping_spec import load_spec

_S, _TS, _Q = "string", "timestamp", ("quality", "string")
_CODE = (("code", _S), ("code_system", _S), ("code_system_version", _S))

#: the extended model as agreed (new fields before quality; new entities)
EXTENDED = {
    "medication": Entity(
        "medication",
        "medication_id",
        (
            ("medication_id", _S),
            ("patient_key", _S),
            ("atc", _S),
            ("product", _S),
            ("dose", _S),
            ("time", _TS),
            ("case_id", _S),
            ("atc_system", _S),
            ("atc_system_version", _S),
            ("route", _S),
            ("unit", _S),
            ("frequency", _S),
            ("start_time", _TS),
            ("stop_time", _TS),
            _Q,
        ),
        "time",
    ),
    "procedure": Entity(
        "procedure",
        "procedure_id",
        (("procedure_id", _S), ("patient_key", _S), ("case_id", _S), ("care_unit", _S), *_CODE, ("text", _S))
        + (("rank", _S), ("start_time", _TS), ("end_time", _TS), _Q),
        "start_time",
    ),
    "observation": Entity(
        "observation",
        "observation_id",
        (("observation_id", _S), ("patient_key", _S), ("case_id", _S), *_CODE, ("name", _S), ("value", _S))
        + (("unit", _S), ("reference_low", _S), ("reference_high", _S), ("abnormal_flag", _S), ("time", _TS), _Q),
        "time",
    ),
    "order": Entity(
        "order",
        "order_id",
        (("order_id", _S), ("patient_key", _S), ("case_id", _S), ("order_type", _S), *_CODE, ("text", _S))
        + (("ordering_unit", _S), ("performing_unit", _S), ("status", _S), ("time", _TS), ("completed_time", _TS))
        + (_Q,),
        "time",
    ),
    "transfer": Entity(
        "transfer",
        "transfer_id",
        (("transfer_id", _S), ("patient_key", _S), ("case_id", _S), ("care_unit", _S), ("event", _S))
        + (("start_time", _TS), ("end_time", _TS), _Q),
        "start_time",
    ),
}


@pytest.mark.parametrize(
    ("system", "table", "entity"),
    [("anestesi", "operation", "procedure"), ("lab", "remiss", "order"), ("vas", "lakemedel", "medication")],
)
def test_drafts_of_the_demo_sources_load_on_the_extended_model(system, table, entity, tmp_path, monkeypatch) -> None:
    from demo.generate import build

    for name, e in EXTENDED.items():
        monkeypatch.setitem(ENTITIES, name, e)  # the one dict the spec loader checks against, too
    build(system, str(tmp_path / "source.sqlite"), seed=1, patients=20)
    conn = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "source.sqlite")})
    monkeypatch.setenv(f"AIRFLOW_CONN_LEGACY_{system.upper()}", conn)
    out = tmp_path / f"{system}.yaml"
    assert main(["scaffold", "--conn-id", f"legacy_{system}", "--out", str(out), "--format", "json"]) == 0
    spec = load_spec(out)
    assert spec.tables[table].entity == entity
    if entity == "procedure":  # the operation's note is the procedure's text; its date the start
        assert spec.tables[table].fields["text"].column == "anteckning"
        assert spec.tables[table].fields["start_time"].column == "op_datum"
        assert spec.tables[table].cutoff_column == "op_datum"
    if entity == "order":
        assert spec.tables[table].fields["performing_unit"].column == "avdelning"
    if entity == "medication":
        assert spec.tables[table].fields["atc_system"].value == "atc"
