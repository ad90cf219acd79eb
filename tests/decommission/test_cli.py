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


def test_ledger_verify_of_no_ledger_is_an_error_not_an_intact_empty_ledger(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "ledger.sqlite"
    assert main(["ledger", "verify", "--sqlite", str(missing)]) == 1
    assert "no ledger file there" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()  # verifying creates nothing
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    assert main(["ledger", "verify", "--sqlite", str(other)]) == 1
    assert "without a ledger (no table ledger_entry)" in capsys.readouterr().err
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    assert main(["ledger", "verify", "--sqlite", str(garbage)]) == 1
    assert "not a SQLite database" in capsys.readouterr().err


def test_ledger_verify_with_an_unknown_connection_exits_1_with_a_sentence(capsys):
    assert main(["ledger", "verify", "--conn-id", "no_such_ledger"]) == 1
    err = capsys.readouterr().err
    assert "no_such_ledger" in err and "isn't defined" in err and "Traceback" not in err


def test_pools_with_a_folder_or_an_empty_setting_for_the_plan(tmp_path, monkeypatch, capsys):
    assert main(["pools", str(tmp_path)]) == 1
    assert "is not a regular file" in capsys.readouterr().err
    monkeypatch.setenv("DECOMMISSION_PLAN", "")  # set but empty: the default plan, as an unset variable
    assert main(["pools"]) == 0
    assert "legacy_vas" in json.loads(capsys.readouterr().out)


def test_pools_with_every_system_broken_print_none_and_exit_1(tmp_path, capsys):
    import shutil

    shutil.copytree(REPO / "include", tmp_path / "include")
    for spec in (tmp_path / "include" / "mappings").glob("*.yaml"):
        spec.write_text(spec.read_text(encoding="utf-8").replace("patient_table:", "patient_tabel:"), "utf-8")
    assert main(["pools", str(tmp_path / "include" / "programme.yaml")]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out) == {} and out.err.count(": system ") == 4  # vas, lab, anestesi, sjukhus


def _readme_commands() -> list[list[str]]:
    """Every ``python -m decommission ...`` the README and the guides write, as arguments."""
    import re
    import shlex

    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")  # a shell line continued
        for match in re.finditer(r"python -m decommission ([^`|\n]+)", text):
            words = match.group(1).replace("[", " ").replace("]", " ").split(" | ")[0]
            found.append(shlex.split(words.replace("|", " ")))
    return found


def test_every_command_the_readme_writes_exists_with_its_options():
    from decommission.__main__ import build_parser

    parser = build_parser()
    commands = {a.dest: a for a in parser._actions if a.dest == "command"}["command"].choices
    seen = set()
    for words in _readme_commands():
        assert words and words[0] in commands, f"README: python -m decommission {' '.join(words)}"
        seen.add(words[0])
        options = {o for a in commands[words[0]]._actions for o in a.option_strings}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"README: {' '.join(words)}: no option {word}"
    assert seen == set(commands), f"commands the README does not show: {set(commands) - seen}"
