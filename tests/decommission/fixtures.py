"""Small mapped-Parquet partitions and package contexts for the packager and validator tests.

Synthetic data only: the personal ids are Skatteverket-style test numbers, the names are made up.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from decommission.model import ENTITIES
from decommission.package.context import PackageContext

CREATED = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.4\n% synthetic remiss\n%%EOF\n"
ATTACHMENT_NAME = "Remiss från vårdcentralen Åsa.pdf"


def ts(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2019, 1, day, hour, 30, tzinfo=dt.UTC)


def _patient(key: str, pnr: str, given: str, family: str, *, protected: bool = False) -> dict:
    return {
        "patient_key": key,
        "personal_id": pnr,
        "id_type": "personnummer",
        "given_name": given,
        "family_name": family,
        "sex": "F" if given.endswith("a") else "M",
        "birth_date": dt.date(int(pnr[:4]), int(pnr[4:6]), int(pnr[6:8])),
        "protected_identity": protected,
        "blocked": False,
        "confidential": protected,
    }


def sample_rows() -> dict[str, list[dict]]:
    """Four patients (keys 2, 10, 1, 3: natural order 1, 2, 3, 10), one with protected identity."""
    return {
        "patient": [
            _patient("2", "191212121212", "Åsa", "Öberg"),
            _patient("10", "199001012384", "Jörgen", "Ärlig", protected=True),
            _patient("1", "198507142391", "Märta", "Ström"),
            _patient("3", "200203042383", "Olle", "Nilsson"),
        ],
        "case": [
            {
                "case_id": "C2",
                "patient_key": "2",
                "care_unit": "Vårdcentral Öjebyn",
                "case_type": "öppenvård",
                "start_time": ts(3),
                "end_time": None,
            },
            {
                "case_id": "C1",
                "patient_key": "2",
                "care_unit": "Akutmottagningen Sunderby",
                "case_type": "akut",
                "start_time": ts(1),
                "end_time": ts(2),
            },
            {
                "case_id": "C10",
                "patient_key": "10",
                "care_unit": "Psykiatri Luleå",
                "case_type": "slutenvård",
                "start_time": ts(5),
                "end_time": None,
            },
        ],
        "document": [
            {
                "document_id": "D2",
                "patient_key": "2",
                "case_id": "C1",
                "care_unit": "Akutmottagningen Sunderby",
                "time": ts(1, 11),
                "title": "Akutanteckning",
                "text": "Patienten söker för yrsel.\nÅter om två veckor.",
                "author": "Dr. Lindén",
            },
            {
                "document_id": "D1",
                "patient_key": "2",
                "case_id": "C1",
                "care_unit": "Akutmottagningen Sunderby",
                "time": ts(1, 10),
                "title": "Inskrivning",
                "text": "Smärta i bröstet <ej hjärta> & trötthet.",
                "author": "Ssk Ärlebäck",
            },
            {
                "document_id": "D3",
                "patient_key": "10",
                "case_id": "C10",
                "care_unit": "Psykiatri Luleå",
                "time": ts(5),
                "title": "Skyddad anteckning",
                "text": "Text för patient med skyddad identitet.",
                "author": "Dr. Öst",
            },
            {
                "document_id": "D4",
                "patient_key": "1",
                "case_id": None,
                "care_unit": None,
                "time": None,
                "title": "Odaterad",
                "text": None,
                "author": None,
            },
        ],
        "diagnosis": [
            {"diagnosis_id": "X1", "patient_key": "2", "case_id": "C1", "code": "R42.9", "time": ts(1)},
        ],
        "lab_result": [
            {
                "result_id": "L1",
                "patient_key": "2",
                "case_id": "C1",
                "code": "NPU02319",
                "analysis": "Hemoglobin",
                "value": "135",
                "unit": "g/L",
                "time": ts(1, 10),
            },
            {
                "result_id": "L2",
                "patient_key": "3",
                "case_id": None,
                "code": "NPU01685",
                "analysis": "Kalium",
                "value": "4,1",
                "unit": "mmol/L",
                "time": ts(7),
            },
        ],
        "attachment": [
            {
                "attachment_id": "A1",
                "patient_key": "2",
                "document_id": "D1",
                "filename": ATTACHMENT_NAME,
                "mimetype": "application/pdf",
                "content": PDF,
            },
            {
                "attachment_id": "A2",
                "patient_key": "2",
                "document_id": "D1",
                "filename": ATTACHMENT_NAME,
                "mimetype": "application/pdf",
                "content": PDF + b"2",
            },
            {
                "attachment_id": "A3",
                "patient_key": "10",
                "document_id": None,
                "filename": "../../etc/191212121212 röntgen.txt",
                "mimetype": "text/plain",
                "content": b"svar\n",
            },
        ],
        "access_log": [
            {"log_id": "G1", "patient_key": "2", "user": "ulla.ek", "event": "läst", "time": ts(2)},
            {"log_id": "G2", "patient_key": "10", "user": "per.åberg", "event": "läst", "time": ts(6)},
        ],
    }


def write_mapped(directory: Path, rows: dict[str, list[dict]] | None = None) -> dict[str, Path]:
    """Write each entity's rows as a Parquet file with the model schema; entities without rows get none."""
    rows = sample_rows() if rows is None else rows
    directory.mkdir(parents=True, exist_ok=True)
    mapped = {}
    for name, entity in ENTITIES.items():
        if name not in rows:
            continue  # e.g. medication: no file at all
        path = directory / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows[name], schema=entity.schema), path)
        mapped[name] = path
    return mapped


