"""Patient record files: their names, schema and an independent counter.

One record file per patient holds the patient and every record of the archive model that
belongs to the patient (``schemas/record.xsd``, namespace :data:`NS`); :mod:`decommission.package.recordxml`
renders them. :func:`count_entities` reads a record file back on its own, so whoever receives
a package can count what it holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from lxml import etree

from decommission.errors import PackageError
from decommission.model import ENTITIES

NS = "urn:decommission:record:1"
RECORD_VERSION = "1"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
RECORD_XSD = SCHEMA_DIR / "record.xsd"
RECORD_FILENAME = "record.xml"

#: entity name -> (container element, record element); the patient has no container
ELEMENTS: dict[str, tuple[str | None, str]] = {
    "patient": (None, "patient"),
    "case": ("cases", "case"),
    "transfer": ("transfers", "transfer"),
    "document": ("documents", "document"),
    "diagnosis": ("diagnoses", "diagnosis"),
    "procedure": ("procedures", "procedure"),
    "medication": ("medications", "medication"),
    "lab_result": ("labResults", "labResult"),
    "observation": ("observations", "observation"),
    "order": ("orders", "order"),
    "attachment": ("attachments", "attachment"),
    "access_log": ("accessLog", "logEntry"),
}
#: the entities below the patient, in the order they appear in a record file (the model's order)
RECORD_ENTITIES: tuple[str, ...] = tuple(name for name in ENTITIES if name != "patient")
assert set(ELEMENTS) == set(ENTITIES), "every entity of the model needs its record file elements"


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def natural_key(value: str) -> tuple[int, int, str]:
    """Sort key: all-digit strings in numeric order first, then the rest in code-point order."""
    if value.isascii() and value.isdigit():
        return (0, int(value), value)
    return (1, 0, value)


def camel(column: str) -> str:
    """``care_unit`` -> ``careUnit``."""
    head, *rest = column.split("_")
    return head + "".join(part.capitalize() for part in rest)


def format_value(value: Any) -> str | None:
    """Render a Parquet value as XML text (UTC timestamps end in ``Z``); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def count_entities(record_path: Path | str) -> dict[str, int]:
    """Count the records per entity in a record file, reading it on its own (iterparse).

    :param record_path: a ``record.xml`` written by :func:`write_record`
    :returns: entity name (model.py) -> records found
    :raises PackageError: the file is not a record file
    """
    tags = {_q(element): entity for entity, (_container, element) in ELEMENTS.items()}
    counts = dict.fromkeys(ENTITIES, 0)
    context = etree.iterparse(str(record_path), events=("end",), tag=list(tags), huge_tree=True, resolve_entities=False)
    try:
        for _event, element in context:
            counts[tags[element.tag]] += 1
            element.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        raise PackageError(f"{Path(record_path).name}: not well-formed XML (line {exc.lineno})") from exc
    if context.root is None or context.root.tag != _q("record"):
        raise PackageError(f"{Path(record_path).name}: not a record file")
    return counts


def record_schema() -> etree.XMLSchema:
    """A new validator for record files and the patient manifest (local file, no network).

    Validators are built per use, never shared between threads; building one takes about a millisecond.
    """
    return etree.XMLSchema(etree.parse(str(RECORD_XSD)))
