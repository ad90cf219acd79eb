"""A partition whose extraction process is killed mid-write is rerun into one consistent staging."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from decommission.plan.programme import Milestone, load_plan
from decommission.stages import Run, extract
from demo.generate import build

REPO = Path(__file__).resolve().parents[3]
PARTITION = {"id": "p0001", "lo": None, "hi": None}

#: the extract task in its own process, killed (SIGKILL: no cleanup runs) after writing three tables
CHILD = """
import datetime as dt, os, signal, sys
from decommission.source import staged_table
from decommission.plan.programme import Milestone, load_plan
from decommission.stages import Run, extract

real_write, written = staged_table.write, []
def write(table, key, fh, coerced=()):
    totals = real_write(table, key, fh, coerced)
    written.append(key)
    if len(written) == 3:
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return totals
staged_table.write = write
plan = load_plan(sys.argv[1])
run = Run(plan, plan.system("vas"), Milestone.TEST_DELIVERY, "r", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
extract(run, {"id": "p0001", "lo": None, "hi": None})
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    db = tmp_path / "vas.sqlite"
    build("vas", str(db), seed=3, patients=40)
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DECOMMISSION_STAGING", (tmp_path / "staging").as_uri())
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "plugins"), str(REPO)]))
    return tmp_path


def _run() -> Run:
    plan = load_plan(REPO / "include" / "programme.yaml")
    return Run(plan, plan.system("vas"), Milestone.TEST_DELIVERY, "r", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))


def _killed_attempt() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "include" / "programme.yaml")], cwd=REPO, capture_output=True
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_rerun_after_a_kill_leaves_one_consistent_staging(env, monkeypatch):
    parent = env / "staging" / "vas" / "test_delivery" / "extract"
    clean = _run()
    monkeypatch.setenv("DECOMMISSION_STAGING", (env / "clean").as_uri())
    reference = extract(clean, PARTITION)
    expected = _files(env / "clean" / "vas" / "test_delivery" / "extract" / "p0001")
    monkeypatch.setenv("DECOMMISSION_STAGING", (env / "staging").as_uri())

    _killed_attempt()  # first attempt dies half-way: no staging yet, only its temporary folder
    leftovers = [p.name for p in parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".p0001.") and leftovers[0].endswith(".tmp")
    assert len(list((parent / leftovers[0]).iterdir())) == 3

    again = extract(_run(), PARTITION)  # the retry
    assert [p.name for p in parent.iterdir()] == ["p0001"]
    assert _files(parent / "p0001") == expected and len(expected) == 9  # 8 tables and their catalogue
    assert again["rows"] == reference["rows"]

    _killed_attempt()  # a later rerun dies too: the complete staging stays as it was
    assert _files(parent / "p0001") == expected
    assert len(list(parent.iterdir())) == 2

    extract(_run(), PARTITION)
    assert [p.name for p in parent.iterdir()] == ["p0001"]
    assert _files(parent / "p0001") == expected


def test_validate_passes_the_built_tar_and_refuses_one_changed_after_the_build(env):
    """package[p] records the tar's SHA-256; validate[p] checks the bytes against it before it validates."""
    from decommission.errors import PackageError
    from decommission.stages import map_stage, package_stage, validate_stage

    run = _run()
    package = package_stage(run, map_stage(run, extract(run, PARTITION)))
    assert validate_stage(run, package) == package
    report = json.loads((env / "home" / "vas" / "validation" / f"{package['package_id']}.json").read_text())
    assert report["ok"] is True
    tar = env / "home" / package["container"]  # a name under the home, the same on every worker
    data = bytearray(tar.read_bytes())
    data[len(data) // 2] ^= 1  # one bit flipped on disk after the build
    tar.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="changed on disk after it was built"):
        validate_stage(run, package)
