"""Flat memory: building and validating a package five times larger needs (almost) no more memory.

Runs ``make bench-package`` (``bench.packaging``) at two sizes, both large enough to be packed
a chunk of patients at a time; each build and each validation runs in a fresh process whose
peak resident set (VmHWM) the bench reports. Per-file state in memory (a few hundred bytes per
file, as the validator once had; Parquet batches sized by rows, not bytes) grows the peak
between these sizes and fails the bounds: before the change the build grew 93 MB and the
validator 37 MB here, now about 33 MB and 7 MB. What the build still gains is the allocator's
(mimalloc keeps committed arenas: with ``MIMALLOC_ARENA_EAGER_COMMIT=0`` it mostly goes away),
not per-file state.
"""

from __future__ import annotations

from tests.decommission.fixtures import run_bench_packaging

SMALL, LARGE = 6_000, 30_000  # files: two per patient (3 000 and 15 000 patients)
#: MB a peak may grow between the sizes: the allocator's retained arenas, the patient list itself
BUILD_GROWTH_MB = 45
VALIDATE_GROWTH_MB = 12


def test_peak_memory_does_not_grow_with_the_package():
    summary = run_bench_packaging("--files", str(SMALL), str(LARGE), "--notes", "2", "--tar-only", timeout=600)
    small, large = summary["sizes"]
    assert summary["all_valid"] is True
    assert large["files"] - small["files"] == LARGE - SMALL
    build = large["build_peak_rss_mb"] - small["build_peak_rss_mb"]
    validate = large["validate_peak_rss_mb"] - small["validate_peak_rss_mb"]
    assert build < BUILD_GROWTH_MB, f"build peak grew {build:.1f} MB for {LARGE - SMALL} more files"
    assert validate < VALIDATE_GROWTH_MB, f"validate peak grew {validate:.1f} MB for {LARGE - SMALL} more files"
