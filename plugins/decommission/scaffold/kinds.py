"""What a catalogue type is, and which transform makes a column of it into a field of the record model."""

from __future__ import annotations


def kind(type_name: str) -> str:
    """The kind of a catalogue type: int, number, bool, text, char, date, timestamp, timestamptz, bytes, any, other."""
    t = type_name.lower().strip()
    if not t:
        return "any"  # SQLite: a column declared without a type holds anything
    if t.startswith("timestamp") or t == "datetime":
        return "timestamptz" if ("with time zone" in t or t == "timestamptz") else "timestamp"
    if t == "date":
        return "date"
    if t in ("boolean", "bool"):
        return "bool"
    if "int" in t or "serial" in t:
        return "int"
    if t.startswith(("character(", "char(", "nchar")) or t in ("character", "char", "bpchar"):
        return "char"
    if any(w in t for w in ("char", "text", "clob", "uuid", "json", "xml", "citext")) or t == "name":
        return "text"
    if any(w in t for w in ("bytea", "blob", "binary")):
        return "bytes"
    if any(w in t for w in ("numeric", "decimal", "real", "double", "float", "money")):
        return "number"
    return "other"


def transform_for(model_type: str, column_kind: str) -> str | None:
    """The transform that makes a column of this kind into a field of this model type; None: not likely."""
    if model_type == "string":
        if column_kind == "char":
            return "trim"
        return "str" if column_kind in ("text", "int", "number", "any", "bool") else None
    if model_type == "timestamp":
        return {
            "timestamp": "local_time",
            "date": "local_time",
            "text": "local_time",
            "char": "local_time",
            "timestamptz": "utc_time",
            "int": "epoch_seconds",
        }.get(column_kind)
    if model_type == "date32":
        return "date" if column_kind in ("date", "timestamp", "timestamptz", "text", "char") else None
    if model_type == "bool":
        return "bool" if column_kind in ("bool", "int", "text", "char") else None
    if model_type == "large_binary":
        return "bytes" if column_kind == "bytes" else None
    return None


#: the reason a guessed transform gives in the draft
TRANSFORM_WHY = {
    "local_time": "read as local wall-clock time",
    "utc_time": "a time with its zone: read as UTC",
    "epoch_seconds": "an integer time: read as unix seconds (UTC); check it is not milliseconds",
    "date": "read as a date",
    "bool": "read as 0/1, true/false, J/N",
    "bytes": "kept as bytes",
    "trim": "char(n): trailing blanks trimmed (recorded in the spec)",
}
