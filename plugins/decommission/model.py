"""The archive record model: the entities every mapping produces and every package holds.

Mapped staging files (one Parquet file per entity and partition) carry exactly these
columns, in this order. ``patient_key`` is the source system's internal patient key
(never the personnummer); it names the patient's folder in a package.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Entity:
    """One kind of record in the archive model."""

    name: str
    key: str
    schema: pa.Schema
    #: the column whose year the reconciliation groups by (None: not dated)
    date_field: str | None = None


_ts = pa.timestamp("us", tz="UTC")

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "patient",
            "patient_key",
            pa.schema(
                [
                    ("patient_key", pa.string()),
                    ("personal_id", pa.string()),  # 12 digits (or a reservnummer as written)
                    ("id_type", pa.string()),  # identity.IdType value
                    ("given_name", pa.string()),
                    ("family_name", pa.string()),
                    ("sex", pa.string()),
                    ("birth_date", pa.date32()),
                    ("protected_identity", pa.bool_()),
                    ("blocked", pa.bool_()),
                    ("confidential", pa.bool_()),
                ]
            ),
        ),
        Entity(
            "case",
            "case_id",
            pa.schema(
                [
                    ("case_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("care_unit", pa.string()),
                    ("case_type", pa.string()),
                    ("start_time", _ts),
                    ("end_time", _ts),
                ]
            ),
            "start_time",
        ),
        Entity(
            "document",
            "document_id",
            pa.schema(
                [
                    ("document_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("case_id", pa.string()),
                    ("care_unit", pa.string()),
                    ("time", _ts),
                    ("title", pa.string()),
                    ("text", pa.string()),
                    ("author", pa.string()),
                ]
            ),
            "time",
        ),
        Entity(
            "diagnosis",
            "diagnosis_id",
            pa.schema(
                [
                    ("diagnosis_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("case_id", pa.string()),
                    ("code", pa.string()),  # ICD-10-SE
                    ("time", _ts),
                ]
            ),
            "time",
        ),
        Entity(
            "medication",
            "medication_id",
            pa.schema(
                [
                    ("medication_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("atc", pa.string()),
                    ("product", pa.string()),
                    ("dose", pa.string()),
                    ("time", _ts),
                ]
            ),
            "time",
        ),
        Entity(
            "lab_result",
            "result_id",
            pa.schema(
                [
                    ("result_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("case_id", pa.string()),
                    ("code", pa.string()),  # NPU
                    ("analysis", pa.string()),
                    ("value", pa.string()),
                    ("unit", pa.string()),
                    ("time", _ts),
                ]
            ),
            "time",
        ),
        Entity(
            "attachment",
            "attachment_id",
            pa.schema(
                [
                    ("attachment_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("document_id", pa.string()),
                    ("filename", pa.string()),
                    ("mimetype", pa.string()),
                    ("content", pa.large_binary()),
                ]
            ),
        ),
        Entity(
            "access_log",
            "log_id",
            pa.schema(
                [
                    ("log_id", pa.string()),
                    ("patient_key", pa.string()),
                    ("user", pa.string()),
                    ("event", pa.string()),
                    ("time", _ts),
                ]
            ),
            "time",
        ),
    )
}

#: Columns of a quarantine file (one per partition). ``source_key`` is the row's own
#: key in the source table (not a patient identifier); ``value_digest`` is a keyed
#: hash of the offending raw value; ``detail`` never holds patient data.
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_table", pa.string()),
        ("entity", pa.string()),
        ("source_key", pa.string()),
        ("patient_key", pa.string()),
        ("rule", pa.string()),
        ("column", pa.string()),
        ("detail", pa.string()),
        ("value_digest", pa.string()),
    ]
)


class Reason:
    """Quarantine reason codes. A row gets exactly one: the first that applies, in this order."""

    SOFT_DELETED = "SOFT_DELETED"
    ORPHAN = "ORPHAN"
    PATIENT_QUARANTINED = "PATIENT_QUARANTINED"
    ID_INVALID_FORMAT = "ID_INVALID_FORMAT"
    ID_INVALID_CHECKSUM = "ID_INVALID_CHECKSUM"
    ID_INVALID_DATE = "ID_INVALID_DATE"
    SENTINEL_DATE = "SENTINEL_DATE"
    XML_ILLEGAL_CHAR = "XML_ILLEGAL_CHAR"
    ENCODING_SUSPECT = "ENCODING_SUSPECT"
    EMPTY_ATTACHMENT = "EMPTY_ATTACHMENT"
    CODE_INVALID = "CODE_INVALID"

    ORDER = (
        SOFT_DELETED,
        ORPHAN,
        PATIENT_QUARANTINED,
        ID_INVALID_FORMAT,
        ID_INVALID_CHECKSUM,
        ID_INVALID_DATE,
        SENTINEL_DATE,
        XML_ILLEGAL_CHAR,
        ENCODING_SUSPECT,
        EMPTY_ATTACHMENT,
        CODE_INVALID,
    )
