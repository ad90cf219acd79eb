"""Staged files on local disk go through Arrow's own files, whether named by a Path or an ObjectStoragePath."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from decommission.source import staging

TABLE = pa.table({"key": ["1", "2", "3"], "text": ["å", "ä", None]})


@pytest.mark.parametrize("kind", ["path", "object_storage_path"])
def test_a_staged_file_round_trips_on_local_disk(tmp_path, kind):
    path = tmp_path / "t.parquet" if kind == "path" else ObjectStoragePath(f"file://{tmp_path}") / "t.parquet"
    with staging.open_output(path) as fh:
        assert isinstance(fh, pa.NativeFile)  # not a Python file object: the writer's small writes stay in C++
        pq.write_table(TABLE, fh, row_group_size=2)
    assert staging.read_table(path).equals(TABLE)
    assert [t.num_rows for t in staging.read_row_groups(path)] == [2, 1]
    with staging.local_dir(path.parent if kind == "path" else ObjectStoragePath(f"file://{tmp_path}")) as local:
        assert (local / "t.parquet").read_bytes() == (tmp_path / "t.parquet").read_bytes()
