"""Operators of our own: waiting for the archive's ingest receipts without holding a worker."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from decommission.errors import ArchiveError, DecommissionError


class AwaitIngestOperator(BaseOperator):
    """Defer until the archive has an ingest receipt for every package, then hand them on.

    :param packages: the package task's results (each with ``package_id``)
    :param on_receipts: ``(context, receipts) -> result``; keeps the receipts, fails on rejection
    :param conn_id: the archive connection
    :param wait: how long the archive has to ingest, as agreed in the delivery agreement
    :param poll_interval: seconds between polls in the triggerer
    """

    template_fields: Sequence[str] = ("packages",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        packages: Any,
        on_receipts: Callable[[Any, dict[str, Any]], Any],
        conn_id: str = "r7_archive",
        wait: dt.timedelta = dt.timedelta(hours=24),
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.packages = packages
        self.on_receipts = on_receipts
        self.conn_id = conn_id
        self.wait = wait
        self.poll_interval = poll_interval

    def execute(self, context: Any) -> Any:
        from decommission.deliver.triggers import IngestReceiptTrigger

        ids = sorted(p["package_id"] for p in self.packages)
        deadline = dt.datetime.now(dt.UTC) + self.wait
        self.defer(
            trigger=IngestReceiptTrigger(
                package_ids=ids,
                conn_id=self.conn_id,
                poll_interval=self.poll_interval,
                timeout_at=deadline.isoformat(),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == "timeout":
            raise ArchiveError(
                f"the archive gave no ingest receipt within {self.wait} for: {', '.join(event.get('pending', []))}"
            )
        if status != "done":
            raise ArchiveError(f"waiting for ingest receipts failed: {event.get('message', event)}")
        return self.on_receipts(context, event["receipts"])


@contextlib.contextmanager
def failing_fast() -> Iterator[None]:
    """Let retryable errors through to Airflow's retries; fail the task at once on the others."""
    try:
        yield
    except DecommissionError as exc:
        if exc.retryable:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
