"""``make bench-package`` at toy sizes: it runs, the packages are valid, the last line is its JSON summary."""

from __future__ import annotations

from tests.decommission.fixtures import run_bench_packaging


def test_bench_packaging_prints_json_summary_last():
    summary = run_bench_packaging("--files", "40", "80", "--notes", "2", timeout=300)
    assert summary["all_valid"] is True
    # two per patient + schemas (the SIARD metadata schema among them), docs, metadata
    assert [s["files"] for s in summary["sizes"]] == [40 + 12, 80 + 12]
    for size in summary["sizes"]:
        assert size["rows"] == size["patients"] * (7 + 2)
        assert size["build_rows_per_s"] > 0 and size["build_peak_rss_mb"] > 0 and size["validate_peak_rss_mb"] > 0
