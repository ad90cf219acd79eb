"""A partition's mapped Parquet files, read in chunks of patients so memory stays flat.

Patients are numbered in natural ``patient_key`` order (all-digit keys numerically first).
Every other entity is read batch by batch; each row gets its patient's rank. A partition of
more than :data:`CHUNK_PATIENTS` patients is first spread into one Arrow IPC file per chunk
of patients (a bucket sort on disk, in ``scratch``), so that only one chunk's rows are ever in
memory. Inside a chunk the rows are ordered by patient, the entity's date (nulls last) and
the natural order of the record's own key, so the same input always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from decommission.errors import PackageError
from decommission.model import ENTITIES

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

#: patients whose rows are in memory at once
CHUNK_PATIENTS = 2000
_BATCH_ROWS = 16_384
#: the most bytes (uncompressed, on average) one read batch holds: attachments make rows large
_BATCH_BYTES = 4 * 2**20
RANK = "__rank"


def natural_sort_columns(keys: pa.Array) -> list[pa.Array]:
    """Sort columns giving ``records.natural_key`` order: all-digit keys by value first, then the rest."""
    digits = pc.match_substring_regex(keys, "^[0-9]+$")
    stripped = pc.utf8_ltrim(keys, characters="0")
    return [
        pc.invert(digits),
        pc.if_else(digits, pc.utf8_length(stripped), 0),
        pc.if_else(digits, stripped, ""),
        keys,
    ]


def natural_order(keys: pa.Array) -> pa.Array:
    """Indices that put ``keys`` in natural order."""
    columns = natural_sort_columns(keys)
    table = pa.table({f"k{i}": c for i, c in enumerate(columns)})
    return pc.sort_indices(table, sort_keys=[(f"k{i}", "ascending") for i in range(len(columns))])


def _conform(name: str, table: pa.Table | pa.RecordBatch) -> pa.Table:
    """The table with exactly the model's columns, in the model's order and types."""
    entity = ENTITIES[name]
    if sorted(table.schema.names) != sorted(entity.schema.names):
        raise PackageError(f"{name}: columns {table.schema.names} are not the model's {entity.schema.names}")
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    try:
        return table.select(entity.schema.names).cast(entity.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PackageError(f"{name}: column types do not match the model ({type(exc).__name__})") from None


@dataclass(frozen=True)
class Chunk:
    """Some consecutive patients and all their rows.

    :param first: the number (0-based) of the chunk's first patient in the partition
    :param patients: the patient rows, in natural key order
    :param tables: entity -> rows ordered by patient, date and key (with a ``__rank`` column)
    :param bounds: entity -> array of ``len(patients) + 1`` offsets: patient i has rows
        ``bounds[i]:bounds[i + 1]``
    """

    first: int
    patients: pa.Table
    tables: dict[str, pa.Table]
    bounds: dict[str, np.ndarray]

    def __len__(self) -> int:
        return self.patients.num_rows

    def counts(self, i: int) -> dict[str, int]:
        """Records per entity of the chunk's patient ``i`` (``patient`` is 1)."""
        out = {name: int(b[i + 1] - b[i]) for name, b in self.bounds.items()}
        return {"patient": 1, **out}


