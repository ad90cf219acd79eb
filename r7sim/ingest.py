"""r7sim's ingest: validate each package that arrived, count its records, issue the ingest receipt.

One background thread ingests packages ``ingest_delay`` seconds after they arrive; packages a
stopped server left pending are ingested at the next start. The project's own validator
(``decommission.validate.validator``) decides; r7sim never accepts what it did not validate.

One bad package cannot hold up the others: each is validated in a worker thread with the
validator's own time budget, ``R7SIM_INGEST_SECONDS`` (600 by default); a worker that has not
answered :data:`GRACE_SECONDS` after that is given up and the package rejected with a reason.
A package whose ingest was cut short :data:`MAX_ATTEMPTS` times (r7sim stopped or crashed
while validating it, counted in ``<package>.ingest-attempts`` beside its tar) is rejected at
the next start instead of being tried for ever.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import re
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from r7sim.misbehave import damage_stored
from r7sim.settings import Settings
from r7sim.store import ARCHIVE_NAME, Store, now_iso

log = logging.getLogger("r7sim")

#: tar members holding one patient's record: ``[<root>/]representations/rep1/data/<patient>/record.xml``
RECORD_MEMBER = re.compile(r"^(?:\./)?(?:[^/]+/)?representations/rep1/data/([^/]+)/record\.xml$")
_CHUNK = 1 << 20
_MAX_REASONS = 1000
_ARCHIVE_ID_NAMESPACE = uuid.UUID("6f1d9c1e-0d7e-4b8e-9a51-7a1c2b3d4e5f")
#: seconds r7sim waits for a worker beyond the validator's budget before it gives the package up
GRACE_SECONDS = 10.0
#: ingests of one package cut short by a stop or crash of r7sim before it is rejected
MAX_ATTEMPTS = 2


def ingest_seconds() -> float:
    """The time one package's validation may take: ``R7SIM_INGEST_SECONDS``, 600 by default."""
    return float(os.environ.get("R7SIM_INGEST_SECONDS", "600"))


