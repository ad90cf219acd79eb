"""The overview page: the programme view rendered with its template (self-contained HTML, no script)."""

from __future__ import annotations

from collections.abc import Collection

from jinja2 import Environment, FileSystemLoader, select_autoescape

from decommission.overview.charts import gantt, money_chart
from decommission.overview.state import ProgrammeState
from decommission.overview.view import programme_view
from decommission.settings import REPO

TEMPLATES = REPO / "include" / "templates"


def render_overview(state: ProgrammeState, language: str = "sv", *, visible: Collection[str] | None = None) -> str:
    """The page for one user: only the systems whose DAGs they may read."""
    view = programme_view(state, language, visible)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    shown = [s for s in state.systems if visible is None or s.system.id in visible]
    return env.get_template("overview.html.j2").render(
        **view,
        board=state.board_reports[-1] if state.board_reports else None,
        timeline=gantt(shown, state.today, language),
        money=money_chart(state.economics, language) if state.economics else "",
    )