def expected_counts(rows: dict[str, list[dict]] | None = None) -> dict[str, int]:
    rows = sample_rows() if rows is None else rows
    return {name: len(rows.get(name, [])) for name in ENTITIES}


def make_context(directory: Path, **changes) -> PackageContext:
    """A context with two documentation files (agreement and mapping spec)."""
    directory.mkdir(parents=True, exist_ok=True)
    agreement = directory / "Leveransöverenskommelse VAS.txt"
    agreement.write_text("Leveransöverenskommelse för VAS, region Norrbotten.\n", encoding="utf-8")
    mapping = directory / "mapping-vas.yaml"
    mapping.write_text("system: vas\nentities: [patient, case, document]\n", encoding="utf-8")
    values = {
        "system_id": "vas",
        "system_name": "VAS Vårdadministrativt system",
        "region_name": "Region Norrbotten",
        "region_id": "SE2321000214",
        "archive_name": "R7 e-Arkiv",
        "submitter_name": "Region Norrbotten, FVIS-programmet",
        "agreement_id": "LO-2025-01",
        "record_status": "NEW",
        "created": CREATED,
        "documentation": (agreement, mapping),
    }
    values.update(changes)
    return PackageContext(**values)


def large_rows(patients: int, documents_per_patient: int = 10) -> dict[str, list[dict]]:
    """A bigger partition for timing: every patient has a case, documents, a lab result and an attachment."""
    rows: dict[str, list[dict]] = {name: [] for name in ENTITIES}
    for i in range(1, patients + 1):
        key = str(1000 + i)
        rows["patient"].append(_patient(key, f"19{50 + i % 50:02d}0101{i % 10000:04d}", "Anna", "Åkesson"))
        rows["case"].append(
            {
                "case_id": f"C{i}",
                "patient_key": key,
                "care_unit": "Vårdcentral",
                "case_type": "öppenvård",
                "start_time": ts(1),
                "end_time": None,
            }
        )
        for d in range(documents_per_patient):
            rows["document"].append(
                {
                    "document_id": f"D{i}-{d}",
                    "patient_key": key,
                    "case_id": f"C{i}",
                    "care_unit": "Vårdcentral",
                    "time": ts(1 + d % 28),
                    "title": "Anteckning",
                    "text": "Patienten mår bättre. " * 20,
                    "author": "Dr. Öst",
                }
            )
        rows["lab_result"].append(
            {
                "result_id": f"L{i}",
                "patient_key": key,
                "case_id": f"C{i}",
                "code": "NPU02319",
                "analysis": "Hemoglobin",
                "value": "140",
                "unit": "g/L",
                "time": ts(2),
            }
        )
        rows["attachment"].append(
            {
                "attachment_id": f"A{i}",
                "patient_key": key,
                "document_id": f"D{i}-0",
                "filename": "remiss.pdf",
                "mimetype": "application/pdf",
                "content": PDF * 50,
            }
        )
        rows["access_log"].append(
            {"log_id": f"G{i}", "patient_key": key, "user": "ulla", "event": "läst", "time": ts(3)}
        )
    return rows


def run_bench_packaging(*args: str, timeout: int) -> dict:
    """``python -m bench.packaging ARGS`` in the repository; its last stdout line, parsed (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.packaging", *args],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def patient_table(*, scheme: bool = False, **fields: dict) -> dict:
    """A mapping spec's patient table ``pat`` (key ``id``, identity number in ``pnr``), with more fields."""
    identity = {
        "patient_key": {"column": "id"},
        "personal_id": {"column": "pnr", "transform": "personal_id"},
        "id_type": {"column": "pnr", "transform": "id_type"},
    }
    if scheme:
        identity["id_scheme"] = {"column": "pnr", "transform": "id_scheme"}
    return {
        "entity": "patient",
        "key": "id",
        "patient_key": "id",
        "fields": identity | fields,
        "rules": [{"rule": "personal_id", "column": "pnr"}],
    }
