"""The SFTP drop-folder transport: packages written into the archive's inbox, receipts read from its outbox.

Layout under the connection's ``root`` (``docs/archive-protocol.md`` section 7)::

    inbox/<delivery_id>.delivery.json   we open a delivery
    inbox/<package_id>.tar.json         we declare a package (delivery, SHA-256, size) ...
    inbox/<package_id>.tar              ... then drop it (written as .<name>.part, then renamed)
    outbox/<delivery_id>.delivery.json  the archive: the delivery, its holdings and approval
    outbox/<package_id>.transport.json  the archive: transport receipt (arrived, checksum matches)
    outbox/<package_id>.ingest.json     the archive: ingest receipt (accepted, or rejected with reasons)
    outbox/<id>.refused.json            the archive: a drop it refused, with the reason
    holdings/<package_id>.tar           the archive: held packages, read-only, for read-back

The connection is an Airflow SFTP connection read by the provider's :class:`SFTPHook`
(host, port, login, password or key, ``host_key``); extras of ours: ``root`` (default ``/``),
``receipt_timeout`` (seconds to wait for the archive to answer a drop, default 300),
``poll_interval`` (seconds, default 1) and ``chunk_size`` (bytes per write, default 1 MiB).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import tenacity

from decommission.deliver.archive_connection import ArchiveResponseError
from decommission.deliver.transport import check_transport_receipt
from decommission.errors import ArchiveError, ArchiveRefusal

T = TypeVar("T")

RECORD_MEMBER = "representations/rep1/data/{patient}/record.xml"
DEFAULT_RETRY_ARGS: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(6),
    "wait": tenacity.wait_exponential(multiplier=1, min=1, max=30),
}


def is_transient(exc: BaseException) -> bool:
    """Whether an SFTP failure may pass on a new connection: a broken or refused connection."""
    import paramiko

    return isinstance(exc, OSError | EOFError | paramiko.SSHException) and not isinstance(exc, FileNotFoundError)


class SftpDropFolder:
    """Deliver packages to an archive through an SFTP drop folder (an :class:`ArchiveTransport`).

    Every method is safe to repeat: a package whose transport receipt is in the outbox is not
    sent again, a half-written ``.part`` file is continued from its size, and the archive only
    picks up a tar under its final name, which appears by an atomic rename.

    :param conn_id: the SFTP connection of the archive's drop folder
    :param retry_args: tenacity.Retrying keyword arguments over :data:`DEFAULT_RETRY_ARGS`
    """

    def __init__(self, conn_id: str = "r7_archive", *, retry_args: dict[str, Any] | None = None) -> None:
        self.conn_id = conn_id
        self.retry_args: dict[str, Any] = {
            **DEFAULT_RETRY_ARGS,
            "retry": tenacity.retry_if_exception(is_transient),
            "before_sleep": self._reconnect,
            "reraise": True,
            **(retry_args or {}),
        }
        self._hook: Any = None
        self._options: dict[str, Any] | None = None

    # connection ---------------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The provider's SFTP hook (made on first use: it reads the connection)."""
        if self._hook is None:
            from airflow.providers.sftp.hooks.sftp import SFTPHook

            self._hook = SFTPHook(ssh_conn_id=self.conn_id, use_managed_conn=False)
        return self._hook

    @property
    def options(self) -> dict[str, Any]:
        """Our extras of the connection: root, receipt_timeout, poll_interval, chunk_size."""
        if self._options is None:
            from airflow.sdk import BaseHook

            extra = BaseHook.get_connection(self.conn_id).extra_dejson
            self._options = {
                "root": str(extra.get("root", "/")),
                "receipt_timeout": float(extra.get("receipt_timeout", 300)),
                "poll_interval": float(extra.get("poll_interval", 1)),
                "chunk_size": int(extra.get("chunk_size", 1 << 20)),
            }
        return self._options

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.options["root"], *parts)

    def _reconnect(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.hook.log.warning("SFTP drop folder failed (attempt %d: %r); reconnecting", retry_state.attempt_number, exc)
        try:
            self.hook.close_conn()
        except Exception:  # the connection is broken already
            self.hook.conn = None

    def _call(self, what: str, attempt: Callable[[], T]) -> T:
        try:
            return tenacity.Retrying(**self.retry_args)(attempt)
        except (OSError, EOFError) as exc:
            raise ArchiveError(f"{what}: the drop folder could not be reached: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            import paramiko

            if isinstance(exc, paramiko.SSHException):
                raise ArchiveError(f"{what}: SFTP failed: {type(exc).__name__}: {exc}") from exc
            raise

    def _read_json(self, *parts: str) -> dict | None:
        try:
            with self.hook.get_conn().open(self._path(*parts), "rb") as remote:
                return json.loads(remote.read())
        except FileNotFoundError:
            return None

    def _write_json(self, document: dict, *parts: str) -> None:
        """Write a small JSON file under a temporary name, then rename it into place."""
        sftp = self.hook.get_conn()
        final = self._path(*parts)
        temp = posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.part")
        with sftp.open(temp, "wb") as remote:
            remote.write(json.dumps(document, sort_keys=True).encode())
        sftp.posix_rename(temp, final)

    def _wait_for(self, what: str, found: Callable[[], T | None]) -> T:
        """Poll the outbox until ``found`` returns something, or the receipt timeout passes."""
        deadline = time.monotonic() + self.options["receipt_timeout"]
        while True:
            result = self._call(what, found)
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise ArchiveError(f"{what}: no answer in the outbox after {self.options['receipt_timeout']} s")
            time.sleep(self.options["poll_interval"])

    # deliveries ---------------------------------------------------------------------------------

    def open_delivery(self, delivery_id: str, agreement_id: str, system_id: str, record_status: str) -> dict:
        """Open a delivery by dropping its description; return the archive's delivery document."""
        wanted = {"agreement_id": agreement_id, "system_id": system_id, "record_status": record_status}

        def answered() -> dict | None:
            refused = self._read_json("outbox", f"{delivery_id}.refused.json")
            if refused and {k: refused.get(k) for k in wanted} == wanted:
                raise ArchiveResponseError(
                    f"open delivery {delivery_id}: refused: {refused.get('message')}",
                    status_code=409,
                    code=str(refused.get("error", "")),
                )
            document = self._read_json("outbox", f"{delivery_id}.delivery.json")
            if document is None:
                return None
            differing = sorted(k for k, v in wanted.items() if document.get(k) != v)
            if differing:
                raise ArchiveResponseError(
                    f"delivery {delivery_id} is already open with a different {', '.join(differing)}",
                    status_code=409,
                    code="delivery_conflict",
                )
            return document

        document = self._call(f"open delivery {delivery_id}", answered)
        if document is not None:
            return document
        self._call(
            f"open delivery {delivery_id}",
            lambda: self._write_json({"delivery_id": delivery_id, **wanted}, "inbox", f"{delivery_id}.delivery.json"),
        )
        return self._wait_for(f"open delivery {delivery_id}", answered)

    def anchor(self, system_id: str, seq: int, entry_hash: str, note: str = "") -> dict:
        """Drop the ledger's head as ``<system>-<seq>.anchor.json``; return it once the outbox lists it."""
        body = {"system_id": system_id, "seq": seq, "entry_hash": entry_hash, "note": note}

        def listed() -> dict | None:
            for held in self.anchors(system_id):
                if held.get("seq") == seq:
                    if held.get("entry_hash") != entry_hash:
                        raise ArchiveResponseError(
                            f"ledger entry {seq} of system {system_id} is anchored with another hash",
                            status_code=409,
                            code="anchor_conflict",
                        )
                    return held
            return None

        held = listed()
        if held is not None:
            return held
        self._call(
            f"anchor the ledger of {system_id}",
            lambda: self._write_json(body, "inbox", f"{system_id}-{seq}.anchor.json"),
        )
        return self._wait_for(f"anchor the ledger of {system_id} at entry {seq}", listed)

    def anchors(self, system_id: str | None = None) -> list[dict]:
        """Every ledger anchor the archive lists in ``outbox/anchors.json`` (of one system)."""
        listing = self._call("read the ledger anchors", lambda: self._read_json("outbox", "anchors.json")) or {}
        held = listing.get("anchors", [])
        return [a for a in held if system_id is None or a.get("system_id") == system_id]

    def submit_evidence(self, system_id: str, path: Path, sha256: str) -> dict:
        """Drop an evidence pack as ``<system>--<name>`` with its manifest; return the receipt from the outbox."""
        size = path.stat().st_size
        drop = f"{system_id}--{path.name}"

        def answered() -> dict | None:
            receipt = self._read_json("outbox", f"{drop}.evidence.json")
            if receipt is not None and (receipt.get("sha256"), receipt.get("size")) != (sha256, size):
                raise ArchiveResponseError(
                    f"the archive's receipt of the evidence pack {path.name} does not confirm its SHA-256 and size",
                    status_code=409,
                    code="evidence_conflict",
                )
            return receipt

        if answered() is None:
            self._call(f"drop the evidence pack {path.name}", lambda: self._drop_evidence(drop, path, sha256, size))
        return self._wait_for(f"hand the archive the evidence pack {path.name}", answered)

    def _drop_evidence(self, drop: str, path: Path, sha256: str, size: int) -> None:
        sftp = self.hook.get_conn()
        final = self._path("inbox", f"{drop}.evidence")
        part = self._path("inbox", f".{drop}.part")
        sftp.put(str(path), part)
        sftp.posix_rename(part, final)
        self._write_json({"sha256": sha256, "size": size}, "inbox", f"{drop}.evidence.json")

    def delivery(self, delivery_id: str) -> dict:
        """Return the archive's delivery document from the outbox."""
        document = self._call(
            f"read delivery {delivery_id}", lambda: self._read_json("outbox", f"{delivery_id}.delivery.json")
        )
        if document is None:
            raise ArchiveResponseError(
                f"no delivery {delivery_id} in the outbox", status_code=404, code="delivery_not_found"
            )
        return document

    def approve_delivery(self, delivery_id: str, approved_by: str, comment: str) -> dict:
        """The drop folder has no approval request: the archive writes its approval itself."""
        raise ArchiveRefusal(
            f"approve delivery {delivery_id}: an SFTP drop folder takes no approvals; the archive records "
            f"its approval in outbox/{delivery_id}.delivery.json"
        )

    # packages -----------------------------------------------------------------------------------

    def submit_package(self, package_id: str, container: Path, sha256: str, delivery_id: str) -> dict:
        """Drop a package's tar into the inbox (resuming a half-written one) and wait for the transport receipt.

        :returns: the transport receipt, plus ``duplicate``: True when the archive held it already
        :raises ArchiveRefusal: the id is held with another SHA-256, or the archive refused the drop
        """
        container = Path(container) if isinstance(container, str) else container  # or an ObjectStoragePath
        size = container.stat().st_size
        sha256 = sha256.lower()
        what = f"submit package {package_id}"
        held = self._call(what, lambda: self._receipt(package_id, sha256, delivery_id))
        if held is not None:
            self.hook.log.info("package %s was already in the archive; kept its original receipt", package_id)
            return {**held, "duplicate": True}
        manifest = {"package_id": package_id, "delivery_id": delivery_id, "sha256": sha256, "size": size}
        self._call(what, lambda: self._write_json(manifest, "inbox", f"{package_id}.tar.json"))
        self._call(what, lambda: self._drop(package_id, container, size, sha256))
        receipt = self._wait_for(what, lambda: self._receipt(package_id, sha256, delivery_id))
        check_transport_receipt(receipt, package_id, size, sha256)
        return {**receipt, "duplicate": False}

    def _receipt(self, package_id: str, sha256: str, delivery_id: str) -> dict | None:
        """Return the transport receipt of these bytes, raise if the archive refused them, else None."""
        receipt = self._read_json("outbox", f"{package_id}.transport.json")
        if receipt is not None:
            if receipt.get("sha256") != sha256 or receipt.get("delivery_id") != delivery_id:
                raise ArchiveRefusal(
                    f"package {package_id} already exists in the archive with a different checksum or delivery "
                    f"(sent SHA-256 {sha256} in delivery {delivery_id}): a changed package needs a new package id"
                )
            return receipt
        refused = self._read_json("outbox", f"{package_id}.refused.json")
        if refused is not None and refused.get("sha256") == sha256:
            raise ArchiveRefusal(f"the archive refused package {package_id}: {refused.get('message')}")
        return None

    def _drop(self, package_id: str, container: Path, size: int, sha256: str) -> None:
        """Write the tar as a ``.part`` file from where an earlier attempt stopped, then rename it."""
        sftp = self.hook.get_conn()
        final = self._path("inbox", f"{package_id}.tar")
        part = self._path("inbox", f".{package_id}.{sha256[:16]}.part")
        try:
            sftp.stat(final)
            return  # dropped already, waiting for the archive to pick it up
        except FileNotFoundError:
            pass
        try:
            offset = sftp.stat(part).st_size or 0
        except FileNotFoundError:
            offset = 0
        if offset > size:
            sftp.remove(part)
            offset = 0
        if offset:
            self.hook.log.info("resuming the drop of package %s at byte %d of %d", package_id, offset, size)
        with container.open("rb") as local, sftp.open(part, "r+b" if offset else "wb") as remote:
            remote.set_pipelined(True)
            local.seek(offset)
            remote.seek(offset)
            while block := local.read(self.options["chunk_size"]):
                remote.write(block)
        sftp.posix_rename(part, final)

    def ingest_receipt(self, package_id: str) -> dict:
        """Return the ingest receipt from the outbox; "pending" while only the transport receipt is there."""

        def read() -> dict:
            receipt = self._read_json("outbox", f"{package_id}.ingest.json")
            if receipt is not None:
                return receipt
            transport = self._read_json("outbox", f"{package_id}.transport.json")
            if transport is None:
                raise ArchiveResponseError(f"no package {package_id}", status_code=404, code="package_not_found")
            return pending_receipt(transport)

        return self._call(f"read the ingest receipt of {package_id}", read)

    def download_package(self, package_id: str, dest: Path) -> Path:
        """Read a held package back from ``holdings/``, hashing it, into a new file."""
        dest = Path(dest)
        target = dest / f"{package_id}.tar" if dest.is_dir() else dest
        if target.exists():
            raise FileExistsError(f"refusing to overwrite {target}")
        expected = self.ingest_receipt(package_id)["sha256"]

        def fetch() -> Path:
            digest = hashlib.sha256()
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
                staged = Path(out.name)
                try:
                    with self.hook.get_conn().open(self._path("holdings", f"{package_id}.tar"), "rb") as remote:
                        remote.prefetch()
                        while block := remote.read(1 << 20):
                            digest.update(block)
                            out.write(block)
                except BaseException:
                    staged.unlink(missing_ok=True)
                    raise
            if digest.hexdigest() != expected:
                staged.unlink(missing_ok=True)
                raise ArchiveError(f"package {package_id} read back hashes to {digest.hexdigest()}, not {expected}")
            staged.rename(target)
            return target

        return self._call(f"read back package {package_id}", fetch)

    def read_record(self, package_id: str, patient_key: str) -> bytes:
        """Return one patient's ``record.xml`` from a held package, reading only the tar headers on the way."""

        def read() -> bytes:
            with self.hook.get_conn().open(self._path("holdings", f"{package_id}.tar"), "rb") as remote:
                with tarfile.open(fileobj=remote, mode="r:") as tar:
                    for member in tar:
                        if member.isfile() and member.name.endswith("/" + RECORD_MEMBER.format(patient=patient_key)):
                            extracted = tar.extractfile(member)
                            if extracted is not None:
                                return extracted.read()
            raise ArchiveResponseError(
                f"package {package_id} holds no record for that patient key", status_code=404, code="record_not_found"
            )

        return self._call(f"read a record of package {package_id}", read)

    def test_connection(self) -> tuple[bool, str]:
        """Check that the inbox and outbox can be listed."""
        try:
            for folder in ("inbox", "outbox"):
                self._call("test the drop folder", lambda f=folder: self.hook.get_conn().listdir(self._path(f)))
        except (ArchiveError, FileNotFoundError) as exc:
            return False, str(exc)
        return True, f"drop folder {self.options['root']} is reachable"


def pending_receipt(transport: dict) -> dict:
    """Return the "pending" ingest receipt of a package that arrived but is not ingested yet."""
    return {
        "receipt_type": "ingest",
        "package_id": transport["package_id"],
        "delivery_id": transport["delivery_id"],
        "sha256": transport["sha256"],
        "status": "pending",
        "reasons": [],
        "archive_id": None,
        "counts": {},
        "ingested_at": None,
        "archive": transport.get("archive", ""),
    }
