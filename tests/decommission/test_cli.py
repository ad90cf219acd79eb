from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from decommission.__main__ import main
from decommission.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]


def test_pools_follow_the_plan(capsys):
    assert main(["pools", str(REPO / "include" / "programme.yaml")]) == 0
    pools = json.loads(capsys.readouterr().out)
    assert {name: p["slots"] for name, p in pools.items()} == {
        "legacy_vas": 2,
        "legacy_lab": 1,
        "legacy_anestesi": 1,
        "legacy_sjukhus": 2,
    }


def test_ledger_verify_names_the_changed_entry(tmp_path, capsys):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger.sqlite(path)
    for i in range(3):
        ledger.append(system_id="lab", run_id="run-1", kind="package", payload={"n": i})
    assert main(["ledger", "verify", "--sqlite", str(path)]) == 0
    assert "ledger intact: 3 entries" in capsys.readouterr().out
    with sqlite3.connect(path) as db:
        db.execute("UPDATE ledger_entry SET run_id = 'run-2' WHERE seq = 2")
    assert main(["ledger", "verify", "--sqlite", str(path)]) == 1
    assert "ledger entry 2 (package, system lab, run run-2) was changed" in capsys.readouterr().out


def test_pools_with_a_broken_mapping_exit_1_and_name_it(tmp_path, capsys):
    import shutil

    shutil.copytree(REPO / "include", tmp_path / "include")
    spec = tmp_path / "include" / "mappings" / "anestesi.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("key: op_id", "key: [op_id"), encoding="utf-8")
    assert main(["pools", str(tmp_path / "include" / "programme.yaml")]) == 1
    out = capsys.readouterr()
    # the valid systems keep their pools; the broken one is named on stderr, with its file and line
    assert set(json.loads(out.out)) == {"legacy_vas", "legacy_lab", "legacy_sjukhus"}
    assert "system 'anestesi': mapping:" in out.err and "anestesi.yaml: line" in out.err


def test_a_missing_plan_is_a_named_error_not_a_traceback(tmp_path, capsys):
    assert main(["pools", str(tmp_path / "no-plan.yaml")]) == 1
    assert "no-plan.yaml" in capsys.readouterr().err


def test_the_module_runs_as_the_readme_writes_it(tmp_path):
    """``python -m decommission`` from the venv `make install` sets up: plugins/ on the path by a .pth file."""
    import re
    import subprocess
    import sys

    recipe = (REPO / "Makefile").read_text(encoding="utf-8")
    lines = re.search(r"printf '%s\\n' (.+?) >", recipe).group(1).split()
    site = tmp_path / "site"
    site.mkdir()
    paths = [p.strip('"').replace("$(CURDIR)", str(REPO)) for p in lines]
    (site / "decommission-repo.pth").write_text("\n".join(paths) + "\n", encoding="utf-8")
    code = f"import site, runpy; site.addsitedir({str(site)!r}); runpy.run_module('decommission', run_name='__main__')"
    env = {"PATH": "/usr/bin:/bin", "DECOMMISSION_PLAN": str(REPO / "include" / "programme.yaml")}
    done = subprocess.run(
        [sys.executable, "-I", "-c", code, "pools"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "legacy_vas" in json.loads(done.stdout)
