"""The staging area between stages: Parquet files under an ``ObjectStoragePath`` base.

A stage writes a partition's files into a fresh folder and swaps it into place, so a
rerun replaces the partition's staging whole and a reader never sees half of it. On local
disk the swap is a rename; object storage has no folders to rename, so there each attempt
writes a folder of its own inside the partition's slot and then puts one small object,
``CURRENT``, naming it: readers follow that name (:func:`stage_dir`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from airflow.sdk import ObjectStoragePath

from decommission import settings
from decommission.files import exclusive

CURRENT = "CURRENT"


def stage_slot(system_id: str, milestone: str, stage: str, partition_id: str) -> ObjectStoragePath:
    """Where one stage's staging of one partition goes (what :func:`replacing` writes)."""
    return ObjectStoragePath(settings.staging_url()) / system_id / milestone / stage / partition_id


def stage_dir(system_id: str, milestone: str, stage: str, partition_id: str) -> ObjectStoragePath:
    """The folder holding one stage's complete staging of one partition (what readers read)."""
    return current(stage_slot(system_id, milestone, stage, partition_id))


def current(slot: ObjectStoragePath) -> ObjectStoragePath:
    """The complete folder of a slot: the slot itself on local disk, the attempt ``CURRENT`` names elsewhere."""
    if _local_path(slot) is not None:
        return slot
    pointer = slot / CURRENT
    return slot / pointer.read_text().strip() if pointer.exists() else slot


@contextlib.contextmanager
def replacing(final: ObjectStoragePath) -> Iterator[ObjectStoragePath]:
    """Yield a temporary sibling folder; on success it replaces ``final``, on error it is removed.

    A process killed mid-write (no ``except`` runs) leaves its temporary folder behind; the
    next attempt at the same partition removes such leftovers first, so one partition
    never has two stagings. A reader sees the old complete folder or the new one.
    """
    local = _local_path(final)
    if local is None:
        with _replacing_in_store(final) as tmp:
            yield tmp
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    # on local disk one attempt at a time (others wait): removing leftovers cannot hit a live attempt
    with exclusive(Path(local)):
        _remove_leftovers(final)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
        except BaseException:
            tmp.rmdir(recursive=True)
            raise
        if final.exists():
            old = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.old"
            final.rename(old)
            tmp.rename(final)
            old.rmdir(recursive=True)
        else:
            tmp.rename(final)


@contextlib.contextmanager
def _replacing_in_store(slot: ObjectStoragePath) -> Iterator[ObjectStoragePath]:
    """Object storage: a folder per attempt, then ``CURRENT`` put naming it (one object: all or nothing).

    Airflow runs one attempt of a task instance at a time, so what another attempt left in the
    slot (a worker killed mid-write) is removed first; the previous complete folder goes once
    ``CURRENT`` names the new one.
    """
    pointer = slot / CURRENT
    previous = pointer.read_text().strip() if pointer.exists() else None
    if slot.exists():
        for item in slot.iterdir():
            if item.name in (CURRENT, previous):
                continue
            if item.is_dir():
                item.rmdir(recursive=True)
            else:
                item.unlink()
    attempt = uuid.uuid4().hex
    tmp = slot / attempt
    try:
        yield tmp
    except BaseException:
        if tmp.exists():
            tmp.rmdir(recursive=True)
        raise
    pointer.write_text(attempt)
    if previous and (slot / previous).exists():
        (slot / previous).rmdir(recursive=True)


def _remove_leftovers(final: ObjectStoragePath) -> None:
    prefix = f".{final.name}."
    for item in final.parent.iterdir():
        if item.name.startswith(prefix) and item.name.endswith((".tmp", ".old")):
            item.rmdir(recursive=True)


def open_output(path: ObjectStoragePath | Path) -> BinaryIO:
    """A new staged file, open for writing. On local disk Arrow's own file: the Parquet writer's
    many small writes then stay in C++ (through a Python file object they cost a quarter of an
    extract or map task); the object store's file object elsewhere."""
    local = _local_path(path)
    return pa.OSFile(local, "wb") if local is not None else path.open("wb")


def open_input(path: ObjectStoragePath | Path) -> BinaryIO:
    """A staged file, open for reading (Arrow's own file on local disk, as :func:`open_output`)."""
    local = _local_path(path)
    return pa.OSFile(local, "rb") if local is not None else path.open("rb")


def _local_path(path: ObjectStoragePath | Path) -> str | None:
    """The path on the local file system, or None for an object store."""
    if isinstance(path, Path):
        return str(path)
    return path.path if path.protocol in ("file", "local", "") else None


def read_table(path: ObjectStoragePath | Path) -> pa.Table:
    """A staged Parquet file as an Arrow table (what the mapping works on)."""
    with open_input(path) as fh:
        return pq.read_table(fh)


def read_row_groups(path: ObjectStoragePath | Path) -> Iterator[pa.Table]:
    """A staged Parquet file one row group at a time, so a reader's memory does not grow with the file."""
    with open_input(path) as fh:
        parquet = pq.ParquetFile(fh)
        for i in range(parquet.num_row_groups):
            yield parquet.read_row_group(i)
        if parquet.num_row_groups == 0:
            yield parquet.schema_arrow.empty_table()


def read_frame(path: ObjectStoragePath) -> pd.DataFrame:
    return read_table(path).to_pandas(types_mapper=None)


@contextlib.contextmanager
def local_dir(path: ObjectStoragePath) -> Iterator[Path]:
    """The folder as a local path: itself on file://, else a temporary download."""
    local = _local_path(path)
    if local is not None:
        yield Path(local)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for item in path.iterdir():
            with item.open("rb") as src, open(Path(tmp) / item.name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        yield Path(tmp)
