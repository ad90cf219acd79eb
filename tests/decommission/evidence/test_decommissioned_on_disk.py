"""What the DAG's doc says about a decommissioned system, read from the evidence folder only (no database at parse)."""

from __future__ import annotations

import json

from decommission.evidence.records import decommissioned_on_disk


def _write(folder, name, record):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(record), encoding="utf-8")


def test_no_record_no_status(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    assert decommissioned_on_disk("vas") is None


def test_the_latest_version_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    folder = tmp_path / "vas" / "evidence"
    _write(folder, "contract-exit.json", {"contract_end_date": "2026-09-10"})
    _write(folder, "contract-exit-v2.json", {"contract_end_date": "2026-10-01"})
    assert decommissioned_on_disk("vas") == {"contract_end_date": "2026-10-01"}


def test_a_withdrawn_record_is_no_exit(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    folder = tmp_path / "vas" / "evidence"
    _write(folder, "contract-exit.json", {"contract_end_date": "2026-09-10"})
    _write(folder, "contract-exit.withdrawn.json", {"status": "withdrawn"})
    assert decommissioned_on_disk("vas") is None


def test_the_dag_doc_says_so(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    _write(
        tmp_path / "vas" / "evidence",
        "contract-exit.json",
        {"approved_on": "2025-09-10", "contract_end_date": "2026-09-10"},
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "dags"))
    try:
        import decommission_programme as dags
    finally:
        sys.path.pop(0)
    vas = dags.PLAN.system("vas")
    doc = dags._doc(vas)
    assert "**Decommissioned (avvecklad)**: contract-exit record of 2025-09-10, contract ends 2026-09-10" in doc
    assert "refused unless the plan reopens the system" in doc
