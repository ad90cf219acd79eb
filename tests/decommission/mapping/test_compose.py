"""Fields composed of several columns by the spec's template."""

from __future__ import annotations

import pyarrow as pa

from decommission.mapping.compose import compose


def test_the_template_is_filled_in_per_row_and_a_null_column_reads_as_empty():
    rows = pa.table(
        {
            "fornamn": pa.array(["Anna", None, None, "Åsa"], pa.large_string()),
            "efternamn": pa.array(["Berg", "Ek", None, "Öhman"], pa.large_string()),
            "nr": pa.array([1, 2, 3, None], pa.int64()),
        }
    )
    assert compose("{fornamn} {efternamn}", rows).to_pylist() == ["Anna Berg", " Ek", None, "Åsa Öhman"]
    assert compose("rad-{nr}", rows).to_pylist() == ["rad-1", "rad-2", "rad-3", None]
    assert compose("{fornamn}", rows.slice(0, 0)).to_pylist() == []
