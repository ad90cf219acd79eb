"""r7sim's drop-folder side: turn packages dropped into an inbox into receipt files in an outbox.

A stand-in for an archive that takes deliveries through an SFTP drop folder (R7 e-Arkiv may);
it is not R7. An SFTP server serves ``root``; this loop watches ``root/inbox`` on the local disk,
keeps what arrives in an r7sim store (the same holdings, validator and receipts as the HTTP
stand-in) and answers in ``root/outbox``. Layout: ``docs/archive-protocol.md`` section 7.

    python -m r7sim.dropfolder --root DIR --data-dir DIR [--reject PACKAGE_ID ...] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r7sim.ingest import ingest_held
from r7sim.page import BANNER
from r7sim.settings import Settings
from r7sim.store import RECORD_STATUSES, Store, StoreError, canonical_json, check_id, now_iso

log = logging.getLogger("r7sim.dropfolder")

_HASH_BLOCK = 1 << 20


class DropFolder:
    """One pass over the inbox at a time; every step can be repeated after a crash.

    :param root: the folder the SFTP server serves (``inbox/``, ``outbox/``, ``holdings/`` under it)
    :param store: r7sim holdings that keep what arrives
    :param settings: r7sim settings (``reject``, ``auto_approve_test`` apply)
    """

    def __init__(self, root: Path, store: Store, settings: Settings | None = None) -> None:
        self.root = Path(root)
        self.store = store
        self.settings = settings or Settings()
        self.inbox, self.outbox, self.holdings = (self.root / d for d in ("inbox", "outbox", "holdings"))
        for folder in (self.inbox, self.outbox, self.holdings):
            folder.mkdir(parents=True, exist_ok=True)

    def run_once(self) -> None:
        """Open dropped deliveries, receive dropped packages, ingest what is pending, publish deliveries."""
        touched: set[str] = set()
        for path in _visible(self.inbox, "*.delivery.json"):
            touched |= self._open_delivery(path)
        for path in _visible(self.inbox, "*.tar"):
            touched |= self._receive(path)
        for path in _visible(self.inbox, "*.anchor.json"):
            self._anchor(path)
        for path in _visible(self.inbox, "*.evidence"):
            self._evidence(path)
        for package_id in self.store.pending_packages():
            receipt = ingest_held(self.store, package_id, settings=self.settings)
            if receipt is not None:
                self._publish_delivery(receipt["delivery_id"])  # first: whoever sees the receipt sees it
                self._publish(f"{package_id}.ingest.json", self.store.ingest_receipt(package_id))
        for delivery_id in sorted(touched):
            self._publish_delivery(delivery_id)

    def _publish_delivery(self, delivery_id: str) -> None:
        self._publish(f"{delivery_id}.delivery.json", canonical_json(self.store.delivery(delivery_id)))

    def _open_delivery(self, path: Path) -> set[str]:
        request = json.loads(path.read_text(encoding="utf-8"))
        delivery_id = str(request.get("delivery_id", ""))
        try:
            check_id(delivery_id, "delivery_id")
            if request.get("record_status") not in RECORD_STATUSES:
                raise StoreError(400, "invalid_request", "record_status is not a SIP RECORDSTATUS")
            self.store.open_delivery(
                delivery_id, str(request["agreement_id"]), str(request["system_id"]), request["record_status"]
            )
        except (StoreError, KeyError) as exc:
            self._refuse(delivery_id or path.name, {**request}, exc)
            path.unlink()
            return set()
        log.info("delivery %s opened from the drop folder", delivery_id)
        self._publish_delivery(delivery_id)
        path.unlink()
        return set()

    def _anchor(self, path: Path) -> None:
        request = json.loads(path.read_text(encoding="utf-8"))
        try:
            self.store.add_anchor(
                str(request["system_id"]), int(request["seq"]), str(request["entry_hash"]), str(request.get("note", ""))
            )
        except (StoreError, KeyError, ValueError) as exc:
            log.warning("anchor %s refused: %s", path.name, exc)
        path.unlink()
        self._publish("anchors.json", canonical_json({"anchors": self.store.anchors()}))

    def _evidence(self, path: Path) -> None:
        manifest_path = path.with_name(path.name + ".json")
        if not manifest_path.exists():
            return  # the manifest comes last; without it the drop is not complete
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        system_id, _, name = path.name.removesuffix(".evidence").partition("--")
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = path.stat().st_size
        if digest != manifest.get("sha256"):
            log.warning("evidence %s does not hash to its declared SHA-256; not kept", path.name)
            path.unlink()
            manifest_path.unlink()
            return
        receipt, _ = self.store.add_evidence(system_id, name, path, digest, size)
        manifest_path.unlink()
        self._publish(f"{system_id}--{name}.evidence.json", canonical_json(receipt))

    def _receive(self, tar_path: Path) -> set[str]:
        package_id = tar_path.name.removesuffix(".tar")
        manifest_path = tar_path.with_name(tar_path.name + ".json")
        if not manifest_path.exists():
            return set()  # the manifest is written first; without it the drop is not ours to take yet
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        declared = str(manifest.get("sha256", "")).lower()
        delivery_id = str(manifest.get("delivery_id", ""))
        try:
            check_id(package_id, "package_id")
            size, actual = _hash(tar_path)
            if actual != declared:
                raise StoreError(
                    422, "sha256_mismatch", f"the dropped file hashes to {actual}, not the declared {declared}"
                )
            if not self.store.delivery_exists(delivery_id):
                raise StoreError(404, "delivery_not_found", f"no delivery {delivery_id}; drop its description first")
            held = self.store.package(package_id)
            if held is not None:
                self.store.check_same(held, delivery_id, declared)
                tar_path.unlink()
                receipt = held["transport_receipt"]
            else:
                receipt, _created = self.store.add_package(package_id, delivery_id, size, declared, tar_path)
                log.info("package %s arrived in the drop folder (%d bytes)", package_id, size)
        except StoreError as exc:
            self._refuse(package_id, {"sha256": declared, "delivery_id": delivery_id}, exc)
            tar_path.unlink(missing_ok=True)
            manifest_path.unlink(missing_ok=True)
            return set()
        held_copy = self.holdings / f"{package_id}.tar"
        if not held_copy.exists():
            os.link(self.store.package_path(package_id), held_copy)
        self._publish_delivery(delivery_id)
        self._publish(f"{package_id}.transport.json", receipt)
        manifest_path.unlink(missing_ok=True)
        return set()

    def _refuse(self, name: str, fields: dict[str, Any], exc: Exception) -> None:
        code = exc.code if isinstance(exc, StoreError) else "invalid_request"
        message = exc.message if isinstance(exc, StoreError) else f"missing field {exc}"
        log.warning("refused %s from the drop folder: %s", name, message)
        document = {**fields, "id": name, "error": code, "message": message, "refused_at": now_iso()}
        self._publish(f"{name}.refused.json", canonical_json(document))

    def _publish(self, name: str, text: str) -> None:
        """Write an outbox file under a hidden temporary name, then rename it into place."""
        temp = self.outbox / f".{name}.part"
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, self.outbox / name)


def _visible(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith(".") and p.is_file())


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as data:
        while block := data.read(_HASH_BLOCK):
            size += len(block)
            digest.update(block)
    return size, digest.hexdigest()


def serve(folder: DropFolder, interval: float, stop: threading.Event) -> None:
    """Run passes every ``interval`` seconds until ``stop`` is set; a failed pass is logged and retried."""
    while not stop.is_set():
        try:
            folder.run_once()
        except Exception:
            log.exception("a pass over the drop folder failed; trying again")
        stop.wait(interval)


def main(argv: Sequence[str] | None = None) -> None:
    """Watch a drop folder until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m r7sim.dropfolder", description=BANNER + " (drop folder)")
    parser.add_argument("--root", type=Path, required=True, help="the folder the SFTP server serves")
    parser.add_argument("--data-dir", type=Path, required=True, help="r7sim holdings; kept across restarts")
    parser.add_argument("--reject", action="extend", nargs="+", default=[], metavar="PACKAGE_ID")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between passes (default 0.5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.warning("%s: drop folder %s. Nothing dropped here reaches R7 e-Arkiv.", BANNER, args.root)
    store = Store(args.data_dir)
    stop = threading.Event()
    try:
        serve(DropFolder(args.root, store, Settings(reject=frozenset(args.reject))), args.interval, stop)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


if __name__ == "__main__":
    main()
