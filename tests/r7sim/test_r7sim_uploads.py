"""r7sim's upload sessions without a server: commit per chunk, recovery at startup, checks at completion."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from r7sim.store import Store, StoreError
from r7sim.uploads import Uploads

DATA = bytes(range(256)) * 64  # 16 KiB


async def _body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def append(uploads: Uploads, offset: int, data: bytes, length: int | None = None) -> dict:
    return asyncio.run(uploads.append("p-1", offset, len(data) if length is None else length, _body(data)))


@pytest.fixture
def uploads(tmp_path: Path) -> Uploads:
    store = Store(tmp_path)
    store.open_delivery("d-1", "LA-1", "VAS", "NEW")
    opened = Uploads(store)
    opened.open("p-1", "d-1", hashlib.sha256(DATA).hexdigest(), len(DATA))
    return opened


class TestUploads:
    def test_chunks_commit_in_order_and_complete_into_the_holdings(self, uploads):
        assert append(uploads, 0, DATA[:10_000])["offset"] == 10_000
        assert append(uploads, 10_000, DATA[10_000:])["offset"] == len(DATA)
        receipt, created = uploads.finish("p-1")
        assert created and '"sha256_match":true' in receipt
        assert uploads.store.package_path("p-1").read_bytes() == DATA
        assert uploads.status("p-1")["state"] == "complete" and uploads.session("p-1") is None

    def test_wrong_offset_is_refused_with_the_committed_one(self, uploads):
        append(uploads, 0, DATA[:4096])
        with pytest.raises(StoreError, match="committed up to byte 4096, not 0") as caught:
            append(uploads, 0, DATA[:4096])
        assert (caught.value.status, caught.value.code, caught.value.extra) == (
            409,
            "offset_mismatch",
            {"offset": 4096},
        )

    def test_a_cut_chunk_is_discarded(self, uploads):
        append(uploads, 0, DATA[:4096])
        with pytest.raises(StoreError, match="received 100 of 4096 bytes"):
            append(uploads, 4096, DATA[4096:4196], length=4096)
        assert uploads.path("p-1").stat().st_size == 4096 and uploads.status("p-1")["offset"] == 4096

    def test_restart_cuts_an_unfinished_chunk_and_keeps_the_session(self, uploads):
        append(uploads, 0, DATA[:4096])
        with uploads.path("p-1").open("ab") as out:  # a chunk the server died in the middle of
            out.write(b"junk" * 100)
        uploads.close()
        again = Uploads(uploads.store)
        assert again.path("p-1").stat().st_size == 4096
        assert again.status("p-1")["offset"] == 4096

    def test_reopening_with_the_same_bytes_resumes_and_with_other_bytes_restarts(self, uploads):
        append(uploads, 0, DATA[:4096])
        same, created = uploads.open("p-1", "d-1", hashlib.sha256(DATA).hexdigest(), len(DATA))
        assert (same["offset"], created) == (4096, False)
        other, created = uploads.open("p-1", "d-1", "0" * 64, len(DATA))
        assert (other["offset"], created) == (0, True)

    def test_bytes_that_do_not_match_are_refused_and_dropped(self, uploads):
        append(uploads, 0, DATA[:-1] + b"X")
        with pytest.raises(StoreError, match="nothing was kept") as caught:
            uploads.finish("p-1")
        assert caught.value.code == "sha256_mismatch"
        assert uploads.session("p-1") is None and not uploads.path("p-1").exists()
        assert uploads.store.package("p-1") is None

    def test_completion_before_the_last_byte_is_refused(self, uploads):
        append(uploads, 0, DATA[:4096])
        with pytest.raises(StoreError, match="4096 of 16384 bytes received"):
            uploads.finish("p-1")
