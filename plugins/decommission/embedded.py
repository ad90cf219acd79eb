"""The embedded set-up used by ``make demo`` and the tests: Airflow on SQLite, local outputs.

Everything is environment variables, set before Airflow is imported, so the same code
runs unchanged under docker-compose, where the environment comes from the compose file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from decommission.settings import REPO

#: demo users: the plan's respondents, an operator who is not a respondent, and an admin
USERS = {"admin": "admin", "verksamhetschef": "user", "regionarkivarie": "user", "operator": "user"}
#: r7sim's demo submitter account (r7sim/auth.py DEMO_SUBMITTER; a test keeps the two the same)
DEMO_ARCHIVE_LOGIN = ("submitter", "r7sim-submitter-demo")


def demo_archive_connection(port: int) -> str:
    """Connection JSON for the demo's r7sim on 127.0.0.1: its demo submitter, over plain http, said so."""
    login, password = DEMO_ARCHIVE_LOGIN
    return json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "http",
            "login": login,
            "password": password,
            # a local stand-in without TLS: the client refuses credentials over http without this
            "extra": {"timeout": 30, "allow_insecure_http": True},
        }
    )


def source_connection(target: str, schema: str | None, attach: dict[str, str] | None = None) -> str:
    """Connection JSON for a demo source: a SQLite file path or a postgresql:// URL.

    :param attach: SQLite: the system's other schemas, schema name -> database file (attached read-only)
    """
    if target.startswith("postgres"):
        from urllib.parse import urlsplit

        url = urlsplit(target)
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": url.hostname or "127.0.0.1",
                "port": url.port or 5432,
                "login": url.username or "postgres",
                "password": url.password or "",
                "schema": url.path.lstrip("/") or "postgres",
            }
        )
    conn: dict = {"conn_type": "sqlite", "host": str(Path(target).resolve())}
    if attach:
        conn["extra"] = {"attach": {name: str(Path(path).resolve()) for name, path in sorted(attach.items())}}
    return json.dumps(conn)


def configure(
    *,
    home: Path,
    airflow_home: Path,
    sources: dict[str, str],
    archive_port: int,
    archive_conn: str | None = None,
    attached: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """Set (and return) the environment for an embedded run; call before importing Airflow.

    :param sources: system id -> SQLite path or postgresql:// URL of its demo database
    :param attached: system id -> its other schemas' SQLite files (schema name -> file), see :func:`source_connection`
    :param archive_conn: the archive connection's JSON; r7sim's demo account on ``archive_port`` if not given
    """
    home.mkdir(parents=True, exist_ok=True)
    airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = airflow_home / "passwords.json"
    passwords.write_text(json.dumps(USERS), encoding="utf-8")
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW_CONN_R7_ARCHIVE": archive_conn or demo_archive_connection(archive_port),
        "AIRFLOW_CONN_PROGRAMME_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(home / "ledger.sqlite")}),
        "DECOMMISSION_HOME": str(home),
        # the demo runs on the public demo hash key, and every report it writes says so
        "DECOMMISSION_ALLOW_DEMO_KEY": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for system_id, target in sources.items():
        env[f"AIRFLOW_CONN_LEGACY_{system_id.upper()}"] = source_connection(
            target, system_id, (attached or {}).get(system_id)
        )
    os.environ.update(env)
    return env
