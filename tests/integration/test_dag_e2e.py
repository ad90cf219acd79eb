"""End to end through ``dag.test()``: a demo system from its test delivery to its contract exit.

The reconciliation figures must equal, exactly, the dirt the generator injected: every dirty row
archived flagged, corrected from the demo's correction list, or disposed of under a demo decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from demo.generate import build, expected_outcome

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


class Responder(threading.Thread):
    """Answers waiting sign-off tasks over the REST API, recording the HTTP status of each answer."""

    def __init__(self, answers: dict[str, tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.answers = answers  # task_id -> (user, option)
        self.statuses: list[tuple[str, str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        from demo.signoff import answer, waiting

        client = TestClient(create_app(apps="core"))
        done: set[tuple[str, str]] = set()
        while not self.stop.is_set():
            for dag_id, run_id, task_id in waiting():
                if (run_id, task_id) in done:
                    continue
                if task_id == "signoff_information_owner":  # someone who is not assigned is refused
                    refused = answer(
                        client, dag_id=dag_id, run_id=run_id, task_id=task_id, username="operator", password="user"
                    )
                    self.statuses.append(("operator", task_id, refused.status_code))
                user, option = self.answers[task_id]
                response = answer(
                    client, dag_id=dag_id, run_id=run_id, task_id=task_id, username=user, password="user", option=option
                )
                self.statuses.append((user, task_id, response.status_code))
                done.add((run_id, task_id))
            time.sleep(0.3)


def _wire_vas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patients: int) -> tuple:
    """Build the VAS demo source (SQLite), wire its connections, return its DAG and dirt report."""
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection

    report = build("vas", str(tmp_path / "vas.sqlite"), seed=11, patients=patients)
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", source_connection(str(tmp_path / "vas.sqlite"), "vas"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_vas")
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    return dag, report


@pytest.fixture
def demo_system(tmp_path, monkeypatch, r7sim, airflow_db):
    """The VAS demo system against a well-behaved r7sim, outputs under tmp_path."""
    dag, report = _wire_vas(tmp_path, monkeypatch, patients=40)
    return dag, report, tmp_path / "out" / "vas"


@pytest.fixture
def demo_system_small(tmp_path, monkeypatch, r7sim, airflow_db):
    """The VAS demo system with 20 patients against a well-behaved r7sim."""
    dag, report = _wire_vas(tmp_path, monkeypatch, patients=20)
    return dag, report, tmp_path / "out" / "vas"


def _run(dag, day: dt.date, milestone: str):
    return dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), run_conf={"milestone": milestone})


def test_vas_from_test_delivery_to_contract_exit(demo_system):
    from decommission.ledger import Ledger

    dag, dirt, out = demo_system
    responder = Responder(
        {
            "signoff_information_owner": ("verksamhetschef", "Approve"),
            "signoff_archivist": ("regionarkivarie", "Approve"),
        }
    )
    responder.start()
    try:
        test_run = _run(dag, dt.date(2025, 3, 3), "test_delivery")
        assert str(test_run.state) == "success"
        states = {ti.task_id: str(ti.state) for ti in test_run.get_task_instances()}
        assert states["signoff_information_owner"] == "skipped" and states["contract_exit"] == "skipped"
        test_packages = sorted(p.stem for p in (out / "packages").glob("*.tar"))
        assert test_packages and all(name.endswith("-test") for name in test_packages)
        assert not [p for p in (out / "packages").iterdir() if p.is_dir()], "only the tar is written"
        with tarfile.open(out / "packages" / f"{test_packages[0]}.tar") as tar:
            mets = tar.extractfile(f"{test_packages[0]}/METS.xml").read().decode("utf-8")
        assert 'RECORDSTATUS="TEST"' in mets

        final = _run(dag, dt.date(2025, 9, 1), "final_delivery")
    finally:
        responder.stop.set()
    assert str(final.state) == "success"
    assert ("operator", "signoff_information_owner", 403) in responder.statuses
    assert ("verksamhetschef", "signoff_information_owner", 200) in responder.statuses
    assert ("regionarkivarie", "signoff_archivist", 200) in responder.statuses

    result = json.loads((out / "reconciliation" / "final_delivery" / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "PASS", result["reasons"]
    from decommission.plan.mapping_spec import load_spec

    expected = expected_outcome(dirt, load_spec(REPO / "include" / "mappings" / "vas.yaml"))
    for kind, by_table in expected.items():
        assert {t: row[kind] for t, row in result["tables"].items() if row[kind]} == by_table, kind
    assert expected["disposed"] and expected["corrected"] and expected["flagged"]  # all three classes occur
    for table, row in result["tables"].items():
        assert row["source"] == dirt["tables"][table] == row["extracted"] == row["archived"] + row["disposed_total"]
    totals = result["totals"]
    assert totals["source"] == sum(dirt["tables"].values()) == totals["archived"] + totals["disposed"]
    for kind in ("flagged", "corrected", "disposed"):
        assert totals[kind] == sum(sum(r.values()) for r in expected[kind].values()), kind
    assert result["placeholders"] == dirt["placeholder_patients"] > 0
    assert totals["accepted"] == totals["archived"] + result["placeholders"]
    for entity, row in result["entities"].items():
        assert row["mapped"] == row["packaged"] == row["accepted"], entity
    assert result["sample"]["checked"] == 10 and result["sample"]["mismatches"] == []
    classes = {(c["table"], c["reason"], c["class"]): c for c in result["dispositions"]["classes"]}
    assert classes[("journalanteckning", "SOFT_DELETED", "disposed")]["reference"] == (
        "RN 2025/0415 (gallringsbeslut, demo)"
    )
    assert classes[("diagnos", "CODE_INVALID", "corrected")]["reference"] == "RN 2025/0418 (rättelse, demo)"
    assert result["dispositions"]["corrections"]["rows_corrected"] == 1

    record = json.loads((out / "evidence" / "contract-exit.json").read_text(encoding="utf-8"))
    assert record["status"] == "decommissioned" and record["version"] == 1 and record["supersedes"] is None
    assert [(a["role"], a["by"]) for a in record["approvals"]] == [
        ("information_owner", "verksamhetschef"),
        ("archivist", "regionarkivarie"),
    ]
    result_sha = hashlib.sha256((out / "reconciliation" / "final_delivery" / "result.json").read_bytes()).hexdigest()
    assert record["reconciliation"]["result_sha256"] == result_sha and record["reconciliation"]["verdict"] == "PASS"
    _check_dates_follow_the_approval(record, Ledger.sqlite(out.parent.parent / "ledger.sqlite"))
    _check_signers_were_shown_the_verified_result(final.run_id, result_sha)
    content = record["archive_content"]
    assert [content[k] for k in ("source", "archived", "flagged", "corrected", "disposed")] == [
        totals[k] for k in ("source", "archived", "flagged", "corrected", "disposed")
    ]
    assert {(c["table"], c["reason"], c["class"], c["reference"]) for c in content["classes"]} >= {
        ("journalanteckning", "SOFT_DELETED", "disposed", "RN 2025/0415 (gallringsbeslut, demo)")
    }
    # no identifier in clear in anything written for people or machines outside the package
    with sqlite3.connect(out.parent.parent / "vas.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT personnr FROM patient")]
    outputs = [
        out / "reconciliation" / "final_delivery" / "report.html",
        out / "evidence" / "contract-exit.json",
        *(out / "receipts").iterdir(),
        *(out / "validation").iterdir(),
    ]
    texts = [p.read_text(encoding="utf-8") for p in outputs]
    assert not [i for i in ids if any(i in t or f"{i[:8]}-{i[8:]}" in t for t in texts)]

    ledger = Ledger.sqlite(out.parent.parent / "ledger.sqlite")
    assert ledger.verify() is None
    entries = ledger.entries(system_id="vas")
    kinds = [e.kind for e in entries]
    assert kinds[-2:] == ["contract_exit", "system_status"] and entries[-1].payload["status"] == "decommissioned"
    assert "reconciliation" in kinds and "ingest_receipt" in kinds and "evidence_pack" in kinds
    answers = [
        (e.payload["role"], e.payload["by"], e.payload["decision"], e.payload["result_sha256"])
        for e in entries
        if e.kind == "signoff"
    ]
    assert answers == [
        ("information_owner", "verksamhetschef", "Approve", result_sha),
        ("archivist", "regionarkivarie", "Approve", result_sha),
    ]

    _check_evidence_pack(out, record)
    _check_documents_render_without_identifiers(out, ids)
    _check_ledger_verify_command(out.parent.parent / "ledger.sqlite", tmp=out.parent.parent)
    _check_breakdown(result, dirt)


def _check_dates_follow_the_approval(record: dict, ledger: Any) -> None:
    """Notice from the later approval (the answers' time, from the ledger), not from the milestone."""
    from dateutil.relativedelta import relativedelta

    answered = [dt.datetime.fromisoformat(e.payload["at"]) for e in ledger.entries(system_id="vas", kind="signoff")]
    approved = max(answered).astimezone(dt.UTC).date()
    end = max(dt.date(2026, 6, 30), approved + relativedelta(months=12))  # the plan: earliest end, 12 months
    assert record["approved_on"] == record["earliest_notice_date"] == approved.isoformat()
    assert record["contract_end_date"] == end.isoformat() and record["planned_contract_end"] == "2026-06-30"
    if end > dt.date(2026, 6, 30):
        assert record["deviation"]["actual"] == end.isoformat() and record["deviation"]["planned"] == "2026-06-30"
    else:
        assert record["deviation"] is None


def _check_signers_were_shown_the_verified_result(run_id: str, result_sha: str) -> None:
    """Both sign-off requests (Airflow's own HITL records) show the verdict and hash of result.json."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        bodies = dict(
            session.query(TaskInstance.task_id, HITLDetail.body)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .filter(TaskInstance.run_id == run_id, TaskInstance.dag_id == "decommission_vas")
            .all()
        )
    assert sorted(bodies) == ["signoff_archivist", "signoff_information_owner"]
    for task_id, body in bodies.items():
        assert "Utlåtande för slutleveransen: **Godkänd**" in body and f"`{result_sha}`" in body, task_id
    # the archivist sees the information owner's answer
    assert "Informationsägaren Karin Lindström (verksamhetschef) godkände" in bodies["signoff_archivist"]


def _check_breakdown(result: dict, dirt: dict) -> None:
    """Per year, care unit and patient the source side equals the extracted side; fingerprints agree."""
    b = result["breakdown"]
    assert sum(v["source"] for v in b["years"].values()) == sum(dirt["tables"].values())
    for year, v in b["years"].items():
        assert v["source"] == v["extracted"] == v["archived"] + v["disposed"], year
    assert sum(v["disposed"] for v in b["years"].values()) == result["totals"]["disposed"]
    # flagged here: archived with a finding, corrected ones included
    assert sum(v["flagged"] for v in b["years"].values()) == result["totals"]["flagged"] + result["totals"]["corrected"]
    assert b["units"] and all(u["source"] == u["extracted"] for u in b["units"])
    assert b["patients"]["count"] > 0 and b["patients"]["differing"] == []
    assert b["fingerprints"] and all(f["source"] == f["package"] for f in b["fingerprints"].values()), b["fingerprints"]
    # each partition counted by its own reconcile_partition task, each package digested by the validation gate
    partitions = len(result["partitions"])
    assert b["partition_tallies"] == {"kept": partitions, "counted_here": 0, "gaps": 0}
    assert b["package_digests"] == {"from_validation": len(result["package_manifest"]), "read_back": 0}
    assert result["sample"]["justification"]["drawn"] == 10


def _check_evidence_pack(out: Path, record: dict) -> None:
    import hashlib
    import tarfile

    pack = out / "evidence" / "evidence-vas-final_delivery.tar"
    assert hashlib.sha256(pack.read_bytes()).hexdigest() == record["evidence_pack"]["sha256"]
    assert (out / "evidence" / f"{pack.name}.sha256").read_text().split()[0] == record["evidence_pack"]["sha256"]
    with tarfile.open(pack) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
        manifest = json.loads(tar.extractfile("evidence-vas/manifest.json").read())
        for f in manifest["files"]:
            data = tar.extractfile(f"evidence-vas/{f['path']}").read()
            assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
        access = json.loads(tar.extractfile("evidence-vas/access-log.json").read())
        decisions = json.loads(tar.extractfile("evidence-vas/dispositions.json").read())
    for wanted in ("report/report.pdf", "report/result.json", "packages.json", "approvals.json", "ledger.json"):
        assert wanted in names, wanted
    assert any(n.startswith("receipts/") for n in names) and any(n.startswith("validation/") for n in names)
    assert access["disposition"] == "archived" and access["archived_rows"] > 0 and "problem" not in access
    assert decisions["mapping_specification"]["file"] == "vas.yaml"
    # every disposed row, by keyed hash, with its decision
    assert len(decisions["disposed_rows"]) == decisions["totals"]["disposed"] > 0
    assert {r["decision"] for r in decisions["disposed_rows"]} == {"RN 2025/0415 (gallringsbeslut, demo)"}
    assert all(len(r["row_hash"]) == 16 for r in decisions["disposed_rows"])


def _check_documents_render_without_identifiers(out: Path, ids: list[str]) -> None:
    """The PDFs render to non-blank images; no identifier in clear in the report, its annexes or the PDFs' text."""
    import pypdfium2

    report_dir = out / "reconciliation" / "final_delivery"
    texts = [p.read_text(encoding="utf-8") for p in report_dir.glob("*.csv")]
    texts.append((report_dir / "report.html").read_text(encoding="utf-8"))
    for pdf_path in (report_dir / "report.pdf", out / "evidence" / "contract-exit.pdf"):
        pdf = pypdfium2.PdfDocument(pdf_path)
        image = pdf[0].render(scale=1).to_pil().convert("L")
        assert sum(image.histogram()[:128]) > 2000, f"{pdf_path.name} renders blank"
        texts += [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    assert "GODKÄND" in "".join(texts) and "UNDERKÄND" not in "".join(texts)
    assert not [i for i in ids if any(i in t or f"{i[:8]}-{i[8:]}" in t or i[2:] in t for t in texts)]


def _check_ledger_verify_command(ledger_path: Path, tmp: Path) -> None:
    """A changed entry in a copy of the ledger is named by `python -m decommission ledger verify`."""
    import shutil
    import subprocess
    import sys

    copy = tmp / "ledger-changed.sqlite"
    shutil.copy(ledger_path, copy)
    command = [sys.executable, "-m", "decommission", "ledger", "verify", "--sqlite", str(copy)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    intact = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    with sqlite3.connect(copy) as db:
        seq = db.execute("SELECT seq FROM ledger_entry WHERE kind = 'reconciliation' ORDER BY seq DESC").fetchone()[0]
        db.execute("UPDATE ledger_entry SET payload = replace(payload, 'PASS', 'FAIL') WHERE seq = ?", (seq,))
    changed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert changed.returncode == 1
    assert f"ledger entry {seq} (reconciliation, system vas" in changed.stdout


def test_rejected_package_fails_the_run_and_the_report_shows_why(tmp_path, monkeypatch, r7sim_factory, airflow_db):
    """The archive rejects one package: the run fails, yet reconcile and report run and show the reason."""
    rejected = "vas-LO-2025-VAS-01-p0001-test"
    server = r7sim_factory.start("--reject", rejected)
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    dag, _ = _wire_vas(tmp_path, monkeypatch, patients=20)
    run = _run(dag, dt.date(2025, 3, 3), "test_delivery")
    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["await_ingest"] == "failed" and states["reconcile"] == "success" and states["report"] == "failed"
    out = tmp_path / "out" / "vas"
    receipt = json.loads((out / "receipts" / f"{rejected}.ingest.json").read_text())
    assert receipt["status"] == "rejected" and receipt["reasons"]
    result = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text())
    assert result["verdict"] == "FAIL"
    assert any(r.startswith(f"package {rejected} rejected by the archive: R7SIM-REJECT") for r in result["reasons"])
    assert [x["package_id"] for x in result["rejections"]] == [rejected]
    html = (out / "reconciliation" / "test_delivery" / "report.html").read_text(encoding="utf-8")
    assert "UNDERKÄND" in html and "R7SIM-REJECT" in html


def _tamper(tar_path: Path) -> int:
    """Rewrite every patient's record in a held package (the archive's copy changed after acceptance)."""
    import io
    import re
    import tarfile

    members, changed = [], 0
    with tarfile.open(tar_path) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else None
            if data is not None and m.name.endswith("/record.xml"):
                data, n = re.subn(rb"<familyName>[^<]*</familyName>", b"<familyName>Annorlunda</familyName>", data)
                changed += n
                m.size = len(data)
            members.append((m, data))
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return changed


def test_package_altered_in_the_archive_is_caught_by_the_read_back_sample(demo_system_small, r7sim):
    dag, _dirt, out = demo_system_small
    _run(dag, dt.date(2025, 3, 3), "test_delivery")
    before = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text())
    assert before["sample"]["checked"] == 10 and before["sample"]["mismatches"] == []
    assert not any("read-back sample" in r for r in before["reasons"])
    held = sorted(r7sim.data_dir.rglob("vas-*-test.tar"))
    assert held, f"no package held under {r7sim.data_dir}"
    assert sum(_tamper(p) for p in held) > 0

    again = _run(dag, dt.date(2025, 3, 4), "test_delivery")  # same packages: the archive keeps its (altered) copy
    assert str(again.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in again.get_task_instances()}
    assert states["reconcile"] == "success" and states["report"] == "failed"
    assert states["signoff_information_owner"] in ("upstream_failed", "skipped")
    result = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text())
    assert result["verdict"] == "FAIL"
    mismatches = result["sample"]["mismatches"]
    # a placeholder patient (holding orphan rows) has no name to alter: only the real patients differ
    from decommission.privacy import keyed_hash

    with sqlite3.connect(out.parent.parent / "vas.sqlite") as db:
        orphan_keys = db.execute(
            "SELECT pat_id FROM journalanteckning UNION SELECT pat_id FROM diagnos UNION SELECT pat_id FROM labsvar "
            "EXCEPT SELECT pat_id FROM patient"
        ).fetchall()
    placeholders = {keyed_hash(str(k)) for (k,) in orphan_keys}
    sampled = result["sample"]["patients"]
    assert len(sampled) == result["sample"]["checked"]
    assert all(p["match"] == (p["patient"] in placeholders) for p in sampled), sampled
    assert mismatches and len(mismatches) == sum(p["patient"] not in placeholders for p in sampled)
    for m in mismatches:
        assert {(d["entity"], d["field"], d["kind"]) for d in m["differences"]} == {
            ("patient", "family_name", "differs")
        }
    assert any("read-back sample" in r for r in result["reasons"])
    report_dir = out / "reconciliation" / "test_delivery"
    annex = (report_dir / "annex-sample.csv").read_text(encoding="utf-8")
    assert annex.count("family_name") == len(mismatches)
    # the FAIL report lists differences and rows with a finding, never an identifier or a value in clear
    texts = [p.read_text(encoding="utf-8") for p in (report_dir / "report.html", *report_dir.glob("*.csv"))]
    with sqlite3.connect(out.parent.parent / "vas.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT personnr FROM patient") if r[0]]
    assert ids and not [i for i in ids if any(i in t or f"{i[:8]}-{i[8:]}" in t for t in texts)]
    assert not any("Annorlunda" in t for t in texts)


