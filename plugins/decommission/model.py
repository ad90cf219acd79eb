"""The archive record model: the entities every mapping produces and every package holds.

Mapped staging files (one Parquet file per entity and partition) carry exactly these
columns, in this order. ``patient_key`` is the source system's internal patient key
(never the personnummer); it names the patient's folder in a package. ``quality`` is the
record's quality flags (:data:`QUALITY`): JSON, null when the mapping found nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

#: Arrow types by name: the model is declared without pyarrow, so the DAG file's parse (which
#: checks every mapping against these names) does not import it; schemas are built when first used
_ARROW_TYPES = {
    "string": lambda pa: "string",
    "large_binary": lambda pa: "large_binary",
    "date32": lambda pa: "date32",
    "bool": lambda pa: "bool",
    "timestamp": lambda pa: pa.timestamp("us", tz="UTC"),
}


def arrow_schema(fields: Sequence[tuple[str, str]]) -> pa.Schema:
    """The Arrow schema of (column, type name) pairs."""
    import pyarrow as pa

    return pa.schema([(name, _ARROW_TYPES[kind](pa)) for name, kind in fields])


@dataclass(frozen=True)
class Entity:
    """One kind of record in the archive model."""

    name: str
    key: str
    #: (column, Arrow type name) in file order
    fields: tuple[tuple[str, str], ...]
    #: the column whose year the reconciliation groups by (None: not dated)
    date_field: str | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.fields)

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """The Arrow schema (built on first use; a frozen dataclass's cached_property writes its own __dict__)."""
        return arrow_schema(self.fields)


_ts = "timestamp"
#: suffixes of the columns that say which code system (and version) the column before them is in;
#: the packager writes them as attributes of the code's element (``<code codeSystem=".." codeSystemVersion="..">``)
CODE_SYSTEM_SUFFIXES = ("_system", "_system_version")

#: the last column of every entity: the record's quality flags as canonical JSON (null: none), see
#: :mod:`decommission.mapping.flags`; the packager writes them as ``<quality>`` in the record file
QUALITY = "quality"
_quality = (QUALITY, "string")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "patient",
            "patient_key",
            (
                ("patient_key", "string"),
                ("personal_id", "string"),  # 12 digits (or a reservnummer as written)
                ("id_type", "string"),  # identity.IdType value
                ("id_scheme", "string"),  # personnummer, samordningsnummer or an identity scheme's name
                ("given_name", "string"),
                ("family_name", "string"),
                ("sex", "string"),
                ("birth_date", "date32"),
                ("protected_identity", "bool"),
                ("blocked", "bool"),
                ("confidential", "bool"),
                ("death_date", "date32"),
                ("death_cause", "string"),  # in death_cause_system (ICD-10-SE, ...), where the source holds one
                ("death_cause_system", "string"),
                ("death_cause_system_version", "string"),
                _quality,
            ),
        ),
        Entity(
            "case",
            "case_id",
            (
                ("case_id", "string"),
                ("patient_key", "string"),
                ("care_unit", "string"),
                ("case_type", "string"),
                ("start_time", _ts),
                ("end_time", _ts),
                ("admission_source", "string"),  # where the patient came from (as written)
                ("discharge_destination", "string"),  # where the patient went (as written)
                _quality,
            ),
            "start_time",
        ),
        Entity(
            "transfer",
            "transfer_id",
            (  # a stay at, or a move between, care units within a case
                ("transfer_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("care_unit", "string"),
                ("event", "string"),  # admission, transfer, discharge or as written
                ("start_time", _ts),
                ("end_time", _ts),
                _quality,
            ),
            "start_time",
        ),
        Entity(
            "document",
            "document_id",
            (
                ("document_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("care_unit", "string"),
                ("time", _ts),
                ("title", "string"),
                ("text", "string"),
                ("author", "string"),
                _quality,
            ),
            "time",
        ),
        Entity(
            "diagnosis",
            "diagnosis_id",
            (
                ("diagnosis_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("code", "string"),  # in code_system (ICD-10-SE, ICD-10, ICD-9-CM, ...)
                ("code_system", "string"),  # a name of plan.code_systems.REGISTRY or of the spec's code lists
                ("code_system_version", "string"),
                ("time", _ts),
                ("rank", "string"),  # as written: "1", "huvud", "bi", ...
                ("text", "string"),  # the diagnosis in words, as written
                _quality,
            ),
            "time",
        ),
        Entity(
            "procedure",
            "procedure_id",
            (
                ("procedure_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("care_unit", "string"),
                ("code", "string"),  # in code_system (KVÅ, ICD-9-CM procedures, ICD-10-PCS, a local list, ...)
                ("code_system", "string"),
                ("code_system_version", "string"),
                ("text", "string"),
                ("rank", "string"),  # as written
                ("start_time", _ts),
                ("end_time", _ts),
                _quality,
            ),
            "start_time",
        ),
        Entity(
            "medication",
            "medication_id",
            (
                ("medication_id", "string"),
                ("patient_key", "string"),
                ("atc", "string"),  # in atc_system (ATC at any level, or a local list)
                ("product", "string"),
                ("dose", "string"),
                ("time", _ts),  # the time of the prescription or administration record
                ("case_id", "string"),
                ("atc_system", "string"),
                ("atc_system_version", "string"),
                ("route", "string"),  # as written
                ("unit", "string"),
                ("frequency", "string"),  # as written
                ("start_time", _ts),
                ("stop_time", _ts),
                _quality,
            ),
            "time",
        ),
        Entity(
            "lab_result",
            "result_id",
            (
                ("result_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("code", "string"),  # in code_system (NPU, a local list of the lab's own item ids, ...)
                ("code_system", "string"),
                ("code_system_version", "string"),
                ("analysis", "string"),
                ("value", "string"),
                ("unit", "string"),
                ("time", _ts),
                # the reference range as the source holds it: two bounds, or one text ("3,5-5,0", "<0.5")
                ("reference_low", "string"),
                ("reference_high", "string"),
                ("reference_range", "string"),
                ("abnormal_flag", "string"),  # as written: "H", "L", "abnormal", ...
                _quality,
            ),
            "time",
        ),
        Entity(
            "observation",
            "observation_id",
            (  # vital signs, measurements and scores (an ASA class, say)
                ("observation_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("code", "string"),  # what was observed, in code_system
                ("code_system", "string"),
                ("code_system_version", "string"),
                ("name", "string"),
                ("value", "string"),  # as written: never converted to a number
                ("unit", "string"),
                ("reference_low", "string"),
                ("reference_high", "string"),
                ("abnormal_flag", "string"),
                ("time", _ts),
                _quality,
            ),
            "time",
        ),
        Entity(
            "order",
            "order_id",
            (  # orders and referrals
                ("order_id", "string"),
                ("patient_key", "string"),
                ("case_id", "string"),
                ("order_type", "string"),  # order, referral or as written
                ("code", "string"),  # what was ordered, in code_system
                ("code_system", "string"),
                ("code_system_version", "string"),
                ("text", "string"),
                ("ordering_unit", "string"),
                ("performing_unit", "string"),
                ("status", "string"),
                ("time", _ts),
                ("completed_time", _ts),
                _quality,
            ),
            "time",
        ),
        Entity(
            "attachment",
            "attachment_id",
            (
                ("attachment_id", "string"),
                ("patient_key", "string"),
                ("document_id", "string"),
                ("filename", "string"),
                ("mimetype", "string"),
                ("content", "large_binary"),
                _quality,
            ),
        ),
        Entity(
            "access_log",
            "log_id",
            (
                ("log_id", "string"),
                ("patient_key", "string"),
                ("user", "string"),
                ("event", "string"),
                ("time", _ts),
                _quality,
            ),
            "time",
        ),
    )
}


def coded_columns(columns: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Coded column -> its code system and version columns (``atc`` -> ``atc_system``, ``atc_system_version``).

    A column is coded when both columns named by :data:`CODE_SYSTEM_SUFFIXES` follow it in the model.
    """
    have = set(columns)
    return {
        c: (c + CODE_SYSTEM_SUFFIXES[0], c + CODE_SYSTEM_SUFFIXES[1])
        for c in columns
        if all(c + suffix in have for suffix in CODE_SYSTEM_SUFFIXES)
    }


#: every coded column of the model (by entity): code -> (system column, version column)
CODED: dict[str, dict[str, tuple[str, str]]] = {
    name: found for name, e in ENTITIES.items() if (found := coded_columns(e.field_names))
}


#: Columns of a findings file (one per partition): one row per source row the mapping found
#: something on, or corrected, whatever became of it. ``source_key`` is the row's own key in the
#: source table (not a patient identifier); ``reason`` is the row's first reason in
#: :attr:`Reason.ORDER` (``reasons`` all of them, space-separated); ``disposition`` what became of the
#: row (:class:`Disposition`) and ``decision`` the reference of the decision that covers it;
#: ``value_digest`` is a keyed hash of the offending raw value; ``detail`` never holds patient data.
FINDINGS_FIELDS = (
    ("source_table", "string"),
    ("entity", "string"),
    ("source_key", "string"),
    ("patient_key", "string"),
    ("reason", "string"),
    ("reasons", "string"),
    ("column", "string"),
    ("detail", "string"),
    ("value_digest", "string"),
    ("disposition", "string"),
    ("decision", "string"),
)
FINDINGS_FILE = "findings.parquet"
#: the own keys of the rows disposed of by decision, per spec table (staging only; the raw representation
#: leaves them out)
DISPOSED_FILE = "disposed.parquet"


def __getattr__(name: str) -> Any:
    """``FINDINGS_SCHEMA``, the Arrow schema of a findings file, built (and pyarrow imported) when first used."""
    if name == "FINDINGS_SCHEMA":
        schema = arrow_schema(FINDINGS_FIELDS)
        globals()[name] = schema
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Reason:
    """Finding codes. A row counts under one, the first that applies in this order; its flags list all."""

    SOFT_DELETED = "SOFT_DELETED"
    ORPHAN = "ORPHAN"
    #: the row's patient is disposed of by a decision: the row goes with it, under that decision
    PATIENT_DISPOSED = "PATIENT_DISPOSED"
    ID_INVALID_FORMAT = "ID_INVALID_FORMAT"
    ID_INVALID_CHECKSUM = "ID_INVALID_CHECKSUM"
    ID_INVALID_DATE = "ID_INVALID_DATE"
    SENTINEL_DATE = "SENTINEL_DATE"
    #: a wall-clock time that names no one instant (the repeated autumn hour, the spring gap): converted
    #: by the documented policy (mapping.localtime), flagged so the choice is visible
    LOCAL_TIME_ADJUSTED = "LOCAL_TIME_ADJUSTED"
    XML_ILLEGAL_CHAR = "XML_ILLEGAL_CHAR"
    ENCODING_SUSPECT = "ENCODING_SUSPECT"
    EMPTY_ATTACHMENT = "EMPTY_ATTACHMENT"
    CODE_INVALID = "CODE_INVALID"

    ORDER = (
        SOFT_DELETED,
        ORPHAN,
        PATIENT_DISPOSED,
        ID_INVALID_FORMAT,
        ID_INVALID_CHECKSUM,
        ID_INVALID_DATE,
        SENTINEL_DATE,
        LOCAL_TIME_ADJUSTED,
        XML_ILLEGAL_CHAR,
        ENCODING_SUSPECT,
        EMPTY_ATTACHMENT,
        CODE_INVALID,
    )


class Disposition:
    """What becomes of a row with a finding; declared per table and reason in the mapping spec.

    ``keep_flagged`` (the default): archived as it is, the finding flagged in the record.
    ``correct``: archived with the value of the spec's correction list, the original kept in the flag.
    ``dispose``: left out of the archive, only under a recorded decision (its reference).
    """

    KEEP_FLAGGED = "keep_flagged"
    CORRECT = "correct"
    DISPOSE = "dispose"
    ALL = (KEEP_FLAGGED, CORRECT, DISPOSE)
    #: the result's name of each class of rows: archived flagged, archived corrected, disposed
    CLASS = {KEEP_FLAGGED: "flagged", CORRECT: "corrected", DISPOSE: "disposed"}
