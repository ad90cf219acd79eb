"""The reconciliation of a run: source, extraction, mapping, packages and the archive compared; the verdict."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from decommission import __version__
from decommission.deliver.receipts import read_receipts
from decommission.deliver.transport import archive_transport
from decommission.plan.programme import Milestone
from decommission.plan.run import Run
from decommission.reconcile.checks import FAIL, draw_sample, reconcile, sample_justification
from decommission.reconcile.readback import check_sample
from decommission.source.database import Source

log = logging.getLogger(__name__)


def reconcile_stage(
    run: Run, mapped: list[Mapping[str, Any] | None], packages: list[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """Compare source, extraction, mapping, packages and the archive's receipts; return the result.

    Runs even when waiting for the archive failed (a rejected package), so the report shows why;
    partitions whose tasks failed have no entry here and show as differences.
    """
    spec = run.spec
    mapped = [m for m in mapped if m]
    packages = [p for p in packages if p]
    cut_off = run.system.agreement.cut_off
    source = Source.for_system(run.system).count_rows(spec, cut_off)
    receipts = read_receipts(run, [p["package_id"] for p in packages])
    seed = int(run.logical_date.strftime("%Y%m%d"))
    accepted = [p for p in packages if receipts.get(p["package_id"], {}).get("status") == "accepted"]
    population = _patients(run, accepted)
    drawn = draw_sample(population, run.system.sample_patients, seed)
    hook = archive_transport() if drawn else None
    sample = check_sample(
        source=Source.for_system(run.system),
        spec=spec,
        cut_off=cut_off,
        drawn=drawn,
        read_record=lambda pid, key: hook.read_record(pid, key),
    )
    result = reconcile(
        table_entity={t: spec.tables[t].entity for t in spec.tables},
        source=source,
        mapped_parts=mapped,
        packages=packages,
        receipts=receipts,
        sample=sample,
        waivers=[w.model_dump(mode="json") for w in run.system.waivers],
    )
    result["sample"] |= {
        "seed": seed,
        "size_in_plan": run.system.sample_patients,
        "justification": sample_justification(run.system.sample_patients, len(population)),
        "patients": [{k: v for k, v in s.items() if k != "differences"} for s in sample],
    }
    result["breakdown"] = breakdown(run, mapped, [p["package_id"] for p in packages])
    result["reasons"] += breakdown_reasons(result["breakdown"])
    if result["reasons"]:
        result["verdict"] = FAIL
    result |= {
        "system": {"id": run.system.id, "name": run.system.name, "supplier": run.system.supplier},
        "run_id": run.run_id,
        "milestone": run.milestone.value,
        "record_status": run.record_status,
        "cut_off": cut_off.isoformat(),
        "agreement_id": run.system.agreement.id,
        "snapshot": run.logical_date.isoformat(),
        "software_version": __version__,
        "partitions": sorted(m["partition"]["id"] for m in mapped),
        "package_manifest": [
            {"package_id": p["package_id"], "sha256": p["sha256"], "size": p["size"]}
            for p in sorted(packages, key=lambda p: p["package_id"])
        ],
        "progress": _progress(run),
    }
    run.record(
        "reconciliation_result",
        {"milestone": run.milestone.value, "verdict": result["verdict"], "waived": len(result["waived"])},
    )
    return result


def _patients(run: Run, packages: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(package_id, patient_key) of every patient folder in the packages (keys are the folder names)."""
    from decommission.validate.tarindex import patient_folders

    population = []
    for p in packages:
        population += [
            (p["package_id"], key) for key in patient_folders(run.out("packages") / f"{p['package_id']}.tar")
        ]
    return population


def breakdown(run: Run, mapped: list[Mapping[str, Any]], package_ids: list[str]) -> dict[str, Any]:
    """Per year, care unit and patient, and fingerprints (see :mod:`decommission.reconcile.breakdown`)."""
    from decommission.reconcile.breakdown import reconcile_breakdown

    return reconcile_breakdown(run, [m["partition"]["id"] for m in mapped], package_ids)


def breakdown_reasons(b: Mapping[str, Any]) -> list[str]:
    """FAIL reasons from the breakdown: a year, care unit or patient whose counts differ; a changed fingerprint."""
    reasons = [
        f"source = extracted fails for year {year}: {v['source']} against {v['extracted']}"
        for year, v in b["years"].items()
        if v["source"] != v["extracted"]
    ]
    reasons += [
        f"source = extracted fails for care unit {u['unit']!r} of {u['table']}: {u['source']} against {u['extracted']}"
        for u in b["units"]
        if u["source"] != u["extracted"]
    ]
    if b["patients"]["differing"]:
        reasons.append(f"{len(b['patients']['differing'])} patients have other row counts extracted than in the source")
    reasons += [
        f"content fingerprint of {entity} differs: source {f['source']} against packages {f['package']}"
        for entity, f in b["fingerprints"].items()
        if f["source"] != f["package"]
    ]
    return reasons


def _progress(run: Run) -> list[dict[str, Any]]:
    """Archived rows at each earlier milestone of this system (for the progress chart)."""
    out = []
    for m in Milestone:
        if not m.runs_dag or m is run.milestone:
            continue
        path = run.out("reconciliation") / m.value / "result.json"
        if path.exists():
            earlier = json.loads(path.read_text(encoding="utf-8"))
            out.append({"milestone": m.value, **earlier["totals"]})
    return out
