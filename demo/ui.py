"""Open the demo region in the Airflow UI: ``make ui`` (after ``make demo``).

Starts Airflow's api-server on the demo's home (``out/demo/airflow``), so the DAGs, the runs, the
sign-offs and the programme overview of the last ``make demo`` are there to look at.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from decommission import embedded  # noqa: E402 - the path above must come first


def how_to_open(port: int) -> str:
    """What to tell the person who ran the demo."""
    users = ", ".join(f"{u} / {p}" for u, p in embedded.USERS.items())
    return (
        f"Programme overview: http://127.0.0.1:{port}/plugin/programoversikt (in the Airflow UI; "
        f"on its own: http://127.0.0.1:{port}/decommission/)\n"
        f"  start the UI with `make ui`; log in as one of the demo's users (user / password): {users}\n"
        "  verksamhetschef is the information owner, regionarkivarie the archivist, operator runs the DAGs"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if not (out / "airflow" / "airflow.db").exists():
        print(f"No demo in {out}: run `make demo` first.")
        return 1
    sources = {s: str(out / "sources" / f"{s}.sqlite") for s in ("vas", "lab", "anestesi")}
    embedded.configure(home=out, airflow_home=out / "airflow", sources=sources, archive_port=1)
    airflow = Path(sys.executable).parent / "airflow"
    # the DAGs' docs say what the evidence folder holds now (a system decommissioned by the demo says so)
    subprocess.run([str(airflow), "dags", "reserialize"], check=True, stdout=subprocess.DEVNULL)
    print(how_to_open(args.port), flush=True)
    os.execv(airflow, [str(airflow), "api-server", "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
