"""The reconciliation report: a JSON result for machines and a self-contained HTML page.

Swedish by default, English on request. The report carries no identifier in clear; the
hash of the JSON result is recorded in the ledger and shown to the sign-off respondents.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from decommission.files import write_atomic
from decommission.ledger import canonical
from decommission.settings import REPO

TEMPLATES = REPO / "include" / "templates"
LABELS = {
    "sv": {
        "title": "Avstämningsrapport",
        "system": "System",
        "run": "Körning",
        "milestone": "Milstolpe",
        "cut_off": "Brytdatum",
        "version": "Programversion",
        "verdict": "Utlåtande",
        "reasons": "Skäl",
        "table": "Tabell",
        "entity": "Entitet",
        "source": "Källa",
        "extracted": "Extraherat",
        "mapped": "Mappat",
        "quarantined": "Karantän",
        "packaged": "Paketerat",
        "accepted": "Godkänt av arkivet",
        "checks": "Kontroller",
        "check": "Kontroll",
        "scope": "Omfång",
        "ok": "OK",
        "by_reason": "Karantän per orsak",
        "reason": "Orsak",
        "rows": "Rader",
        "packages": "Paket",
        "sample": "Stickprov",
        "checked": "Kontrollerade patienter",
        "mismatches": "Avvikelser",
        "hash": "Resultatets SHA-256",
    },
    "en": {
        "title": "Reconciliation report",
        "system": "System",
        "run": "Run",
        "milestone": "Milestone",
        "cut_off": "Cut-off date",
        "version": "Software version",
        "verdict": "Verdict",
        "reasons": "Reasons",
        "table": "Table",
        "entity": "Entity",
        "source": "Source",
        "extracted": "Extracted",
        "mapped": "Mapped",
        "quarantined": "Quarantined",
        "packaged": "Packaged",
        "accepted": "Accepted by archive",
        "checks": "Checks",
        "check": "Check",
        "scope": "Scope",
        "ok": "OK",
        "by_reason": "Quarantine by reason",
        "reason": "Reason",
        "rows": "Rows",
        "packages": "Packages",
        "sample": "Read-back sample",
        "checked": "Patients checked",
        "mismatches": "Mismatches",
        "hash": "SHA-256 of the result",
    },
}


def result_hash(result: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(result).encode()).hexdigest()


def write_report(result: dict[str, Any], out_dir: Path, *, language: str = "sv") -> dict[str, Any]:
    """Write ``result.json`` and ``report.html`` into ``out_dir`` and return their paths and hashes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = result_hash(result)
    json_path = out_dir / "result.json"
    write_atomic(json_path, canonical(result).encode())
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    html = env.get_template("report.html.j2").render(r=result, t=LABELS[language], digest=digest, lang=language)
    html_path = out_dir / "report.html"
    write_atomic(html_path, html.encode())
    return {
        "result": str(json_path),
        "html": str(html_path),
        "result_sha256": digest,
        "html_sha256": hashlib.sha256(html.encode()).hexdigest(),
    }