class PartitionReader:
    """Reads and checks a partition's mapped files; :meth:`chunks` yields it in chunks of patients.

    :param mapped: entity name -> Parquet file; a missing entity or file has no rows
    :param scratch: a folder for the chunk files of a large partition (created, left to the caller)
    :raises PackageError: unknown entity, wrong columns or types, rows without or with an unknown
        patient_key, a patient_key on two patient rows, or no patient at all
    """

    def __init__(self, mapped: Mapping[str, Path], scratch: Path, chunk_patients: int | None = None) -> None:
        unknown = sorted(set(mapped) - set(ENTITIES))
        if unknown:
            raise PackageError(f"mapped names unknown entities: {', '.join(unknown)}")
        self._chunk = chunk_patients or CHUNK_PATIENTS
        self._scratch = scratch
        patients = self._read_patients(mapped.get("patient"))
        self.patients = patients.take(natural_order(patients.column("patient_key")))
        self.keys = self.patients.column("patient_key").combine_chunks()
        self.n_chunks = -(-len(self) // self._chunk)
        self._memory: dict[str, list[pa.Table]] = {}
        self._files: dict[str, set[int]] = {}
        for name in ENTITIES:
            if name != "patient":
                self._spread(name, mapped.get(name))
        # give the allocator's freed pages back, so the chunks that follow start from a low mark
        pa.default_memory_pool().release_unused()

    def __len__(self) -> int:
        return self.patients.num_rows

    @staticmethod
    def _read_patients(path: Path | None) -> pa.Table:
        if path is None or not path.exists():
            raise PackageError("the partition holds no patients: nothing to package")
        table = _conform("patient", pq.read_table(path, use_threads=False))
        keys = table.column("patient_key")
        if keys.null_count:
            raise PackageError(f"patient: {keys.null_count} rows have no patient_key")
        if not table.num_rows:
            raise PackageError("the partition holds no patients: nothing to package")
        counts = pc.value_counts(keys)
        duplicates = pc.sum(pc.greater(counts.field("counts"), 1)).as_py() or 0
        if duplicates:
            raise PackageError(f"patient: {duplicates} patient_key values occur on more than one row")
        return table

    def _batches(self, name: str, path: Path | None) -> Iterator[pa.Table]:
        if path is None or not path.exists():
            return
        # read a page at a time, in this thread: whole column chunks and per-thread buffers would
        # make the peak depend on the file's row groups rather than on the batch
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        _conform(name, parquet.schema_arrow.empty_table())
        meta = parquet.metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        rows = max(1, min(_BATCH_ROWS, _BATCH_BYTES * max(1, meta.num_rows) // max(1, size)))
        for batch in parquet.iter_batches(batch_size=rows, use_threads=False):
            yield _conform(name, batch)

    def _spread(self, name: str, path: Path | None) -> None:
        """Rank every row by its patient and keep it in memory (one chunk) or in its chunk's file."""
        writers: dict[int, ipc.RecordBatchFileWriter] = {}
        orphans: set[str] = set()
        schema = ENTITIES[name].schema.append(pa.field(RANK, pa.int64()))
        try:
            for batch in self._batches(name, path):
                keys = batch.column("patient_key")
                if keys.null_count:
                    raise PackageError(f"{name}: {keys.null_count} rows have no patient_key")
                rank = pc.index_in(keys, value_set=self.keys)
                if rank.null_count:
                    orphans.update(pc.filter(keys, pc.is_null(rank)).unique().to_pylist())
                    continue
                batch = batch.append_column(RANK, pc.cast(rank, pa.int64()))
                if self.n_chunks <= 1:
                    self._memory.setdefault(name, []).append(batch)
                    continue
                chunk_of = pc.divide(batch.column(RANK), self._chunk).combine_chunks()
                order = pc.sort_indices(chunk_of)
                batch, chunk_of = batch.take(order), chunk_of.take(order).to_numpy()
                cuts = np.flatnonzero(np.diff(chunk_of)) + 1
                for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(chunk_of)], strict=True):
                    number = int(chunk_of[start])
                    if number not in writers:
                        target = self._scratch / name / f"{number:06d}.arrow"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        writers[number] = ipc.new_file(str(target), schema)
                    writers[number].write_table(batch.slice(start, end - start))
        finally:
            for writer in writers.values():
                writer.close()
        if orphans:
            raise PackageError(f"{name}: rows reference {len(orphans)} patient_key values absent from patient")
        self._files[name] = set(writers)

    def _chunk_table(self, name: str, number: int) -> pa.Table:
        schema = ENTITIES[name].schema.append(pa.field(RANK, pa.int64()))
        if self.n_chunks <= 1:
            parts = self._memory.get(name, [])
            return pa.concat_tables(parts) if parts else schema.empty_table()
        if number not in self._files.get(name, ()):
            return schema.empty_table()
        with ipc.open_file(str(self._scratch / name / f"{number:06d}.arrow")) as reader:
            return reader.read_all()

    def chunks(self) -> Iterator[Chunk]:
        """Yield the partition chunk by chunk, in patient order."""
        for number in range(self.n_chunks):
            first = number * self._chunk
            patients = self.patients.slice(first, self._chunk)
            tables, bounds = {}, {}
            for name, entity in ENTITIES.items():
                if name == "patient":
                    continue
                table = self._chunk_table(name, number)
                keys = [pc.subtract(table.column(RANK), first)]
                if entity.date_field:
                    keys.append(table.column(entity.date_field))
                keys += natural_sort_columns(table.column(entity.key))
                order_table = pa.table({f"k{i}": k for i, k in enumerate(keys)})
                order = pc.sort_indices(
                    order_table, sort_keys=[(f"k{i}", "ascending", "at_end") for i in range(len(keys))]
                )
                table = table.take(order).combine_chunks()
                ranks = pc.subtract(table.column(RANK), first).to_numpy()
                tables[name] = table
                bounds[name] = np.searchsorted(ranks, np.arange(len(patients) + 1), side="left")
            yield Chunk(first, patients, tables, bounds)
