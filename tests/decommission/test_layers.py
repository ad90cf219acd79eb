"""The folder tree is the data flow: import-linter's contracts in pyproject.toml hold, and would catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(plugins: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(plugins)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=plugins,
        timeout=120,
    )


@pytest.fixture
def plugins_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "plugins" / "decommission", tmp_path / "decommission")
    return tmp_path


class TestLayers:
    def test_contracts_kept(self) -> None:
        result = lint_imports(REPO / "plugins")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 kept, 0 broken" in result.stdout

    def test_upstream_importing_downstream_is_caught(self, plugins_copy: Path) -> None:
        staging = plugins_copy / "decommission" / "source" / "staging.py"
        staging.write_text(staging.read_text() + "\nfrom decommission.evidence import pack  # noqa\n")
        result = lint_imports(plugins_copy)
        assert result.returncode != 0
        assert "decommission.source.staging -> decommission.evidence.pack" in result.stdout

    def test_import_circle_is_caught(self, plugins_copy: Path) -> None:
        packing = plugins_copy / "decommission" / "package" / "packing.py"
        packing.write_text(packing.read_text() + "\nfrom decommission.package import sip  # noqa\n")
        result = lint_imports(plugins_copy)
        assert result.returncode != 0
        assert "No import circles between the modules of a package BROKEN" in result.stdout
