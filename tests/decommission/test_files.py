from __future__ import annotations

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
