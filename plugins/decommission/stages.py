"""What each task of a system's DAG does, as plain functions of the plan and the run.

The DAG file only wires these. Each returns counts, URIs and digests (what XCom may
carry), never patient data, and records its evidence in the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decommission import settings, staging
from decommission.errors import ArchiveError, ArchiveRefusal, MappingError, PackageError
from decommission.files import write_atomic
from decommission.ledger import Ledger, canonical
from decommission.mapping import map_partition
from decommission.mapping_spec import MappingSpec, check_against_source, load_spec
from decommission.plan import Milestone, Plan, System
from decommission.source import Partition, Source, make_partitions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One DAG run of one system: the plan entry, the milestone it acts for, its id and date."""

    plan: Plan
    system: System
    milestone: Milestone
    run_id: str
    logical_date: dt.datetime

    @property
    def spec(self) -> MappingSpec:
        return load_spec(self.plan.mapping_path(self.system))

    @property
    def source(self) -> Source:
        return Source(self.system.source.conn_id, schema=self.system.source.schema_name)

    @property
    def record_status(self) -> str:
        return self.milestone.record_status

    @property
    def delivery_id(self) -> str:
        return f"{self.system.agreement.id}-{self.record_status}"

    @property
    def package_created(self) -> dt.datetime:
        """The one date inside packages: the snapshot's cut-off, so reruns give identical bytes."""
        return dt.datetime.combine(self.system.agreement.cut_off, dt.time(23, 59, 59), tzinfo=dt.UTC)

    def out(self, part: str) -> Path:
        return settings.system_dir(self.system.id, part)

    def record(self, kind: str, payload: dict[str, Any]) -> str:
        """Append evidence to the ledger; returns the entry hash."""
        entry = ledger().append(system_id=self.system.id, run_id=self.run_id, kind=kind, payload=payload)
        return entry.entry_hash


def ledger() -> Ledger:
    return Ledger.from_conn_id(settings.LEDGER_CONN_ID)


def resolve_milestone(system: System, logical_date: dt.datetime | None, conf: Mapping[str, Any] | None) -> Milestone:
    """The milestone a run acts for: ``conf["milestone"]`` if given, else the plan date it runs on."""
    wanted = (conf or {}).get("milestone")
    if wanted:
        try:
            return Milestone(wanted)
        except ValueError as exc:
            allowed = ", ".join(m.value for m in Milestone if m.runs_dag)
            raise MappingError(f"run conf milestone '{wanted}' is not one of: {allowed}") from exc
    found = system.milestone_on(logical_date.date()) if logical_date else None
    if found is None or not found.runs_dag:
        raise MappingError(
            f"system '{system.id}': no delivery milestone on {logical_date and logical_date.date()}; "
            'trigger with conf {"milestone": "test_delivery" | "production_delivery" | "final_delivery"}'
        )
    return found


def is_final(run: Run) -> bool:
    """Only the final delivery goes on to sign-off and the contract exit."""
    return run.milestone is Milestone.FINAL_DELIVERY


def preflight(run: Run) -> dict[str, Any]:
    """Check the mapping against the live source schema before anything is read."""
    spec = run.spec
    live = run.source.live_schema([spec.source_table(t) for t in spec.tables])
    problems = check_against_source(spec, live)
    if problems:
        raise MappingError("; ".join(problems))
    return {"milestone": run.milestone.value, "record_status": run.record_status, "tables": len(spec.tables)}


def plan_partitions(run: Run) -> list[dict[str, Any]]:
    keys = run.source.patient_keys(run.spec)
    return [p.to_dict() for p in make_partitions(keys, run.system.partition_patients)]


def extract(run: Run, partition: dict[str, Any]) -> dict[str, Any]:
    part = Partition.from_dict(partition)
    spec = run.spec
    final = staging.stage_dir(run.system.id, run.milestone.value, "extract", part.id)
    with staging.replacing(final) as tmp:
        totals = run.source.extract_partition(
            spec, part, run.system.agreement.cut_off, lambda table: staging.open_output(tmp / f"{table}.parquet")
        )
    run.record("extract", {"partition": part.to_dict(), "totals": totals})
    return {"partition": part.to_dict(), "uri": str(final), "rows": {t: v["rows"] for t, v in totals.items()}}


