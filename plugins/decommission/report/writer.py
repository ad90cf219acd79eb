"""The reconciliation report: JSON for machines, a self-contained HTML page and its PDF, annexes.

Swedish by default, English on request. The report carries no identifier in clear; the
hash of the JSON result is recorded in the ledger and shown to the sign-off respondents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from decommission.files import write_atomic
from decommission.ledger import canonical
from decommission.report import sections
from decommission.report.charts import grouped_bars, horizontal_bars
from decommission.report.labels import LABELS, decimal, number
from decommission.settings import REPO

if TYPE_CHECKING:
    from decommission.plan.programme import System

TEMPLATES = REPO / "include" / "templates"
#: one exception list: its header and its rows
Sheet = tuple[Sequence[str], Iterable[Sequence[Any]]]


def result_hash(result: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(result).encode()).hexdigest()


def write_report(
    result: dict[str, Any],
    out_dir: Path,
    *,
    language: str = "sv",
    annexes: Mapping[str, Sheet] | None = None,
    about: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the result (JSON), the report (HTML and PDF) and the annexes (CSV, XLSX) into ``out_dir``.

    :param annexes: exception lists, name -> (header, rows); identifiers in them must already be keyed hashes
    :param about: what the plan says of the system (:func:`about_system`): supplier, agreement, access log, signers
    :returns: paths and SHA-256 of every file written
    """
    from decommission.report.annex import write_annexes
    from decommission.report.pdf import render_pdf

    if language not in LABELS:
        raise ValueError(f"report language '{language}' is not one of {sorted(LABELS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = result_hash(result)
    t = LABELS[language]
    json_path = write_atomic(out_dir / "result.json", canonical(result).encode())
    files = {"result": json_path}
    files |= write_annexes(out_dir, annexes or {}, language=language)
    rep = sections.build(
        result,
        t,
        language,
        digest,
        about=about,
        annexes=sorted(p.name for k, p in files.items() if k != "result"),
    )
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(rep=rep, lang=language, charts=svg_charts(rep, language))
    files["html"] = write_atomic(out_dir / "report.html", html.encode())
    files["pdf"] = write_atomic(out_dir / "report.pdf", render_pdf(rep, result.get("snapshot"), language))
    out: dict[str, Any] = {"result_sha256": digest}
    for name, path in files.items():
        out[name] = str(path)
        out[f"{name}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["result_sha256"] = digest
    return out


def about_system(system: System) -> dict[str, Any]:
    """What the report says of the system from the plan: supplier, delivery agreement, access log, signers."""
    return {
        "supplier": system.supplier,
        "agreement": {"id": system.agreement.id, "archive": system.agreement.archive},
        "access_log": {"disposition": system.access_log.disposition, "reference": system.access_log.reference},
        "signers": [
            {"role": "information_owner", "name": system.signoff.information_owner.name},
            {"role": "archivist", "name": system.signoff.archivist.name},
        ],
    }


def svg_charts(rep: sections.Report, language: str) -> dict[str, list[Markup]]:
    """Inline SVG of each section's charts, numbers written as the language writes them."""

    def fmt(v: float) -> str:
        return number(v, language) if float(v).is_integer() else decimal(v, language)

    out: dict[str, list[Markup]] = {}
    for s in rep.sections:
        for c in s.charts:
            if c.kind == "horizontal":
                svg = horizontal_bars(c.title, {k: v[0] for k, v in c.groups.items()}, fmt=fmt)
            else:
                svg = grouped_bars(c.title, c.groups, c.series, fmt=fmt)
            out.setdefault(s.key, []).append(Markup(svg))  # noqa: S704 - built from numbers and escaped labels
    return out