def test_rejected_signoff_leaves_no_contract_exit(demo_system_small):
    from decommission.ledger import Ledger

    dag, _dirt, out = demo_system_small
    responder = Responder(
        {
            "signoff_information_owner": ("verksamhetschef", "Approve"),
            "signoff_archivist": ("regionarkivarie", "Reject"),
        }
    )
    responder.start()
    try:
        run = dag.test(
            logical_date=dt.datetime(2025, 9, 1, tzinfo=dt.UTC),
            run_conf={"milestone": "final_delivery", "override_test_approval": "test: no test delivery in this test"},
        )
    finally:
        responder.stop.set()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["signoff_archivist"] == "success"
    assert states["evidence_pack"] == "skipped" and states["contract_exit"] == "skipped"
    assert ("operator", "signoff_information_owner", 403) in responder.statuses
    assert not (out / "evidence" / "contract-exit.json").exists()
    assert not (out / "evidence" / "contract-exit.pdf").exists()
    entries = Ledger.sqlite(out.parent.parent / "ledger.sqlite").entries(system_id="vas")
    kinds = [e.kind for e in entries]
    assert "contract_exit" not in kinds and "system_status" not in kinds
    assert kinds[-1] == "contract_exit_stopped" and entries[-1].payload["by"] == "regionarkivarie"
    rejected = [e.payload for e in entries if e.kind == "signoff" and e.payload["decision"] == "Reject"]
    assert rejected and rejected[0]["role"] == "archivist" and rejected[0]["result_sha256"]


