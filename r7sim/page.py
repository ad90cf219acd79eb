"""r7sim's page for people: says it is a stand-in, not R7, and lists deliveries and holdings."""

from __future__ import annotations

import html
import json
from typing import Any

from r7sim.settings import Settings
from r7sim.store import now_iso

BANNER = "r7sim — a local stand-in for R7 e-Arkiv, not R7"


def index_html(deliveries: list[dict[str, Any]], settings: Settings) -> str:
    """Return the home page: the stand-in banner, the settings and every delivery with its packages."""
    rows = []
    for d in deliveries:
        approval = d["approval"]
        approved = (
            f"approved by {html.escape(approval['approved_by'])} at {html.escape(approval['approved_at'])}"
            if approval
            else "not approved"
        )
        rows.append(
            f"<h2>Delivery {html.escape(d['delivery_id'])}</h2>"
            f"<p>agreement {html.escape(d['agreement_id'])}, system {html.escape(d['system_id'])}, "
            f"record status {html.escape(d['record_status'])}, state {html.escape(d['state'])}, {approved}</p>"
        )
        if d["packages"]:
            cells = "".join(
                f"<tr><td>{html.escape(p['package_id'])}</td><td>{p['size']}</td>"
                f"<td><code>{p['sha256']}</code></td><td>{html.escape(p['status'])}</td>"
                f"<td>{html.escape(json.dumps(p['counts']))}</td></tr>"
                for p in d["packages"]
            )
            rows.append(
                "<table><tr><th>package</th><th>bytes</th><th>SHA-256</th><th>status</th><th>counts</th></tr>"
                f"{cells}</table>"
            )
    body = "".join(rows) or "<p>No deliveries yet.</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>r7sim</title></head><body>"
        f"<h1>{html.escape(BANNER)}</h1>"
        "<p>This server only simulates an archive for development and tests. Nothing delivered here "
        "is archived in R7 e-Arkiv.</p>"
        f"<p>Settings: <code>{html.escape(str(settings))}</code></p>"
        f"<p>Generated {now_iso()}.</p>{body}</body></html>"
    )