def map_stage(run: Run, extracted: dict[str, Any]) -> dict[str, Any]:
    part = Partition.from_dict(extracted["partition"])
    spec = run.spec
    source_dir = staging.stage_dir(run.system.id, run.milestone.value, "extract", part.id)
    final = staging.stage_dir(run.system.id, run.milestone.value, "mapped", part.id)
    with staging.replacing(final) as tmp:
        result = map_partition(
            spec, lambda t: staging.read_row_groups(source_dir / f"{t}.parquet"), tmp, staging.open_output
        )
    counts = result.to_dict()
    run.record("mapping", {"partition": part.id, **counts})
    return {"partition": part.to_dict(), "uri": str(final), **counts}


def package_stage(run: Run, mapped: dict[str, Any]) -> dict[str, Any]:
    """Build the partition's package tar (hashed as written); ``validate_stage`` checks it before it may leave."""
    from decommission import sip

    part = Partition.from_dict(mapped["partition"])
    mapped_dir = staging.stage_dir(run.system.id, run.milestone.value, "mapped", part.id)
    with staging.local_dir(mapped_dir) as local:
        files = {p.stem: p for p in local.glob("*.parquet") if p.stem != "quarantine"}
        result = sip.build_package(
            mapped=files,
            context=_package_context(run),
            partition_id=part.id,
            out_dir=run.out("packages"),
            directory=False,  # the tar is what is delivered; a folder beside it would double the work
        )
    package = {
        "partition": part.id,
        "package_id": result.package_id,
        "container": str(result.container),
        "sha256": result.sha256,
        "size": result.size,
        "counts": result.counts,
        "patients": result.patients,
    }
    run.record("package", {k: package[k] for k in ("package_id", "sha256", "size", "counts")})
    return package


