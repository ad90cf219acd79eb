"""The reconciliation report: JSON for machines, a self-contained HTML page and its PDF, annexes.

Swedish by default, English on request. The report carries no identifier in clear; the
hash of the JSON result is recorded in the ledger and shown to the sign-off respondents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from decommission.files import write_atomic
from decommission.ledger import canonical
from decommission.report.charts import grouped_bars, horizontal_bars
from decommission.report.labels import LABELS, number, percent, year_label
from decommission.settings import REPO

TEMPLATES = REPO / "include" / "templates"
#: one exception list: its header and its rows
Sheet = tuple[Sequence[str], Iterable[Sequence[Any]]]


def result_hash(result: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(result).encode()).hexdigest()


def write_report(
    result: dict[str, Any], out_dir: Path, *, language: str = "sv", annexes: Mapping[str, Sheet] | None = None
) -> dict[str, Any]:
    """Write the result (JSON), the report (HTML and PDF) and the annexes (CSV, XLSX) into ``out_dir``.

    :param annexes: exception lists, name -> (header, rows); identifiers in them must already be keyed hashes
    :returns: paths and SHA-256 of every file written
    """
    from decommission.report.annex import write_annexes
    from decommission.report.pdf import justification, render_pdf

    if language not in LABELS:
        raise ValueError(f"report language '{language}' is not one of {sorted(LABELS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = result_hash(result)
    t = LABELS[language]
    json_path = write_atomic(out_dir / "result.json", canonical(result).encode())
    files = {"result": json_path}
    files |= write_annexes(out_dir, annexes or {})
    charts = build_charts(result, t)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        r=result,
        t=t,
        digest=digest,
        lang=language,
        charts=charts,
        justification=justification(result.get("sample", {}), t),
        annexes=sorted(p.name for k, p in files.items() if k != "result"),
        num=lambda v: number(v, language),
        pct=lambda v: percent(v, language),
    )
    files["html"] = write_atomic(out_dir / "report.html", html.encode())
    files["pdf"] = write_atomic(out_dir / "report.pdf", render_pdf(result, t, digest))
    out: dict[str, Any] = {"result_sha256": digest}
    for name, path in files.items():
        out[name] = str(path)
        out[f"{name}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["result_sha256"] = digest
    return out


def build_charts(result: Mapping[str, Any], t: Mapping[str, str]) -> dict[str, Markup]:
    """Inline SVG: rows per year (source against archive), findings by reason, progress over milestones."""
    charts = {}
    years = result.get("breakdown", {}).get("years", {})
    if years:
        charts["by_year"] = grouped_bars(
            t["by_year"],
            {year_label(y, t): (v["source"], v["archived"]) for y, v in years.items()},
            (t["source"], t["archived"]),
        )
    if result.get("findings_by_reason"):
        charts["by_reason"] = horizontal_bars(t["by_reason"], result["findings_by_reason"])
    progress = [*result.get("progress", []), {"milestone": result.get("milestone", ""), **result["totals"]}]
    charts["progress"] = grouped_bars(
        t["progress"],
        {p["milestone"]: (p["source"], p["archived"]) for p in progress},
        (t["source"], t["archived"]),
    )
    return {k: Markup(v) for k, v in charts.items()}  # noqa: S704 - built from numbers and escaped labels
