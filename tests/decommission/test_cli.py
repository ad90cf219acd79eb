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
    assert {name: p["slots"] for name, p in pools.items()} == {"legacy_vas": 2, "legacy_lab": 1, "legacy_anestesi": 1}


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
