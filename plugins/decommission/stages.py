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
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decommission import artefacts, settings
from decommission.deliver.approval import test_approval_problem
from decommission.deliver.receipts import keep_ingest_receipts, keep_receipt, read_receipts, sent_packages
from decommission.deliver.transport import archive_transport
from decommission.errors import ArchiveError, ArchiveRefusal, MappingError, PackageError, SourceWritable
from decommission.evidence.anchors import anchor_head
from decommission.files import write_atomic
from decommission.ledger import canonical, programme_ledger
from decommission.mapping.transform import map_partition
from decommission.model import DISPOSED_FILE, FINDINGS_FILE
from decommission.plan.mapping_spec import check_against_source, split_name
from decommission.plan.programme import Plan, System
from decommission.plan.run import Run, is_final, refuse_if_decommissioned, resolve_milestone, run_date
from decommission.privacy import current_key
from decommission.reconcile.coverage import coverage_of
from decommission.source import staging
from decommission.source.database import Partition, Source, make_partitions

#: the end of a run, imported when first used: an extract task needs neither lxml's readers nor fpdf
_LATER = {
    "build_evidence_pack": "decommission.evidence.pack",
    "contract_exit": "decommission.evidence.contract",
}

__all__ = [
    "Run",
    "start_run",
    "extract",
    "is_final",
    "keep_ingest_receipts",
    "map_stage",
    "package_stage",
    "plan_partitions",
    "preflight",
    "read_receipts",
    "reconcile_stage",
    "remove_staging",
    "report_stage",
    "resolve_milestone",
    "restore_staging",
    "submit",
    "validate_stage",
    *_LATER,
]


log = logging.getLogger(__name__)


#: new files and folders: owner and group only (packages, staging and evidence hold patient data)
PRIVATE_UMASK = 0o007


def start_run(
    plan: Plan, system: System, run_id: str, logical_date: dt.datetime | None, conf: Mapping[str, Any] | None
) -> Run:
    """The run a task acts for; from here on the task's process writes nothing others may read."""
    os.umask(PRIVATE_UMASK)
    milestone = resolve_milestone(system, logical_date, conf)
    return Run(plan, system, milestone, run_id, run_date(system, milestone, logical_date))


def perform(run: Run, name: str, *args: Any, **kwargs: Any) -> Any:
    """Run the task function ``name`` for ``run``; what it wrote under the system's home is then shared."""
    with artefacts.publishing(settings.home() / run.system.id):
        return getattr(sys.modules[__name__], name)(run, *args, **kwargs)


def board_report(plan: Plan, today: dt.date, run_id: str) -> dict[str, Any]:
    """The monthly board report (overview/board.py): HTML and PDF written, both hashes in the ledger."""
    from decommission.overview.board import write_board_report

    with artefacts.publishing(settings.home() / "programme"):
        return write_board_report(plan, today, run_id=run_id)


def preflight(run: Run) -> dict[str, Any]:
    """Check the hash key, then the mapping against the live source schema, before anything is read."""
    key = current_key()  # no secret key, no delivery: keyed hashes would not protect identifiers
    if key.demo:
        log.warning("keyed hashes use the public demo key (DECOMMISSION_ALLOW_DEMO_KEY=1): for demos and tests only")
    spec = run.spec
    relations = [r for t in spec.tables for r in spec.relations(t)]
    relations += [spec.reference_relation(name) for name in spec.reference_tables]
    live = Source.for_system(run.system).live_schema(relations)
    problems = check_against_source(spec, live)
    if problems:
        raise MappingError("; ".join(problems))
    refuse_if_decommissioned(run)  # a decommissioned system takes no delivery unless the plan reopens it
    source = Source.for_system(run.system)
    _check_read_only(run, source)
    _refuse_personal_patient_key(spec, source.patient_keys(spec))
    coverage = coverage_of(run.system, spec, source, source.count_rows(spec, run.system.agreement.cut_off))
    for finding in coverage["findings"]:
        # names of tables and columns only; the final delivery's reconciliation makes these FAIL reasons
        log.warning("coverage: %s", finding)
    run.record(
        "coverage",
        {
            "milestone": run.milestone.value,
            **{k: coverage[k] for k in ("columns_by_class", "tables_by_class", "rows", "coverage", "findings")},
        },
    )
    return {
        "milestone": run.milestone.value,
        "record_status": run.record_status,
        "tables": len(spec.tables),
        "coverage": coverage["coverage"],
        "coverage_findings": len(coverage["findings"]),
    }


