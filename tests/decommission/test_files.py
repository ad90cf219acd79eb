from __future__ import annotations

from pathlib import Path

import pytest

from decommission.files import write_atomic


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out" / "receipt.json"
    write_atomic(path, "först")
    write_atomic(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["receipt.json"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "report.html"
    write_atomic(path, "old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_what_a_task_writes_is_for_owner_and_group_only(tmp_path):
    """Under the tasks' umask: reports, evidence, staging, temporary and lock files give others nothing."""
    import os
    import stat
    import tempfile

    from airflow.sdk import ObjectStoragePath

    from decommission.files import exclusive
    from decommission.source import staging
    from decommission.stages import PRIVATE_UMASK

    previous = os.umask(PRIVATE_UMASK)
    try:
        report = write_atomic(tmp_path / "reconciliation" / "result.json", "{}")
        with staging.replacing(ObjectStoragePath(tmp_path.as_uri()) / "staging" / "p0001") as folder:
            with staging.open_output(folder / "patient.parquet") as fh:
                fh.write(b"rows")
        fd, temporary = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        with exclusive(tmp_path / "packages" / "p.tar"):
            locks = Path(tempfile.gettempdir()) / "decommission-locks"
            lock_modes = [stat.S_IMODE(p.stat().st_mode) for p in locks.iterdir()]
        (tmp_path / "packages").mkdir()
        with open(tmp_path / "packages" / "p.tar", "wb") as tar:
            tar.write(b"tar")
    finally:
        os.umask(previous)
    files = [
        report,
        tmp_path / "staging" / "p0001" / "patient.parquet",
        Path(temporary),
        tmp_path / "packages" / "p.tar",
    ]
    assert all(stat.S_IMODE(p.stat().st_mode) & ~0o660 == 0 for p in files), [oct(p.stat().st_mode) for p in files]
    folders = [tmp_path / "staging", tmp_path / "staging" / "p0001", tmp_path / "packages"]
    assert all(stat.S_IMODE(p.stat().st_mode) & ~0o770 == 0 for p in folders)
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700 and lock_modes and all(m & ~0o600 == 0 for m in lock_modes)
