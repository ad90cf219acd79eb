"""Fixtures of the integration tests: a real r7sim process per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.r7sim_server import R7SimFactory, R7SimServer


@pytest.fixture
def r7sim_factory(tmp_path: Path) -> Iterator[R7SimFactory]:
    """Start r7sim processes with any settings (``factory.start("--error-rate", "0.5")``); all stop after."""
    with R7SimFactory(tmp_path / "r7sim") as factory:
        yield factory


@pytest.fixture
def r7sim(r7sim_factory: R7SimFactory, monkeypatch: pytest.MonkeyPatch) -> R7SimServer:
    """A well-behaved r7sim, set as the ``r7_archive`` connection (``AIRFLOW_CONN_R7_ARCHIVE``)."""
    server = r7sim_factory.start()
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    return server


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Two real TEST packages from the packager (decommission.package.sip), the same four patients in each."""
    fixtures = pytest.importorskip("tests.decommission.fixtures", reason="the packager's test fixtures are missing")
    from decommission.package.sip import build_package

    base = tmp_path_factory.mktemp("packages")
    mapped = fixtures.write_mapped(base / "mapped")
    context = fixtures.make_context(base / "documentation", record_status="TEST")
    return [build_package(mapped=mapped, context=context, partition_id=str(n), out_dir=base / "out") for n in (1, 2)]


@pytest.fixture
def validator() -> None:
    """Skip until the project's validator exists: r7sim must not accept what it did not validate."""
    pytest.importorskip("decommission.validate.validator", reason="plugins/decommission/validate.py is not there yet")