def _check_read_only(run: Run, source: Source) -> None:
    """The source login must not be able to write: refused before a delivery that counts, warned before a test."""
    problems = source.write_access(run.spec.schemas(run.system.source.schema_name))
    run.record("source_access", {"milestone": run.milestone.value, "read_only": not problems, "problems": problems})
    if not problems:
        return
    what = (
        f"source '{source.conn_id}': the login could change the legacy database ({'; '.join(problems)}); "
        "give the programme a login that may only SELECT (GRANT USAGE on the schema and SELECT on its tables, "
        "nothing else: see README, Security)"
    )
    if run.record_status == "TEST":
        log.warning("%s. Only a test delivery goes ahead with it.", what)
        return
    raise SourceWritable(what)


def _refuse_personal_patient_key(spec: Any, keys: list[int]) -> None:
    """Partition bounds travel in XCom, the ledger and task logs: they must be internal keys, never identities."""
    import pandas as pd

    from decommission.mapping.identity import IdType, classify

    if not keys:
        return
    sample = pd.Series([str(k) for k in keys[:: max(1, len(keys) // 1000)]])
    kinds = classify(sample)["id_type"]
    personal = kinds.isin([IdType.PERSONNUMMER.value, IdType.SAMORDNINGSNUMMER.value]).sum()
    if personal * 2 >= len(sample):
        table = spec.tables[spec.patient_table]
        raise MappingError(
            f"tables.{spec.patient_table}: patient_key column '{table.patient_key}' holds personal identity numbers "
            f"({personal} of {len(sample)} keys sampled); map the table's internal row key as patient_key and the "
            "identity number as the personal_id field"
        )


def plan_partitions(run: Run) -> list[dict[str, Any]]:
    keys = Source.for_system(run.system).patient_keys(run.spec)
    return [p.to_dict() for p in make_partitions(keys, run.system.partition_patients)]


#: the catalogue entries of the partition's tables, beside their staged rows (the raw representation's metadata)
RAW_CATALOGUE = "catalogue.json"
#: the staged files of the tables not bound to a patient (``reference.<table>.parquet``)
REFERENCE_PREFIX = "reference."


def extract(run: Run, partition: dict[str, Any]) -> dict[str, Any]:
    """Every spec table of the partition, every column of it but those excluded by decision (the raw representation)."""
    from decommission.source.catalogue import raw_scope, read_catalogue, reference_scope

    part = Partition.from_dict(partition)
    spec = run.spec
    source = Source.for_system(run.system)
    own = run.system.source.schema_name or run.system.id  # as the coverage inventory names it
    catalogue = read_catalogue(source, count=False, schemas=spec.schemas(own))
    scope = raw_scope(catalogue, spec, run.system.exclusions, own)
    extra = {name: [c.name for c in table.columns] for name, table in scope.items()}
    # tables not bound to a patient: whole, once per delivery, with the first partition (its range starts open)
    reference = reference_scope(catalogue, spec, run.system.exclusions, own) if part.lo is None else {}
    final = staging.stage_slot(run.system.id, run.milestone.value, "extract", part.id)
    with staging.replacing(final) as tmp:
        totals = source.extract_partition(
            spec,
            part,
            run.system.agreement.cut_off,
            lambda table: staging.open_output(tmp / f"{table}.parquet"),
            extra,
        )
        totals |= source.extract_whole(
            reference, lambda table: staging.open_output(tmp / f"{REFERENCE_PREFIX}{table}.parquet")
        )
        raw = {
            "tables": {name: table.to_dict() for name, table in scope.items()},
            "reference": {name: table.to_dict() for name, table in reference.items()},
        }
        with staging.open_output(tmp / RAW_CATALOGUE) as fh:
            fh.write(canonical(raw).encode())
    run.record("extract", {"partition": part.to_dict(), "totals": totals})
    return {"partition": part.to_dict(), "uri": str(final), "rows": {t: v["rows"] for t, v in totals.items()}}


def map_stage(run: Run, extracted: dict[str, Any]) -> dict[str, Any]:
    part = Partition.from_dict(extracted["partition"])
    spec = run.spec
    source_dir = staging.stage_dir(run.system.id, run.milestone.value, "extract", part.id)
    if not source_dir.exists():  # removed after acceptance (reconcile/cleanup.py): a rerun extracts again
        log.info("the extracted rows of partition %s are gone (removed after acceptance); extracting again", part.id)
        extract(run, part.to_dict())
        source_dir = staging.stage_dir(run.system.id, run.milestone.value, "extract", part.id)
    final = staging.stage_slot(run.system.id, run.milestone.value, "mapped", part.id)
    with staging.replacing(final) as tmp:
        result = map_partition(spec, lambda t: _spec_columns(spec, t, source_dir), tmp, staging.open_output)
    counts = result.to_dict()
    # the corrections applied (rows as keyed hashes, who decided): the ledger is where a correction is recorded
    run.record("mapping", {"partition": part.id, **counts, "corrections": result.corrections})
    return {"partition": part.to_dict(), "uri": str(final), **counts}


def _spec_columns(spec: Any, table: str, source_dir: Any) -> Any:
    """The staged row groups of a table, with the columns the spec reads (the rest are for the raw representation)."""
    t = spec.tables[table]
    columns = list(dict.fromkeys([*t.columns(), t.row_key]))  # a composite or prefixed key's row key too
    for rows in staging.read_row_groups(source_dir / f"{table}.parquet"):
        yield rows.select([c for c in columns if c in rows.column_names])


def _raw_part(run: Run, extract_dir: Path, mapped_dir: Path) -> Any:
    """The partition's source rows for the raw representation: catalogue, staged rows, disposed keys."""
    import pyarrow.parquet as pq

    from decommission.package.siard import Column, Database, RawPart, RawTable

    spec = run.spec
    catalogue = json.loads((extract_dir / RAW_CATALOGUE).read_text(encoding="utf-8"))
    gone: dict[str, set[str]] = {}
    disposed_path = mapped_dir / DISPOSED_FILE
    if disposed_path.exists():
        rows = pq.read_table(disposed_path)
        for table, key in zip(rows.column("table").to_pylist(), rows.column("key").to_pylist(), strict=True):
            gone.setdefault(table, set()).add(key)
    tables, seen = [], set()

    def add(entry: dict[str, Any], path: Path, key: str, disposed: set[str]) -> None:
        if entry["name"] in seen:  # two spec tables reading one source table: its rows once
            return
        seen.add(entry["name"])
        tables.append(
            RawTable(
                name=entry["name"],
                columns=tuple(
                    Column(c["name"], c["type"], c["nullable"], c.get("comment", "")) for c in entry["columns"]
                ),
                path=path,
                key=key,
                primary_key=tuple(entry["primary_key"]),
                foreign_keys=tuple(entry["foreign_keys"]),
                comment=entry.get("comment", ""),
                disposed=frozenset(disposed),
                # a table of another schema than the source's is named schema.table (source/catalogue.py)
                schema=split_name(entry["name"])[0],
            )
        )

    for name, entry in catalogue["tables"].items():
        add(entry, extract_dir / f"{name}.parquet", spec.tables[name].row_key, gone.get(name, set()))
    for name, entry in catalogue["reference"].items():
        key = (entry["primary_key"] or [entry["columns"][0]["name"]])[0]
        add(entry, extract_dir / f"{REFERENCE_PREFIX}{name}.parquet", key, set())
    database = Database(
        name=run.system.name,
        schema=run.system.source.schema_name or run.system.id,
        data_owner=run.plan.region.name,
        origin=f"-{run.system.agreement.cut_off.isoformat()}",
        archived=run.package_created.date(),
        producer=f"decommission {_version()}",
        description=f"Raw rows of {run.system.name} ({run.system.supplier}), partition as in the package",
    )
    return RawPart(database, tuple(tables))


def _version() -> str:
    from decommission import __version__

    return __version__


def package_stage(run: Run, mapped: dict[str, Any]) -> dict[str, Any]:
    """Build the partition's package tar (hashed as written); ``validate_stage`` checks it before it may leave."""
    from decommission.package import sip

    part = Partition.from_dict(mapped["partition"])
    mapped_dir = staging.stage_dir(run.system.id, run.milestone.value, "mapped", part.id)
    if not mapped_dir.exists():  # removed after acceptance: a rerun maps (and extracts) again
        log.info("the mapped rows of partition %s are gone (removed after acceptance); mapping again", part.id)
        map_stage(run, {"partition": part.to_dict()})
        mapped_dir = staging.stage_dir(run.system.id, run.milestone.value, "mapped", part.id)
    extract_dir = staging.stage_dir(run.system.id, run.milestone.value, "extract", part.id)
    with staging.local_dir(mapped_dir) as local, staging.local_dir(extract_dir) as extracted:
        files = {p.stem: p for p in local.glob("*.parquet") if p.name not in (FINDINGS_FILE, DISPOSED_FILE)}
        result = sip.build_package(
            mapped=files,
            context=_package_context(run, placeholders=int(mapped.get("placeholders", 0))),
            partition_id=part.id,
            out_dir=run.out("packages"),
            directory=False,  # the tar is what is delivered; a folder beside it would double the work
            raw=_raw_part(run, extracted, local),
        )
    package = {
        "partition": part.id,
        "package_id": result.package_id,
        "container": artefacts.key(result.container),  # a name under any worker's home, not this one's path
        "sha256": result.sha256,
        "size": result.size,
        "counts": result.counts,
        "patients": result.patients,
        "raw_rows": result.raw_rows,
        "raw_seconds": round(result.raw_seconds, 3),
    }
    run.record("package", {k: package[k] for k in ("package_id", "partition", "sha256", "size", "counts", "raw_rows")})
    return package


def validate_stage(run: Run, package: dict[str, Any]) -> dict[str, Any]:
    """Validate the built tar (the bytes that will be delivered); an invalid package never leaves.

    A task of its own: a failure reads "not valid" in the grid, not "could not build", and a
    validator fix needs no rebuild. The tar's SHA-256 must still be the one the build recorded.
    """
    from decommission.validate.validator import validate_package

    container = artefacts.local(package["container"])
    try:
        artefacts.fetch(container, package["sha256"])  # from the store when another worker built it
    except ValueError as exc:
        raise PackageError(f"package {package['package_id']}: {exc}") from exc
    with container.open("rb") as f:
        if hashlib.file_digest(f, "sha256").hexdigest() != package["sha256"]:
            raise PackageError(f"package {package['package_id']} changed on disk after it was built (SHA-256 differs)")
    digests = _digests_while_validating(run, package["package_id"])
    report = validate_package(container, read_record=digests.read)
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
            **digests.result(),
        },
    )
    if not report.ok:
        first = "; ".join(f"{p.requirement} {p.path}: {p.message}" for p in report.problems[:5])
        raise PackageError(f"package {package['package_id']} is not valid ({len(report.problems)} problems): {first}")
    if report.raw_rows != package.get("raw_rows", {}):
        # the rows read back from the SIARD part must be those the build recorded in the ledger
        raise PackageError(
            f"package {package['package_id']}: the SIARD part holds {report.raw_rows} rows per table, "
            f"the build recorded {package.get('raw_rows', {})}"
        )
    return package


def _digests_while_validating(run: Run, package_id: str) -> Any:
    """The reconciliation's digests of the package's records, read as the validator parses them (once).

    Which table made which record comes from the partition the ledger says the package was built
    from (not from task data); without its staged rows there are no digests here and the
    reconciliation reads the package back itself.
    """
    from decommission.deliver.receipts import from_ledger
    from decommission.reconcile.breakdown import package_owners
    from decommission.reconcile.package_digests import DigestsWhileValidating, RecordReader

    owners = package_owners(run, from_ledger(run, "package", "package_id").get(package_id, {}).get("partition"))
    return DigestsWhileValidating(None if owners is None else RecordReader(run.spec, owners))


def reconcile_partition(run: Run, mapped: dict[str, Any]) -> dict[str, Any]:
    """One partition's side of the reconciliation, beside the others' (reconcile/breakdown.py): its source
    rows read again within its key range, its staged rows counted; kept as a file whose SHA-256 the
    ledger holds, which the reconcile task adds up (a partition without one it counts itself)."""
    from decommission.reconcile.breakdown import extracted_partitions, partition_tally, tally_path

    pid = mapped["partition"]["id"]
    restore_staging(run, only=pid)
    part = extracted_partitions(run).get(pid)  # the key range as the ledger recorded it, not as XCom says
    if part is None:
        raise MappingError(f"partition {pid}: no extraction of it in the ledger for run {run.run_id}")
    data = canonical(partition_tally(run, part)).encode()
    sha = hashlib.sha256(data).hexdigest()
    write_atomic(tally_path(run, pid), data)
    run.record("reconcile_partition", {"partition": pid, "sha256": sha})
    return {"partition": pid, "sha256": sha}


def reconcile_stage(
    run: Run, mapped: list[dict[str, Any] | None], packages: list[dict[str, Any] | None]
) -> dict[str, Any]:
    """The reconciliation (reconcile/closeout.py), after any staging removed by an earlier attempt is back."""
    from decommission.reconcile.closeout import reconcile_stage as reconcile

    restore_staging(run)
    return reconcile(run, mapped, packages)


def report_stage(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """The report (report/publish.py), which lists findings from the mapped staging: restored first if removed."""
    from decommission.report.publish import report_stage as report

    restore_staging(run)
    return report(run, result)


def remove_staging(run: Run) -> dict[str, Any]:
    """Remove the staging of the partitions whose packages the archive holds, verified (reconcile/cleanup.py)."""
    from decommission.reconcile.cleanup import remove_verified_staging

    return remove_verified_staging(run)


def restore_staging(run: Run, only: str | None = None) -> list[str]:
    """Extract and map again every partition of this run (or partition ``only``) whose staging was removed
    after acceptance.

    A task cleared after the removal (reconcile, report) then reads what it always read: the same
    source under the same cut-off gives the same bytes. Returns the partitions restored.
    """
    removed = {
        e.payload["partition"]
        for e in programme_ledger().entries(system_id=run.system.id, kind="staging_removed")
        if e.run_id == run.run_id
    }
    restored = []
    for partition in sorted(removed):
        if only is not None and partition != only:
            continue
        extracted = [
            e.payload["partition"]
            for e in programme_ledger().entries(system_id=run.system.id, kind="extract")
            if e.run_id == run.run_id and e.payload["partition"]["id"] == partition
        ]
        folders = [staging.stage_dir(run.system.id, run.milestone.value, s, partition) for s in ("extract", "mapped")]
        if extracted and not all(f.exists() for f in folders):
            log.info("staging of partition %s was removed after acceptance; extracting and mapping it again", partition)
            map_stage(run, extract(run, extracted[-1]))
            restored.append(partition)
    return restored


def _package_context(run: Run, placeholders: int = 0) -> Any:
    """The package's context; ``placeholders``: patients the mapping made to hold orphans' rows (beyond the plan's)."""
    from decommission.package.context import DEFAULT_MAX_BYTES as PACKAGE_MAX_BYTES
    from decommission.package.context import PackageContext

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
        max_patients=run.system.partition_patients + placeholders,
        max_bytes=int(os.environ.get("DECOMMISSION_PACKAGE_MAX_BYTES", PACKAGE_MAX_BYTES)),
    )


def _write_documentation(run: Run) -> tuple[Path, ...]:
    """The delivery agreement, the mapping spec (and its correction list) and a system description."""
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
    corrections = run.spec.corrections_path()
    if corrections is None:
        return (agreement, mapping, description)
    # the correction list is part of how the records were made: whoever reads the package can see it
    listed = write_atomic(doc_dir / "corrections.yaml", corrections.read_bytes())
    return (agreement, mapping, description, listed)


def submit(run: Run, package: dict[str, Any], *, override: str | None = None) -> dict[str, Any]:
    """Deliver one package; a production delivery waits for the archive's approval of the test delivery."""
    recorded = sent_packages(run).get(package["package_id"])
    if recorded is None or recorded["sha256"] != package["sha256"]:
        raise PackageError(
            f"package {package['package_id']}: the task data (XCom) names a package this run's ledger does not record"
        )
    hook = archive_transport()
    if run.record_status != "TEST":
        _require_test_approval(run, hook, override)
    # the ledger's head goes to the archive with every delivery: a chain cut short later is caught
    anchor_head(hook, programme_ledger(), run.system.id, f"delivery {run.delivery_id}")
    hook.open_delivery(run.delivery_id, run.system.agreement.id, run.system.id, run.record_status)
    # streamed from the artefact store when another worker built it: no local copy of the whole package
    container = artefacts.open_shared(artefacts.local(package["container"]))
    receipt = hook.submit_package(package["package_id"], container, package["sha256"], run.delivery_id)
    digest = keep_receipt(run, package["package_id"], "transport", receipt)
    return {"package_id": package["package_id"], "receipt_sha256": digest, "duplicate": bool(receipt.get("duplicate"))}


def _require_test_approval(run: Run, hook: Any, override: str | None) -> None:
    test_delivery = f"{run.system.agreement.id}-TEST"
    sent = {
        e.payload["package_id"]
        for e in programme_ledger().entries(system_id=run.system.id, kind="transport_receipt")
        if e.payload.get("delivery_id") == test_delivery
    }
    try:
        problem = test_approval_problem(hook.delivery(test_delivery), test_delivery, sent)
    except ArchiveError as exc:
        if exc.retryable:
            # unreachable is not "not approved": the task retries, the operator is not told to override
            raise ArchiveError(f"the archive did not answer for test delivery {test_delivery}: {exc}") from exc
        problem = str(exc)
    except (KeyError, TypeError, AttributeError) as exc:
        problem = f"the archive answered with a malformed delivery document ({type(exc).__name__})"
    if problem is None:
        run.record("test_approval", {"delivery": test_delivery, "packages": sorted(sent)})
        return
    if override:
        run.record("test_approval_override", {"delivery": test_delivery, "problem": problem, "override": override})
        log.warning("Test delivery %s not approved (%s); going on under the recorded override", test_delivery, problem)
        return
    raise ArchiveRefusal(
        f"test delivery {test_delivery} is not approved: {problem}; production delivery waits "
        '(or trigger with conf {"override_test_approval": "<name>: <reason>"})'
    )


def __getattr__(name: str) -> Any:
    if name in _LATER:
        import importlib

        return getattr(importlib.import_module(_LATER[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
