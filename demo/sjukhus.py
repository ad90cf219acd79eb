"""The hospital-shaped demo system ``sjukhus``: two schemas, 21 tables, with known dirt.

Shaped like a hospital database imported into the region years ago: the patient administration
in schema ``adt`` (English names, as the supplier's system had them: patients with date and cause
of death, encounters, transfers between units, the access log, units, staff, admission types) and
the clinical part in schema ``klinik`` (Swedish names: diagnoses in ICD-10-SE and, before 1997,
ICD-9-CM with V and E codes, in one table with a code-system column and a composite key;
procedures in KVÅ and ICD-9-CM volume 3; specimens and lab results under the laboratory's own
five-digit item ids with a dictionary table and reference ranges; vital signs; medication orders
and administrations; orders, referrals and notes). Codes are ``char(n)``, stored with their
padding. Times are Europe/Stockholm wall-clock times; many fall on the days the clocks change,
never in the missing or repeated hour except the rows planted there.

On SQLite the two schemas are two files: ``<target>`` holds ``adt`` and :func:`klinik_path` the
other, which the source connection attaches (``extra.attach``). On PostgreSQL they are two
schemas (``adt`` and ``klinik`` unless named otherwise).

Everything follows from ``random.Random(seed)``; a plan pass fixes identities, row counts and the
exact rows that get dirt, then rows are written in batches. Each dirty row carries one kind of
dirt, only in patients with a valid identifier. The dirt report has the same shape as the other
systems' (:func:`demo.generate.build`).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from decommission.mapping.identity import IdType, classify
from decommission.model import Reason
from demo.generate import DIRT_SUFFIX, _Sink, _write_json
from demo.sjukhus_plan import BAD_CHECKSUM, BAD_FORMAT, BAD_STHLM, PATIENT_REASON, PNR, RESERV, SAMORD, Plan, make_plan
from demo.sjukhus_rows import emit_orphan, emit_patient, emit_reference_rows
from demo.sjukhus_schema import ADT, ALL_TABLES, KLINIK, SCHEMA_OF, TABLES, klinik_path
from demo.sjukhus_values import Gen
from demo.writers import PostgresWriter, SqliteWriter, Writer

__all__ = ["ADT", "KLINIK", "SYSTEM", "build", "klinik_path"]

SYSTEM = "sjukhus"

_DIRT_KEYS = (
    ("orphan_rows", Reason.ORPHAN),
    ("encoding_damage", Reason.ENCODING_SUSPECT),
    ("xml_illegal_chars", Reason.XML_ILLEGAL_CHAR),
    ("sentinel_dates", Reason.SENTINEL_DATE),
    ("soft_deleted", Reason.SOFT_DELETED),
    ("invalid_codes", Reason.CODE_INVALID),
    ("local_time_adjusted", Reason.LOCAL_TIME_ADJUSTED),
)


class _Routed(Writer):
    """One writer per schema: each table's rows go to its schema's."""

    def __init__(self, writers: dict[str, Writer]) -> None:
        self.writers = writers

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.writers[SCHEMA_OF[table]].write(table, rows)

    def finish(self) -> None:
        for w in self.writers.values():
            w.finish()

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()


def build(target: str, url: str | None, *, seed: int, patients: int, schemas: tuple[str, str] | None = None) -> dict:
    """Build the hospital system; return its dirt report (the shape of :func:`demo.generate.build`'s).

    :param target: the SQLite file of ``adt`` (``klinik`` goes to :func:`klinik_path`), or the URL
    :param url: a ``postgresql://`` URL (then ``target`` is not a file)
    :param schemas: PostgreSQL schema names of ``adt`` and ``klinik`` (default: those names)
    """
    names = dict(zip((ADT, KLINIK), schemas or (ADT, KLINIK), strict=True))
    writers: dict[str, Writer] = {}
    try:
        for schema, tables in TABLES.items():
            if url is not None:
                writers[schema] = PostgresWriter(url, names[schema], tables)
            else:
                path = Path(target) if schema == ADT else klinik_path(target)
                writers[schema] = SqliteWriter(path, tables)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    writer = _Routed(writers)
    master = random.Random(seed)
    plan_rnd, row_rnd = (random.Random(master.getrandbits(64)) for _ in range(2))
    try:
        plan = make_plan(plan_rnd, patients)
        sink = _Sink(writer, ALL_TABLES)
        g = Gen(plan, sink, row_rnd)
        emit_reference_rows(g)
        for index, (kind, shape) in enumerate(zip(plan.kinds, plan.shapes, strict=True)):
            emit_patient(g, index, kind, shape)
            for table in plan.orphans.get(index, ()):
                emit_orphan(g, table)
        sink.flush()
        _check_identities(g)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    report = _report(seed, patients, plan, sink, g, names)
    if url is None:
        _write_json(Path(str(target) + DIRT_SUFFIX), report)
    return report


def _check_identities(g: Gen) -> None:
    """The identity classifier must agree with what was generated (type, reason and scheme)."""
    found = classify(pd.Series(g.identifiers, dtype=object))
    rows = zip(found["id_type"].tolist(), found["reason"].tolist(), found["scheme"].tolist(), strict=True)
    for kind, (id_type, reason, scheme) in zip(g.plan.kinds, rows, strict=True):
        if kind in PATIENT_REASON:
            ok = id_type == IdType.INVALID.value and reason == PATIENT_REASON[kind]
            ok = ok and (kind != BAD_STHLM or scheme == "reservnummer_stockholm")
        elif kind in RESERV:
            ok = id_type == IdType.RESERVNUMMER.value and scheme == kind
        else:
            ok = id_type == kind and reason is None
        if not ok:
            raise RuntimeError("generated identifiers disagree with decommission.mapping.identity.classify")


def _report(seed: int, patients: int, plan: Plan, sink: _Sink, g: Gen, names: dict[str, str]) -> dict:
    kinds = Counter(plan.kinds)
    total: Counter[str] = Counter()
    for counter in sink.reasons.values():
        total.update(counter)
    return {
        "system": SYSTEM,
        "seed": seed,
        "patients": patients,
        "schemas": {names[schema]: [t.name for t in tables] for schema, tables in TABLES.items()},
        "tables": {t.name: sink.rows[t.name] for t in ALL_TABLES},
        "identities": {
            "personnummer": kinds[PNR],
            "samordningsnummer": kinds[SAMORD],
            "reservnummer": sum(kinds[k] for k in RESERV),
            "reservnummer_by_scheme": {k: kinds[k] for k in RESERV},
        },
        "dirt": {
            "invalid_personnummer_checksum": kinds[BAD_CHECKSUM],
            "invalid_personnummer_format": kinds[BAD_FORMAT],
            "invalid_reservnummer_checksum": kinds[BAD_STHLM],
            **{key: total[reason] for key, reason in _DIRT_KEYS},
        },
        "clean_but_hard": {
            "padded_codes": g.padded,
            "icd9_diagnoses": g.icd9,
            "rows_on_clock_change_days": g.dst_rows,
            "deaths": len(plan.deaths),
        },
        "expected_findings": {
            t.name: {reason: sink.reasons[t.name][reason] for reason in Reason.ORDER if sink.reasons[t.name][reason]}
            for t in ALL_TABLES
            if sink.reasons[t.name]
        },
        "corrections": [],
        "placeholder_patients": g.orphan_seq,
    }