class Forger(threading.Thread):
    """A user who may edit DAG runs but is no respondent: posts answer XComs and marks the sign-offs success."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.statuses: list[tuple[str, str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        from demo.signoff import token, waiting

        client = TestClient(create_app(apps="core"))
        headers = {"Authorization": f"Bearer {token(client, 'operator', 'user')}"}
        done: set[tuple[str, str]] = set()
        while not self.stop.is_set():
            for dag_id, run_id, task_id in waiting():
                if (run_id, task_id) in done:
                    continue
                ti = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                who = "verksamhetschef" if task_id == "signoff_information_owner" else "regionarkivarie"
                forged = {
                    "chosen_options": ["Approve"],
                    "params_input": {},
                    "responded_at": "2025-09-01T12:00:00+00:00",
                    "responded_by_user": {"id": who, "name": who},
                }
                xcom = {"key": "return_value", "value": forged}
                posted = client.post(f"{ti}/xcomEntries", json=xcom, headers=headers)
                self.statuses.append(("xcom", task_id, posted.status_code))
                marked = client.patch(ti, json={"new_state": "success"}, headers=headers)
                self.statuses.append(("success", task_id, marked.status_code))
                done.add((run_id, task_id))
            time.sleep(0.3)


def test_forged_answers_and_sign_offs_marked_success_give_no_contract_exit(demo_system_small):
    """Issue 16's forgery: answer XComs posted and both sign-off tasks marked success, no HITL answer."""
    from decommission.ledger import Ledger

    dag, _dirt, out = demo_system_small
    forger = Forger()
    forger.start()
    try:
        run = dag.test(
            logical_date=dt.datetime(2025, 9, 1, tzinfo=dt.UTC),
            run_conf={"milestone": "final_delivery", "override_test_approval": "test: no test delivery in this test"},
        )
    finally:
        forger.stop.set()
    # the forgery itself went through: the operator may post XComs and set task states
    for task_id in ("signoff_information_owner", "signoff_archivist"):
        assert ("xcom", task_id, 201) in forger.statuses, forger.statuses
        assert ("success", task_id, 200) in forger.statuses, forger.statuses
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["signoff_information_owner"] == "success" and states["signoff_archivist"] == "success"
    assert states["evidence_pack"] == "failed" and states["contract_exit"] == "upstream_failed"
    assert str(run.state) == "failed"
    assert not list((out / "evidence").glob("contract-exit*"))
    kinds = [e.kind for e in Ledger.sqlite(out.parent.parent / "ledger.sqlite").entries(system_id="vas")]
    assert "signoff" not in kinds and "contract_exit" not in kinds and "system_status" not in kinds
    assert kinds.count("signoff_requested") == 2  # both were asked (the verified PASS), neither answered
