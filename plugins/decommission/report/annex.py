"""Annexes of the report: the exception lists as CSV files and one XLSX workbook.

Rows are streamed: each list is written to its CSV once, then copied from the CSV into
the workbook (xlsxwriter's constant-memory mode). Identifiers in the rows are keyed
hashes already (:func:`decommission.privacy.keyed_hash`); nothing here sees a clear one.
The workbook's properties are fixed, so the same lists give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

#: fixed document date: the workbook must not change with the clock
_CREATED = dt.datetime(2000, 1, 1)
XLSX_NAME = "annexes.xlsx"


def write_annexes(
    out_dir: Path, sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Any]]]]
) -> dict[str, Path]:
    """Write ``annex-<name>.csv`` per list and ``annexes.xlsx`` with one sheet per list.

    :returns: ``annex_<name>`` -> CSV path, and ``annex_xlsx`` -> the workbook
    """
    written: dict[str, Path] = {}
    for name, (header, rows) in sheets.items():
        path = out_dir / f"annex-{name}.csv"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written[f"annex_{name}"] = path
    if written:
        written["annex_xlsx"] = _workbook(out_dir, written)
    return written


def _workbook(out_dir: Path, csv_files: Mapping[str, Path]) -> Path:
    path = out_dir / XLSX_NAME
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{XLSX_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(tmp, {"constant_memory": True, "strings_to_numbers": False})
        book.set_properties({"created": _CREATED, "title": "Bilagor / annexes", "author": "decommission"})
        bold = book.add_format({"bold": True})
        for key, csv_path in csv_files.items():
            sheet = book.add_worksheet(key.removeprefix("annex_")[:31])
            with csv_path.open(encoding="utf-8", newline="") as fh:
                for r, row in enumerate(csv.reader(fh)):
                    for c, value in enumerate(row):
                        if r and _is_count(value):
                            sheet.write_number(r, c, int(value))
                        else:
                            sheet.write_string(r, c, value, bold if r == 0 else None)
        book.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _is_count(value: str) -> bool:
    """Counts become numbers in the workbook; codes with leading zeros and hashes stay text."""
    return value.isdigit() and len(value) < 15 and (value == "0" or not value.startswith("0"))