def record_members(tar: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    """Yield ``(patient_key, member)`` for each patient record in a package's tar."""
    for member in tar:
        match = RECORD_MEMBER.match(member.name)
        if match and member.isfile():
            yield match.group(1), member


def record_from_tar(tar_path: Path, patient_key: str) -> bytes | None:
    """Return one patient's ``record.xml`` from a package's tar, or None."""
    with tarfile.open(tar_path, "r:") as tar:
        for key, member in record_members(tar):
            if key == patient_key:
                extracted = tar.extractfile(member)
                return extracted.read() if extracted is not None else None
    return None


def validator_missing() -> bool:
    """Whether the project's validator cannot be imported (every package would then be rejected)."""
    try:
        from decommission.validate.validator import validate_package  # noqa: F401
    except ImportError:
        return True
    return False


class Ingestor:
    """One background thread that ingests packages ``ingest_delay`` seconds after they arrive."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._queue: queue.PriorityQueue[tuple[float, int, str]] = queue.PriorityQueue()
        self._seq = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="r7sim-ingest", daemon=True)

    def start(self) -> None:
        """Start the thread and queue every package a previous run left pending."""
        for package_id in self.store.pending_packages():
            log.info("resuming the ingest of %s", package_id)
            self.schedule(package_id)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the package being ingested; unfinished ones stay pending for the next run."""
        self._stopping.set()
        self._thread.join(timeout=10)

    def schedule(self, package_id: str) -> None:
        """Queue a package for ingest after the configured delay."""
        self._seq += 1
        self._queue.put((time.monotonic() + self.settings.ingest_delay, self._seq, package_id))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                due, seq, package_id = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                self._queue.put((due, seq, package_id))
                self._stopping.wait(min(wait, 0.1))
                continue
            try:
                self._ingest(package_id)
            except Exception:  # keep the thread alive; the package stays pending
                log.exception("ingest of %s failed inside r7sim", package_id)

    def _ingest(self, package_id: str) -> None:
        ingest_held(self.store, package_id, settings=self.settings)


def ingest_held(store: Store, package_id: str, *, settings: Settings) -> dict | None:
    """Ingest a held package that is still pending and store its final receipt.

    ``settings.reject`` rejects a package whatever the validator says; ``auto_approve_test``
    approves its TEST delivery once every package in it is accepted; the damage settings of
    :mod:`r7sim.misbehave` change the stored bytes after ingest.

    :returns: the ingest receipt, or None when the package is not held or not pending
    """
    row = store.package(package_id)
    if row is None or row["status"] != "pending":
        return None
    path = store.package_path(package_id)
    attempts = path.with_name(f"{package_id}.ingest-attempts")
    status, reasons, counts = _ingest_bounded(path, attempts, forced_reject=package_id in settings.reject)
    stored_sha256 = damage_stored(path, package_id, settings) or row["sha256"]
    receipt = {
        "receipt_type": "ingest",
        "package_id": package_id,
        "delivery_id": row["delivery_id"],
        "sha256": stored_sha256,
        "status": status,
        "reasons": reasons,
        "archive_id": _archive_id(package_id, row["sha256"]) if status == "accepted" else None,
        "counts": counts,
        "ingested_at": now_iso(),
        "archive": ARCHIVE_NAME,
    }
    if stored_sha256 != row["sha256"]:
        store.restate_holding(package_id, stored_sha256, path.stat().st_size)
    approval = store.finish_ingest(package_id, receipt, auto_approve_test=settings.auto_approve_test)
    attempts.unlink(missing_ok=True)
    log.info("package %s %s (%d reasons)", package_id, status, len(reasons))
    if approval:
        log.info("TEST delivery %s approved automatically: %s", row["delivery_id"], approval)
    return receipt


def _ingest_bounded(path: Path, attempts: Path, *, forced_reject: bool) -> tuple[str, list[dict[str, str]], dict]:
    """:func:`ingest_package` in a worker thread, given up past its time; a package that keeps
    interrupting r7sim is rejected (``attempts`` counts the ingests begun and not finished)."""
    try:
        begun = int(attempts.read_text(encoding="ascii"))
    except (OSError, ValueError):
        begun = 0
    if begun >= MAX_ATTEMPTS:
        why = f"its ingest was cut short {begun} times (r7sim stopped or crashed while validating it)"
        return "rejected", [_reason("R7SIM-INGEST", "", why)], {}
    attempts.write_text(str(begun + 1), encoding="ascii")
    seconds = ingest_seconds()
    outcome: list[tuple[str, list[dict[str, str]], dict]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(ingest_package(path, forced_reject=forced_reject, seconds=seconds)),
        name=f"r7sim-validate-{path.stem}",
        daemon=True,  # a worker that never returns must not keep r7sim from stopping
    )
    worker.start()
    worker.join(seconds + GRACE_SECONDS)
    if outcome:
        return outcome[0]
    log.error("validation of %s did not finish within %g s: rejected", path.name, seconds)
    why = f"validation did not finish within {seconds:g} s" if worker.is_alive() else "validation crashed"
    return "rejected", [_reason("R7SIM-INGEST", "", why)], {}


def _archive_id(package_id: str, sha256: str) -> str:
    """Return the archive's id of an accepted package: the same package always gets the same id."""
    name = package_id + "\n" + sha256
    return f"r7sim:{uuid.uuid5(_ARCHIVE_ID_NAMESPACE, name)}"


def ingest_package(
    tar_path: Path, *, forced_reject: bool = False, seconds: float | None = None
) -> tuple[str, list[dict[str, str]], dict]:
    """Validate a package and count its records, as the archive's ingest does.

    :param tar_path: the package's tar file
    :param forced_reject: reject whatever the validator says (setting ``reject``)
    :param seconds: the validator's time budget (its own default when not given)
    :returns: status ("accepted" or "rejected"), reasons, and entity counts (accepted only)
    """
    reasons: list[dict[str, str]] = []
    if forced_reject:
        reasons.append(
            _reason("R7SIM-REJECT", "", "rejected by the r7sim setting 'reject' (a simulated archive rejection)")
        )
    try:
        from decommission.validate.validator import Limits, validate_package

        limits = Limits.from_env()
        report = validate_package(tar_path, limits if seconds is None else dataclasses.replace(limits, seconds=seconds))
    except Exception as exc:  # the archive reports its failure instead of crashing
        log.exception("validation of %s raised", tar_path.name)
        reasons.append(_reason("R7SIM-INGEST", "", f"the package could not be validated: {_describe(exc)}"))
        return "rejected", reasons, {}
    if not report.ok:
        problems = list(report.problems)
        reasons.extend(_reason(p.requirement, p.path, p.message) for p in problems[:_MAX_REASONS])
        if len(problems) > _MAX_REASONS:
            reasons.append(_reason("R7SIM-INGEST", "", f"{len(problems) - _MAX_REASONS} more problems omitted"))
        if not problems:
            reasons.append(_reason("R7SIM-INGEST", "", "the validator reported the package invalid"))
    if reasons:
        return "rejected", reasons, {}
    try:
        counts = _count_records(tar_path)
    except Exception as exc:
        log.exception("counting the records of %s raised", tar_path.name)
        return "rejected", [_reason("R7SIM-COUNT", "", f"the records could not be counted: {_describe(exc)}")], {}
    return "accepted", [], counts


def _count_records(tar_path: Path) -> dict[str, int]:
    from decommission.package.records import count_entities

    totals: dict[str, int] = {}
    with tarfile.open(tar_path, "r:") as tar, tempfile.TemporaryDirectory(prefix="r7sim-count-") as scratch:
        for _key, member in record_members(tar):
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            record_path = Path(scratch) / "record.xml"
            with record_path.open("wb") as out:
                while chunk := extracted.read(_CHUNK):
                    out.write(chunk)
            for entity, n in count_entities(record_path).items():
                totals[entity] = totals.get(entity, 0) + int(n)
    return dict(sorted(totals.items()))


def _reason(requirement: Any, path: Any, message: Any) -> dict[str, str]:
    return {"requirement": str(requirement), "path": str(path or ""), "message": str(message)}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
