"""Annexes of the report: the exception lists as CSV files and one XLSX workbook.

Rows are streamed: each list is written to its CSV once, then copied from the CSV into
the workbook (xlsxwriter's constant-memory mode). The CSVs are for Swedish Excel (semicolons,
a BOM) and keep the codes as column headings; the workbook names sheets and headings in the
report's language, keeps counts, booleans and dates typed, freezes the heading row and filters.
Identifiers in the rows are keyed hashes already (:func:`decommission.privacy.keyed_hash`);
nothing here sees a clear one.
The workbook's properties are fixed, so the same lists give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

#: fixed document date: the workbook must not change with the clock
_CREATED = dt.datetime(2000, 1, 1)
XLSX_NAME = "annexes.xlsx"
#: Swedish Excel reads a CSV in columns when it is separated by semicolons and starts with a UTF-8 BOM
CSV_DELIMITER = ";"
CSV_ENCODING = "utf-8-sig"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_MAX_WIDTH = 60

#: each list's sheet name in the workbook (at most 31 characters)
SHEETS = {
    "sv": {
        "findings": "Fynd",
        "disposed": "Gallrade rader",
        "sample": "Stickprov",
        "rejections": "Avvisade paket",
        "checks": "Kontroller",
        "years": "Rader per år",
        "patients": "Patienter som avviker",
    },
    "en": {
        "findings": "Findings",
        "disposed": "Disposed rows",
        "sample": "Sample",
        "rejections": "Rejected packages",
        "checks": "Checks",
        "years": "Rows per year",
        "patients": "Patients differing",
    },
}
#: each column's heading in the workbook; the CSV keeps the codes as headings (a stable interface)
COLUMNS = {
    "sv": {
        "partition": "Del",
        "table": "Tabell",
        "reason": "Orsak (kod)",
        "reason_name": "Orsak",
        "reasons": "Alla orsaker (koder)",
        "column": "Kolumn",
        "detail": "Detalj",
        "disposition": "Hantering (kod)",
        "disposition_name": "Hantering",
        "decision": "Beslut",
        "row_hash": "Rad (nyckelhash)",
        "patient_hash": "Patient (nyckelhash)",
        "value_digest": "Värdets kontrollsumma",
        "package_id": "Paket",
        "entity": "Posttyp (kod)",
        "entity_name": "Posttyp",
        "record_hash": "Post (nyckelhash)",
        "field": "Fält",
        "kind": "Typ av avvikelse",
        "requirement": "Krav",
        "path": "Sökväg",
        "message": "Meddelande",
        "check": "Kontroll (kod)",
        "check_name": "Kontroll",
        "scope": "Gäller",
        "left": "Antal",
        "right": "Jämfört med",
        "ok": "Stämmer",
        "year": "År",
        "source": "Källa",
        "extracted": "Uttaget",
    },
    "en": {
        "partition": "Part",
        "table": "Table",
        "reason": "Reason (code)",
        "reason_name": "Reason",
        "reasons": "All reasons (codes)",
        "column": "Column",
        "detail": "Detail",
        "disposition": "Disposition (code)",
        "disposition_name": "Disposition",
        "decision": "Decision",
        "row_hash": "Row (keyed hash)",
        "patient_hash": "Patient (keyed hash)",
        "value_digest": "Digest of the value",
        "package_id": "Package",
        "entity": "Record type (code)",
        "entity_name": "Record type",
        "record_hash": "Record (keyed hash)",
        "field": "Field",
        "kind": "Kind of difference",
        "requirement": "Requirement",
        "path": "Path",
        "message": "Message",
        "check": "Check (code)",
        "check_name": "Check",
        "scope": "Scope",
        "left": "Count",
        "right": "Compared with",
        "ok": "Agrees",
        "year": "Year",
        "source": "Source",
        "extracted": "Extracted",
    },
}
NOTES = {
    "sv": "Inga rader: listan är tom för den här leveransen.",
    "en": "No rows: the list is empty for this delivery.",
}


def write_annexes(
    out_dir: Path, sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Any]]]], *, language: str = "sv"
) -> dict[str, Path]:
    """Write ``annex-<name>.csv`` per list and ``annexes.xlsx`` with one sheet per list.

    The CSVs are separated by semicolons and start with a BOM (Swedish Excel opens them in columns);
    their headings are the column codes. The workbook names its sheets and headings in ``language``.

    :returns: ``annex_<name>`` -> CSV path, and ``annex_xlsx`` -> the workbook
    """
    written: dict[str, Path] = {}
    for name, (header, rows) in sheets.items():
        path = out_dir / f"annex-{name}.csv"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding=CSV_ENCODING, newline="") as fh:
                writer = csv.writer(fh, delimiter=CSV_DELIMITER, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written[f"annex_{name}"] = path
    if written:
        written["annex_xlsx"] = _workbook(out_dir, written, language)
    return written


def read_annex(data: bytes) -> list[dict[str, str]]:
    """The rows of an annex CSV (as :func:`write_annexes` writes it), by column code."""
    return list(csv.DictReader(io.StringIO(data.decode(CSV_ENCODING)), delimiter=CSV_DELIMITER))


def _workbook(out_dir: Path, csv_files: Mapping[str, Path], language: str) -> Path:
    path = out_dir / XLSX_NAME
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{XLSX_NAME}.", suffix=".tmp")
    os.close(fd)
    sheet_names = SHEETS.get(language, SHEETS["sv"])
    headings = COLUMNS.get(language, COLUMNS["sv"])
    try:
        book = xlsxwriter.Workbook(tmp, {"constant_memory": True, "strings_to_numbers": False})
        title = "Bilagor till avstämningsrapporten" if language == "sv" else "Annexes to the reconciliation report"
        book.set_properties({"created": _CREATED, "title": title, "author": "decommission"})
        formats = {
            "head": book.add_format({"bold": True, "bg_color": "#F2F2F2", "bottom": 1}),
            "date": book.add_format({"num_format": "yyyy-mm-dd"}),
            "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "note": book.add_format({"italic": True}),
        }
        for key, csv_path in csv_files.items():
            code = key.removeprefix("annex_")
            name = sheet_names.get(code, code)[:31]
            _sheet(book.add_worksheet(name), csv_path, formats, headings, language)
        book.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _sheet(sheet: Any, csv_path: Path, formats: Mapping[str, Any], headings: Mapping[str, str], language: str) -> None:
    """One list: headings in words, counts as numbers, true/false as booleans, dates as dates; frozen and filtered."""
    widths: list[int] = []
    last = 0
    with csv_path.open(encoding=CSV_ENCODING, newline="") as fh:
        for r, row in enumerate(csv.reader(fh, delimiter=CSV_DELIMITER)):
            last = r
            for c, value in enumerate(row):
                text = headings.get(value, value) if r == 0 else value
                if c >= len(widths):
                    widths.append(0)
                widths[c] = max(widths[c], min(_MAX_WIDTH, len(text)))
                if r == 0:
                    sheet.write_string(r, c, text, formats["head"])
                else:
                    _cell(sheet, r, c, value, formats)
    columns = max(1, len(widths))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(last, 1) if last else 0, columns - 1)
    if last == 0:
        sheet.write_string(1, 0, NOTES.get(language, NOTES["sv"]), formats["note"])
    for c, width in enumerate(widths):
        sheet.set_column(c, c, max(10, width + 2))


def _cell(sheet: Any, r: int, c: int, value: str, formats: Mapping[str, Any]) -> None:
    if _is_count(value):
        sheet.write_number(r, c, int(value))
    elif value in ("True", "False"):
        sheet.write_boolean(r, c, value == "True")
    elif _DATE.match(value):
        sheet.write_datetime(r, c, dt.datetime.fromisoformat(value), formats["date"])
    elif _DATETIME.match(value):
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Excel has no time zones: the time in UTC, as the ledger and the receipts write it
        if when.tzinfo:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        sheet.write_datetime(r, c, when, formats["datetime"])
    else:
        sheet.write_string(r, c, value)


def _is_count(value: str) -> bool:
    """Counts become numbers in the workbook; codes with leading zeros and hashes stay text."""
    return value.isdigit() and len(value) < 15 and (value == "0" or not value.startswith("0"))