def validate_stage(run: Run, package: dict[str, Any]) -> dict[str, Any]:
    """Validate the built tar (the bytes that will be delivered); an invalid package never leaves.

    A task of its own: a failure reads "not valid" in the grid, not "could not build", and a
    validator fix needs no rebuild. The tar's SHA-256 must still be the one the build recorded.
    """
    from decommission.validate import validate_package

    container = Path(package["container"])
    with container.open("rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != package["sha256"]:
            raise PackageError(f"package {package['package_id']} changed on disk after it was built (SHA-256 differs)")
    report = validate_package(container)
    write_atomic(
        run.out("validation") / f"{package['package_id']}.json",
        json.dumps(report.to_dict(), indent=2, ensure_ascii=False),
    )
    run.record(
        "validation",
        {
            "package_id": package["package_id"],
            "sha256": package["sha256"],
            "valid": report.ok,
            "problems": len(report.problems),
        },
    )
    if not report.ok:
        first = "; ".join(f"{p.requirement} {p.path}: {p.message}" for p in report.problems[:5])
        raise PackageError(f"package {package['package_id']} is not valid ({len(report.problems)} problems): {first}")
    return package


def _package_context(run: Run) -> Any:
    from decommission.sip import DEFAULT_MAX_BYTES as PACKAGE_MAX_BYTES
    from decommission.sip import PackageContext

    docs = _write_documentation(run)
    return PackageContext(
        system_id=run.system.id,
        system_name=run.system.name,
        region_name=run.plan.region.name,
        region_id=run.plan.region.id,
        archive_name=run.plan.region.archive,
        submitter_name=run.plan.region.submitter,
        agreement_id=run.system.agreement.id,
        record_status=run.record_status,
        created=run.package_created,
        documentation=docs,
        # a package holds one partition; the byte bound stops one that grows past what the archive takes
        max_patients=run.system.partition_patients,
        max_bytes=int(os.environ.get("DECOMMISSION_PACKAGE_MAX_BYTES", PACKAGE_MAX_BYTES)),
    )


def _write_documentation(run: Run) -> tuple[Path, ...]:
    """The delivery agreement, the mapping spec and a system description, for documentation/."""
    # package tasks of one run write these at the same time: identical bytes, swapped in atomically
    doc_dir = run.out("documentation")
    agreement = write_atomic(
        doc_dir / "delivery-agreement.json",
        canonical(
            {
                "agreement": run.system.agreement.model_dump(mode="json"),
                "system": run.system.id,
                "region": run.plan.region.model_dump(mode="json"),
            }
        ),
    )
    description = write_atomic(
        doc_dir / "system-description.txt",
        f"{run.system.name}\nSupplier: {run.system.supplier}\nKind: {run.system.kind}\n\n{run.system.description}\n",
    )
    mapping = write_atomic(doc_dir / "mapping-spec.yaml", run.plan.mapping_path(run.system).read_bytes())
    return (agreement, mapping, description)


def archive_hook() -> Any:
    """The archive transport the archive connection's type asks for (HTTP protocol or SFTP drop folder)."""
    from decommission.transport import transport_for

    return transport_for(settings.ARCHIVE_CONN_ID)


def submit(run: Run, package: dict[str, Any], *, override: str | None = None) -> dict[str, Any]:
    """Deliver one package; a production delivery waits for the archive's approval of the test delivery."""
    hook = archive_hook()
    if run.record_status != "TEST":
        _require_test_approval(run, hook, override)
    hook.open_delivery(run.delivery_id, run.system.agreement.id, run.system.id, run.record_status)
    receipt = hook.submit_package(package["package_id"], Path(package["container"]), package["sha256"], run.delivery_id)
    digest = _keep_receipt(run, package["package_id"], "transport", receipt)
    return {"package_id": package["package_id"], "receipt_sha256": digest, "duplicate": bool(receipt.get("duplicate"))}


def _require_test_approval(run: Run, hook: Any, override: str | None) -> None:
    test_delivery = f"{run.system.agreement.id}-TEST"
    try:
        approval = hook.delivery(test_delivery).get("approval")
    except ArchiveError:
        approval = None
    if approval:
        return
    if override:
        run.record("test_approval_override", {"delivery": test_delivery, "override": override})
        log.warning("Test delivery %s not approved; going on under the recorded override", test_delivery)
        return
    raise ArchiveRefusal(
        f"the archive has not approved test delivery {test_delivery}; production delivery waits "
        '(or trigger with conf {"override_test_approval": "<name>: <reason>"})'
    )


def _keep_receipt(run: Run, package_id: str, kind: str, receipt: Mapping[str, Any]) -> str:
    data = json.dumps(receipt, indent=2, sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(run.out("receipts") / f"{package_id}.{kind}.json", data)
    run.record(f"{kind}_receipt", {"package_id": package_id, "sha256": digest, "status": receipt.get("status")})
    return digest


def keep_ingest_receipts(run: Run, receipts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Keep every ingest receipt; fail with the archive's reasons if any package was rejected.

    The receipts are kept verbatim; in the error, patient folder names in the reasons' paths
    are replaced by their keyed hash, so the task log names no patient.
    """
    from decommission.transport import describe_reasons

    rejected = {}
    for package_id, receipt in sorted(receipts.items()):
        _keep_receipt(run, package_id, "ingest", receipt)
        if receipt.get("status") != "accepted":
            rejected[package_id] = receipt.get("reasons", [])
    if rejected:
        lines = [f"{pid}: {describe_reasons(rs)}" for pid, rs in rejected.items()]
        raise ArchiveRefusal(f"the archive rejected {len(rejected)} package(s): " + " | ".join(lines))
    return {"accepted": len(receipts)}


def read_receipts(run: Run, package_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for pid in package_ids:
        path = run.out("receipts") / f"{pid}.ingest.json"
        if path.exists():
            out[pid] = json.loads(path.read_text(encoding="utf-8"))
    return out
