"""Converted times recomputed another way, so that the reconciliation checks the conversion itself.

The mapping converts wall-clock times to UTC on whole columns (numpy over offsets that zoneinfo
gives per year, :func:`decommission.mapping.localtime.to_utc`). Here each value is converted on
its own, with zoneinfo's PEP 495 folds (:func:`~decommission.mapping.localtime.later_reading`),
and rendered the way a record file carries it. The read-back sample and the content fingerprints
compare the archive with these values: a fault in the vectorised conversion (a year without
daylight saving time, a wrong hour at a change) is a difference, not a match with itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from decommission.mapping.localtime import later_reading
from decommission.package.records import format_value
from decommission.plan.mapping_spec import TableSpec


def converted_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column, for fields the mapping converts from local time to UTC."""
    return {name: f.column for name, f in table.fields.items() if f.column and f.transform == "local_time"}


def utc_text(value: Any, zone: str) -> str | None:
    """A source value (wall-clock time of ``zone``) as the record file writes it in UTC; None stays None."""
    when = _as_datetime(value)
    if when is None:
        return None
    utc = when.astimezone(dt.UTC) if when.tzinfo is not None else later_reading(when, zone)
    return format_value(utc)


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return pd.Timestamp(text.strip()).to_pydatetime()  # the other forms the mapping reads (dateutil)
