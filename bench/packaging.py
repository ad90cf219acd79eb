"""``make bench-package``: packaging throughput and peak memory at two package sizes.

Writes synthetic mapped partitions (the Parquet files the map stage writes; every patient has
a case, ``--notes`` journal notes of about 550 characters, a diagnosis, a medication, a lab
result, an access-log entry and one attachment, so a package holds two files per patient),
then, for each size, builds the package (``sip.build_package``) in one fresh process and
validates it (``validate.validate_package``, as the DAG's ``validate`` task does before a
package may leave) in another, so each peak resident set belongs to that step alone. Progress goes to
stderr; the last stdout line is one JSON object. Synthetic data only; the work folder is
removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
CREATED = dt.datetime(2024, 9, 30, 23, 59, 59, tzinfo=dt.UTC)
NOTE = "Patienten kommer för återbesök. Mår bättre, sover bättre, äter normalt. " * 8  # ~570 characters
ATTACHMENT = b"%PDF-1.4\n% synthetic\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def log(message: str) -> None:
    print(f"[bench-package {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _paths() -> None:
    for p in (str(REPO), str(PLUGINS)):
        if p not in sys.path:
            sys.path.insert(0, p)


def _peak_mb() -> float:
    """This process's peak resident set. ``ru_maxrss`` keeps the parent's high-water mark across
    fork and exec on Linux (the parent here holds the generated data), so read VmHWM, which
    belongs to this process's own address space."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu() -> float:
    """CPU seconds of this process: on a shared machine a steadier measure than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_partition(directory: Path, patients: int, notes: int) -> int:
    """Write one mapped partition with column-wise generated rows; returns the number of rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from decommission.model import ENTITIES
    from decommission.source.staged_table import PARQUET_OPTIONS, row_group_rows

    directory.mkdir(parents=True, exist_ok=True)
    n = patients
    idx = pa.array(np.arange(1, n + 1))
    keys = pc.cast(pc.add(idx, 100_000), pa.string())
    day = np.datetime64("2015-01-01T08:00:00", "us")
    times = pa.array(day + np.arange(n) * np.timedelta64(3_600_000_000, "us"), pa.timestamp("us", tz="UTC"))
    case_ids = pc.binary_join_element_wise("C", keys, "")

    def ids(prefix: str, source: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(prefix, source, "")

    def const(value: Any, count: int, kind: pa.DataType) -> pa.Array:
        return pa.array([value] * count, kind)

    tables = {
        "patient": {
            "patient_key": keys,
            "personal_id": pc.binary_join_element_wise("1950", pc.utf8_lpad(pc.cast(idx, pa.string()), 8, "0"), ""),
            "id_type": const("personnummer", n, pa.string()),
            "id_scheme": const("personnummer", n, pa.string()),
            "given_name": const("Åsa", n, pa.string()),
            "family_name": const("Öberg", n, pa.string()),
            "sex": const("F", n, pa.string()),
            "birth_date": const(dt.date(1950, 1, 1), n, pa.date32()),
            "protected_identity": pa.array(np.arange(n) % 50 == 0),
            "blocked": const(False, n, pa.bool_()),
            "confidential": const(False, n, pa.bool_()),
        },
        "case": {
            "case_id": case_ids,
            "patient_key": keys,
            "care_unit": const("Vårdcentral Öjebyn", n, pa.string()),
            "case_type": const("öppenvård", n, pa.string()),
            "start_time": times,
            "end_time": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        },
        "diagnosis": {
            "diagnosis_id": ids("X", keys),
            "patient_key": keys,
            "case_id": case_ids,
            "code": const("R42.9", n, pa.string()),
            "code_system": const("icd10se", n, pa.string()),
            "code_system_version": pa.nulls(n, pa.string()),
            "time": times,
        },
        "medication": {
            "medication_id": ids("M", keys),
            "patient_key": keys,
            "atc": const("N02BE01", n, pa.string()),
            "product": const("Alvedon 500 mg", n, pa.string()),
            "dose": const("1 x 3", n, pa.string()),
            "time": times,
        },
        "lab_result": {
            "result_id": ids("L", keys),
            "patient_key": keys,
            "case_id": case_ids,
            "code": const("NPU02319", n, pa.string()),
            "code_system": const("npu", n, pa.string()),
            "code_system_version": pa.nulls(n, pa.string()),
            "analysis": const("Hemoglobin", n, pa.string()),
            "value": const("135", n, pa.string()),
            "unit": const("g/L", n, pa.string()),
            "time": times,
        },
        "attachment": {
            "attachment_id": ids("A", keys),
            "patient_key": keys,
            "document_id": pc.binary_join_element_wise("D", keys, "-0", ""),
            "filename": const("Remiss från vårdcentralen.pdf", n, pa.string()),
            "mimetype": const("application/pdf", n, pa.string()),
            "content": const(ATTACHMENT, n, pa.large_binary()),
        },
        "access_log": {
            "log_id": ids("G", keys),
            "patient_key": keys,
            "user": const("ulla.ek", n, pa.string()),
            "event": const("läst", n, pa.string()),
            "time": times,
        },
    }
    rows = 0
    for name, entity in ENTITIES.items():
        if name == "document":
            continue  # written below
        columns = tables.get(name, {})
        count = len(next(iter(columns.values()))) if columns else 0
        # the model's other fields null (no findings here: quality null too); an entity not listed has no rows
        table = pa.table({f.name: columns.get(f.name, pa.nulls(count, f.type)) for f in entity.schema}).cast(
            entity.schema
        )
        # row groups and codec as the map stage writes them (a package reads the map stage's files)
        pq.write_table(table, directory / f"{name}.parquet", row_group_size=row_group_rows(table), **PARQUET_OPTIONS)
        rows += table.num_rows
    # journal notes: `notes` per patient, written in slices so generation stays small too
    with pq.ParquetWriter(directory / "document.parquet", ENTITIES["document"].schema, **PARQUET_OPTIONS) as writer:
        for d in range(notes):
            suffix = pc.cast(pa.array(np.arange(n) * notes + d), pa.string())
            table = pa.table(
                {
                    "document_id": pc.binary_join_element_wise("D", keys, f"-{d}", ""),
                    "patient_key": keys,
                    "case_id": case_ids,
                    "care_unit": const("Vårdcentral Öjebyn", n, pa.string()),
                    "time": pc.add(times, pa.scalar(dt.timedelta(minutes=d))),
                    "title": const("Anteckning", n, pa.string()),
                    "text": pc.binary_join_element_wise(NOTE, suffix, " <slut> & klart", ""),
                    "author": const("Dr. Lindén", n, pa.string()),
                    "quality": pa.nulls(n, pa.string()),
                }
            ).cast(ENTITIES["document"].schema)
            writer.write_table(table, row_group_size=row_group_rows(table))
            rows += table.num_rows
    return rows


def _documentation(work: Path) -> tuple[Path, ...]:
    docs = work / "documentation"
    docs.mkdir(parents=True, exist_ok=True)
    agreement = docs / "delivery-agreement.txt"
    agreement.write_text("Leveransöverenskommelse (benchmark, synthetic)\n", encoding="utf-8")
    return (agreement,)


def child(step: str, work: Path, size: str) -> dict[str, Any]:
    """One step (``build`` or ``validate``) of one size, in this fresh process."""
    from decommission.package.sip import PackageContext, build_package
    from decommission.validate.validator import validate_package

    started, cpu = time.perf_counter(), _cpu()
    if step == "build":
        context = PackageContext(
            system_id="bench",
            system_name="Bench journal",
            region_name="Region Bench",
            region_id="SE0000000000",
            archive_name="R7 e-Arkiv",
            submitter_name="Region Bench",
            agreement_id="BENCH-1",
            record_status="TEST",
            created=CREATED,
            documentation=_documentation(work),
        )
        mapped = {p.stem: p for p in (work / "mapped" / size).glob("*.parquet")}
        result = build_package(
            mapped=mapped,
            context=context,
            partition_id="1",
            out_dir=work / "packages" / size,
            directory=os.environ.get("BENCH_TAR_ONLY") != "1",
        )
        out = {"files": result.file_count, "bytes": result.size, "patients": result.patients, "ok": True}
        (work / f"{size}.container").write_text(str(result.container), encoding="utf-8")
    else:
        container = Path((work / f"{size}.container").read_text(encoding="utf-8"))
        report = validate_package(container)
        out = {"ok": report.ok, "problems": len(report.problems)}
        if not report.ok:
            log(report.to_text()[:2000])
    seconds, cpu_seconds = time.perf_counter() - started, _cpu() - cpu
    return {**out, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "peak_rss_mb": _peak_mb()}


def run_child(step: str, work: Path, size: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), str(REPO), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "bench.packaging", "--child", step, "--work", str(work), "--size", size]
    done = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {step} process for {size} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-package", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs=2, default=[10_000, 100_000], help="package sizes in files")
    parser.add_argument("--notes", type=int, default=10, help="journal notes per patient")
    parser.add_argument("--tar-only", action="store_true", help="write the tar alone (no package folder beside it)")
    parser.add_argument("--child", choices=["build", "validate"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _paths()
    if args.tar_only:
        os.environ["BENCH_TAR_ONLY"] = "1"
    if args.child:
        print(json.dumps(child(args.child, args.work, args.size)), flush=True)
        return 0

    work = Path(tempfile.mkdtemp(prefix="decommission-bench-package-"))
    results = []
    try:
        for files in args.files:
            size, patients = f"{files}-files", max(1, files // 2)
            started = time.perf_counter()
            rows = write_partition(work / "mapped" / size, patients, args.notes)
            log(f"{size}: {patients} patients, {rows} rows written in {time.perf_counter() - started:.1f} s")
            build = run_child("build", work, size)
            validate = run_child("validate", work, size)
            shutil.rmtree(work / "packages" / size, ignore_errors=True)
            result = {
                "files": build["files"],
                "patients": patients,
                "rows": rows,
                "package_bytes": build["bytes"],
                "build_seconds": build["seconds"],
                "validate_seconds": validate["seconds"],
                "build_cpu_seconds": build["cpu_seconds"],
                "validate_cpu_seconds": validate["cpu_seconds"],
                "build_rows_per_s": round(rows / build["seconds"], 1),
                "rows_per_s": round(rows / (build["seconds"] + validate["seconds"]), 1),
                "rows_per_cpu_s": round(rows / (build["cpu_seconds"] + validate["cpu_seconds"]), 1),
                "build_peak_rss_mb": build["peak_rss_mb"],
                "validate_peak_rss_mb": validate["peak_rss_mb"],
                "valid": validate["ok"],
            }
            log(
                f"{size}: build {build['seconds']:.1f} s ({result['build_rows_per_s']:.0f} rows/s, peak "
                f"{build['peak_rss_mb']} MB), validate {validate['seconds']:.1f} s "
                f"(peak {validate['peak_rss_mb']} MB), "
                f"build + validate {result['rows_per_s']:.0f} rows/s ({result['rows_per_cpu_s']:.0f} per CPU second), "
                f"valid: {validate['ok']}"
            )
            results.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    small, large = results[0], results[-1]
    summary = {
        "sizes": results,
        "peak_rss_growth": round(
            max(large["build_peak_rss_mb"], large["validate_peak_rss_mb"])
            / max(small["build_peak_rss_mb"], small["validate_peak_rss_mb"]),
            3,
        ),
        "all_valid": all(r["valid"] for r in results),
        "container": "tar" if args.tar_only else "folder and tar",
    }
    print(json.dumps(summary), flush=True)
    return 0 if summary["all_valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
