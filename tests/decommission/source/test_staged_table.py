"""Staged tables: canonical types, key order, control totals that do not depend on row order or driver."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decommission.source import staged_table

COLUMNS = ["id", "pat", "text", "blob", "t"]
ROWS = [
    (3, 1, "tredje", b"\x00\x01", dt.datetime(2020, 1, 3, 8, 0)),
    (1, 1, "första\nrad", None, dt.datetime(2020, 1, 1, 8, 0)),
    (2, 2, None, b"", None),
]


def _written(table: pa.Table) -> tuple[bytes, dict]:
    fh = io.BytesIO()
    totals = staged_table.write(table, "id", fh)
    return fh.getvalue(), totals


class TestWrite:
    def test_row_order_changes_neither_file_nor_totals(self):
        one, _ = staged_table.from_rows(ROWS, COLUMNS)
        other, _ = staged_table.from_rows(list(reversed(ROWS)), COLUMNS)
        assert _written(staged_table.concat([one], COLUMNS)[0]) == _written(staged_table.concat([other], COLUMNS)[0])

    def test_batching_and_driver_types_change_nothing(self):
        """int32 and string from an Arrow driver, int64 and large types from Python rows: one result."""
        python, _ = staged_table.from_rows(ROWS, COLUMNS)
        arrow = pa.table(
            {
                "id": pa.array([r[0] for r in ROWS], pa.int32()),
                "pat": pa.array([r[1] for r in ROWS], pa.int32()),
                "text": pa.array([r[2] for r in ROWS], pa.string()),
                "blob": pa.array([r[3] for r in ROWS], pa.binary()),
                "t": pa.array([r[4] for r in ROWS], pa.timestamp("us")),
            }
        )
        batches = [arrow.slice(0, 1), arrow.slice(1, 2)]
        assert _written(staged_table.concat([python], COLUMNS)[0]) == _written(staged_table.concat(batches, COLUMNS)[0])

    def test_a_changed_value_changes_the_digest(self):
        base = _written(staged_table.concat([staged_table.from_rows(ROWS, COLUMNS)[0]], COLUMNS)[0])[1]
        changed = [(*ROWS[0][:2], "tredjE", *ROWS[0][3:]), *ROWS[1:]]
        other = _written(staged_table.concat([staged_table.from_rows(changed, COLUMNS)[0]], COLUMNS)[0])[1]
        assert other["sha256"] != base["sha256"]
        assert other["keys_sha256"] == base["keys_sha256"] and other["rows"] == base["rows"] == 3

    def test_file_is_key_ordered_with_canonical_types(self):
        data, totals = _written(staged_table.concat([staged_table.from_rows(ROWS, COLUMNS)[0]], COLUMNS)[0])
        table = pq.read_table(io.BytesIO(data))
        assert table["id"].to_pylist() == [1, 2, 3]
        assert table.schema.types == [pa.int64(), pa.int64(), pa.large_string(), pa.large_binary(), pa.timestamp("us")]
        assert totals["keys"] == 3

    def test_duplicate_keys_are_ordered_by_the_other_columns(self):
        rows = [(1, 2, "b", None, None), (1, 1, "a", None, None)]
        a = _written(staged_table.concat([staged_table.from_rows(rows, COLUMNS)[0]], COLUMNS)[0])
        b = _written(staged_table.concat([staged_table.from_rows(rows[::-1], COLUMNS)[0]], COLUMNS)[0])
        assert a == b and a[1]["rows"] == 2 and a[1]["keys"] == 1


class TestMixedTypes:
    @pytest.mark.parametrize(
        "batches",
        [[[(1, "x")], [(2, 5)]], [[(1, "x"), (2, 5)]]],
        ids=["across-batches", "within-a-batch"],
    )
    def test_a_column_mixing_types_is_staged_as_text_and_reported(self, batches):
        parts, coerced = [], set()
        for rows in batches:
            table, mixed = staged_table.from_rows(rows, ["id", "v"])
            parts.append(table)
            coerced.update(mixed)
        table, mixed = staged_table.concat(parts, ["id", "v"])
        assert sorted(coerced | set(mixed)) == ["v"]
        assert table["v"].to_pylist() == ["x", "5"]

    def test_an_all_null_column_is_text(self):
        table, coerced = staged_table.concat([staged_table.from_rows([(1, None)], ["id", "v"])[0]], ["id", "v"])
        assert table.schema.field("v").type == pa.large_string() and coerced == []
