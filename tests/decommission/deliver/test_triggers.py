"""IngestReceiptTrigger and wait_for_receipts, against a real r7sim whose ingest takes a second."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import tenacity

from decommission.deliver.archive import ArchiveHook
from decommission.deliver.triggers import IngestReceiptTrigger, wait_for_receipts
from decommission.errors import ArchiveError
from tests.r7sim_server import R7SimFactory, R7SimServer, write_fake_package

INGEST_DELAY_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[R7SimServer]:
    with R7SimFactory(tmp_path_factory.mktemp("r7sim")) as factory:
        yield factory.start("--ingest-delay", str(INGEST_DELAY_S), "--reject", "p-rejected")


@pytest.fixture
def hook(server: R7SimServer, monkeypatch: pytest.MonkeyPatch) -> ArchiveHook:
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    return ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(3)})


@pytest.fixture
def submit(hook, tmp_path):
    """Submit fake packages into a fresh delivery; return their ids."""
    counter = iter(range(1_000))

    def _submit(*package_ids: str) -> list[str]:
        delivery_id = f"d-{next(counter)}-{package_ids[0]}"
        hook.open_delivery(delivery_id, "LA-1", "VAS", "TEST")
        for package_id in package_ids:
            path = tmp_path / f"{package_id}.tar"
            hook.submit_package(package_id, path, write_fake_package(path, package_id), delivery_id)
        return list(package_ids)

    return _submit


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def events_of(trigger: IngestReceiptTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


class TestIngestReceiptTriggerSerialize:
    def test_round_trip(self):
        trigger = IngestReceiptTrigger(["p-1", "p-2"], "r7_archive", 5, "2030-01-01T00:00:00+00:00")
        classpath, kwargs = trigger.serialize()
        assert classpath == "decommission.deliver.triggers.IngestReceiptTrigger"
        assert kwargs == {
            "package_ids": ["p-1", "p-2"],
            "conn_id": "r7_archive",
            "poll_interval": 5.0,
            "timeout_at": "2030-01-01T00:00:00+00:00",
        }
        assert json.loads(json.dumps(kwargs)) == kwargs  # primitives only
        module_name, class_name = classpath.rsplit(".", 1)
        rebuilt = getattr(importlib.import_module(module_name), class_name)(**kwargs)
        assert rebuilt.serialize() == (classpath, kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            pytest.param({"package_ids": []}, "package_ids must be a non-empty list", id="no-packages"),
            pytest.param({"poll_interval": 0}, "poll_interval must be positive", id="zero-interval"),
            pytest.param({"timeout_at": "tomorrow"}, "timeout_at must be an ISO 8601", id="bad-deadline"),
        ],
    )
    def test_bad_arguments_raise(self, kwargs, message):
        arguments = {"package_ids": ["p-1"], "conn_id": "r7_archive", "poll_interval": 1, "timeout_at": in_seconds(9)}
        with pytest.raises(ValueError, match=message):
            IngestReceiptTrigger(**{**arguments, **kwargs})


class TestIngestReceiptTriggerRun:
    def test_done_when_no_receipt_is_pending(self, hook, submit):
        package_ids = submit("p-done-1", "p-rejected")
        assert hook.ingest_receipt("p-done-1")["status"] == "pending"
        trigger = IngestReceiptTrigger(package_ids, "r7_archive", 0.2, in_seconds(20))

        events = events_of(trigger)

        assert [e["status"] for e in events] == ["done"]
        receipts = events[0]["receipts"]
        assert list(receipts) == package_ids
        assert all(r["receipt_type"] == "ingest" and r["status"] in {"accepted", "rejected"} for r in receipts.values())
        assert "R7SIM-REJECT" in [r["requirement"] for r in receipts["p-rejected"]["reasons"]]

    def test_timeout_names_the_pending_packages(self, submit):
        package_ids = submit("p-slow")
        events = events_of(IngestReceiptTrigger(package_ids, "r7_archive", 0.1, in_seconds(0.3)))
        assert [(e["status"], e["pending"]) for e in events] == [("timeout", ["p-slow"])]

    def test_unknown_package_is_an_error(self, hook):
        events = events_of(IngestReceiptTrigger(["p-unknown"], "r7_archive", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"]
        assert "HTTP 404" in events[0]["message"] and "p-unknown" in events[0]["message"]

    def test_missing_connection_is_an_error(self, monkeypatch):
        monkeypatch.delenv("AIRFLOW_CONN_R7_NOWHERE", raising=False)
        events = events_of(IngestReceiptTrigger(["p-1"], "r7_nowhere", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"]
        assert "r7_nowhere" in events[0]["message"]


class TestWaitForReceipts:
    def test_returns_final_receipts_in_order(self, hook, submit):
        package_ids = submit("p-wait-2", "p-wait-1")
        receipts = wait_for_receipts(hook, package_ids, timeout_s=20, poll_s=0.1)
        assert list(receipts) == package_ids
        assert {r["status"] for r in receipts.values()} <= {"accepted", "rejected"}

    def test_timeout_raises_naming_the_pending(self, hook, submit):
        package_ids = submit("p-wait-slow")
        with pytest.raises(ArchiveError, match="1 of 1 ingest receipts still pending after 0.2 s: p-wait-slow"):
            wait_for_receipts(hook, package_ids, timeout_s=0.2, poll_s=0.05)
