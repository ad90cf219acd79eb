"""Shared test set-up: paths, and Airflow configured (in a temporary home) before it is imported."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="decommission-test-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}")
os.environ.setdefault("DECOMMISSION_HOME", str(_AIRFLOW_HOME / "out"))
os.environ.setdefault("DECOMMISSION_ALLOW_DEMO_KEY", "1")  # the tests' hashes use the public demo key
# the demo's users (the plan's respondents, an operator who is none of them, an admin)
_PASSWORDS = _AIRFLOW_HOME / "passwords.json"
_PASSWORDS.write_text('{"admin": "admin", "verksamhetschef": "user", "regionarkivarie": "user", "operator": "user"}')
os.environ.setdefault(
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,verksamhetschef:user,regionarkivarie:user,operator:user"
)
os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(_PASSWORDS))


import pytest  # noqa: E402

PG_DSN = os.environ.get("DECOMMISSION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The PostgreSQL the integration tests use; a clear skip message when none answers."""
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except Exception as exc:  # noqa: BLE001
        pytest.skip(
            f"PostgreSQL at {PG_DSN} does not answer ({type(exc).__name__}). Start one (see README: "
            "'PostgreSQL for the tests') or set DECOMMISSION_TEST_PG to a reachable URL."
        )
    return PG_DSN
