"""The monthly board report: "Lägesrapport – avveckling av äldre vårdinformationssystem", HTML and PDF.

Written to ``<home>/programme/board/lagesrapport-<YYYY-MM>.{html,pdf}`` and recorded in the
ledger (system ``programme``, kind ``board_report``) with both files' SHA-256 and the figures
it shows, so a board member can check the copy they were sent. A rerun in the same month
replaces the files and records them again; the latest entry is what the overview links.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from decommission import settings
from decommission.evidence.verified import sha256_of
from decommission.files import write_atomic
from decommission.overview.board_pdf import render_board_pdf
from decommission.overview.charts import gantt, money_chart
from decommission.overview.state import BOARD_SYSTEM_ID, ProgrammeState, programme_state
from decommission.overview.view import programme_view

if TYPE_CHECKING:
    from decommission.ledger import Ledger
    from decommission.plan.programme import Plan

KIND = "board_report"
TEMPLATES = settings.REPO / "include" / "templates"


def board_dir() -> Path:
    return settings.home() / "programme" / "board"


def file_name(month: str, suffix: str) -> str:
    return f"lagesrapport-{month}.{suffix}"


def write_board_report(
    plan: Plan, today: dt.date, *, run_id: str, ledger: Ledger | None = None, language: str = "sv"
) -> dict[str, Any]:
    """Write this month's report (HTML and PDF) and record both hashes and its figures in the ledger."""
    from decommission.ledger import programme_ledger

    ledger = ledger or programme_ledger()
    state = programme_state(plan, today, ledger)
    month = today.strftime("%Y-%m")
    view = programme_view(state, language)
    html = render_board_html(state, view, month).encode()
    pdf = render_board_pdf(state, view, month)
    folder = board_dir()
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, data in (("html", html), ("pdf", pdf)):
        path = write_atomic(folder / file_name(month, key), data)
        files[key] = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()}
    payload = {"month": month, "as_of": today.isoformat(), "language": language, "files": files, **figures(state)}
    entry = ledger.append(system_id=BOARD_SYSTEM_ID, run_id=run_id, kind=KIND, payload=payload)
    return {
        "month": month,
        "html": str(folder / files["html"]["file"]),
        "pdf": str(folder / files["pdf"]["file"]),
        "html_sha256": files["html"]["sha256"],
        "pdf_sha256": files["pdf"]["sha256"],
        "ledger_entry": entry.entry_hash,
    }


def figures(state: ProgrammeState) -> dict[str, Any]:
    """The figures the report shows, as numbers (what a test or an auditor compares against)."""
    econ = state.economics
    return {
        "totals": state.totals,
        "systems": {
            s.system.id: {
                "status": s.status.value,
                "verdict": s.view.latest.verdict if s.view.latest else None,
                "contract_end": s.contract_end.isoformat(),
                "notice_deadline": s.notice_deadline.isoformat(),
            }
            for s in state.systems
        },
        "economics": None
        if econ is None
        else {
            "payback_year": econ.payback_year,
            "years": {y.year: {"archive": y.archive_total, "ended": y.legacy_ended, "net": y.net} for y in econ.years},
        },
    }


def render_board_html(state: ProgrammeState, view: dict[str, Any], month: str) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("board.html.j2").render(
        **view,
        month=month,
        timeline=gantt(state.systems, state.today, view["lang"]),
        money=money_chart(state.economics, view["lang"]) if state.economics else "",
    )


def board_files(ledger: Ledger | None = None) -> dict[str, tuple[Path, str | None]]:
    """Every board report file the ledger recorded (latest record per name) and what is wrong with it, if anything."""
    from decommission.ledger import programme_ledger

    ledger = ledger or programme_ledger()
    recorded: dict[str, str] = {}
    for entry in ledger.entries(system_id=BOARD_SYSTEM_ID, kind=KIND):
        for item in (entry.payload.get("files") or {}).values():
            recorded[str(item["file"])] = str(item["sha256"])
    out = {}
    for name, digest in recorded.items():
        path = board_dir() / name
        actual = sha256_of(path, digest)
        problem = None
        if actual is None:
            problem = f"{name} saknas"
        elif actual != digest:
            problem = f"{name} har ändrats efter att den registrerades i liggaren"
        out[name] = (path, problem)
    return out
