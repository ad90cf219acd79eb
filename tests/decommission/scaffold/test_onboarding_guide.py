"""The onboarding guide's try-out runs as written: its shell block, in a fresh folder, from the venv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from decommission.plan.mapping_spec import load_spec

REPO = Path(__file__).resolve().parents[3]


def test_the_guide_s_demo_block_runs_as_written(tmp_path) -> None:
    guide = (REPO / "docs" / "onboarding.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- onboarding-demo[^>]*-->\n```bash\n(.*?)```", guide, re.S).group(1)
    env = {
        **os.environ,
        # what `make install` gives the venv (plugins/ and the repository on its path), `python` the venv's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Tables: 3 (1 patient table, 2 mapped" in done.stdout
    spec = load_spec(tmp_path / "out" / "onboarding" / "lab.yaml")
    assert spec.patient_table == "lab_patient" and spec.tables["prov"].entity == "lab_result"
    assert spec.tables["prov"].preserved == ["status"]  # as the guide says


def test_the_guide_s_plan_entry_loads_with_a_scaffolded_mapping(tmp_path) -> None:
    import shutil

    import yaml

    from decommission.plan.programme import load_plan

    guide = (REPO / "docs" / "onboarding.md").read_text(encoding="utf-8")
    entry = re.search(r"## 4\. The plan entry.*?```yaml\n(.*?)```", guide, re.S).group(1)
    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    # the lab system's draft stands in for the radiology system's
    shutil.copyfile(include / "mappings" / "lab.yaml", include / "mappings" / "ris.yaml")
    plan_path = include / "programme.yaml"
    raw = yaml.safe_load(plan_path.read_text(encoding="utf-8"))
    raw["systems"] += yaml.safe_load(entry)
    plan_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    plan = load_plan(plan_path)
    assert not plan.problems, plan.problems
    assert plan.system("ris").source.schema_name == "ris" and plan.system("ris").kind == "radiology"
