"""Four attempts at the same output at the same time end in exactly one complete output, and none fails."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from airflow.sdk import ObjectStoragePath


def _stage_attempt(base: str, attempt: int) -> str:
    from decommission.source import staging

    final = ObjectStoragePath(Path(base).as_uri()) / "vas" / "final_delivery" / "extract" / "p0001"
    with staging.replacing(final) as tmp:
        for name in ("a", "b", "c"):
            (tmp / f"{name}.txt").write_text(f"attempt {attempt}")
            time.sleep(0.05)  # long enough for the others to start in the middle
    return "ok"


def _package_attempt(base: str) -> str:
    from decommission.package.sip import build_package
    from tests.decommission.fixtures import make_context, write_mapped

    root = Path(base)
    mapped = write_mapped(root / f"mapped-{multiprocessing.current_process().pid}")
    context = make_context(root / f"docs-{multiprocessing.current_process().pid}")
    return build_package(mapped=mapped, context=context, partition_id="1", out_dir=root / "out", directory=False).sha256


class TestConcurrentAttempts:
    def test_staging_four_attempts_one_complete_folder(self, tmp_path: Path) -> None:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(4) as pool:
            results = pool.starmap(_stage_attempt, [(str(tmp_path), n) for n in range(4)])
        assert results == ["ok"] * 4
        folder = tmp_path / "vas" / "final_delivery" / "extract"
        final = folder / "p0001"
        contents = {p.read_text() for p in final.iterdir()}
        assert sorted(p.name for p in final.iterdir()) == ["a.txt", "b.txt", "c.txt"] and len(contents) == 1
        assert sorted(p.name for p in folder.iterdir()) == ["p0001"]  # no half-written leftovers

    def test_package_four_builds_one_tar(self, tmp_path: Path) -> None:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(4) as pool:
            digests = pool.map(_package_attempt, [str(tmp_path)] * 4)
        assert len(set(digests)) == 1
        out = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert len(out) == 1 and out[0].endswith(".tar")


def test_a_task_writes_nothing_others_may_read(tmp_path: Path) -> None:
    """Packages, staging and evidence hold patient data: owner and group only, once a task's run has started."""
    import datetime as dt
    import os

    from decommission import stages
    from decommission.files import write_atomic
    from decommission.plan.programme import load_plan
    from tests.submit_task import REPO

    plan = load_plan(REPO / "include" / "programme.yaml")
    before = os.umask(0o022)
    try:
        stages.start_run(plan, plan.system("vas"), "manual__perm", dt.datetime(2025, 3, 3, tzinfo=dt.UTC), None)
        written = write_atomic(tmp_path / "evidence" / "x.json", "{}")
        (tmp_path / "staged.parquet").write_bytes(b"x")
        folder = tmp_path / "packages"
        folder.mkdir()
        for path in (written, tmp_path / "staged.parquet", folder, written.parent):
            assert path.stat().st_mode & 0o007 == 0, f"{path.name} is readable by others"
    finally:
        os.umask(before)
