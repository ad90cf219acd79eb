"""How r7sim behaves: a well-behaved archive by default, faults on request (for tests and demos)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: the settings that hold package ids (or, for drip and redirect, operations; for malformed, KIND:OPERATION)
SETS = (
    "reject",
    "drop_upload_once",
    "store_empty",
    "store_flip_record",
    "store_flip_mets",
    "receipt_other_sha256",
    "hide_holdings",
    "no_progress",
    "false_offset_once",
    "drip",
    "redirect",
    "malformed",
)
_PACKAGE = r"/api/v1/packages/[^/]+"
_DELIVERY = r"/api/v1/deliveries/[^/]+"
#: the protocol's operations by name: (methods, path pattern); the faults that pick requests name these
OPERATIONS: dict[str, tuple[frozenset[str], str]] = {
    "open_delivery": (frozenset({"PUT"}), _DELIVERY),
    "delivery": (frozenset({"GET", "HEAD"}), _DELIVERY),
    "approval": (frozenset({"POST"}), f"{_DELIVERY}/approval"),
    "open_upload": (frozenset({"PUT"}), f"{_PACKAGE}/upload"),
    "upload_status": (frozenset({"GET", "HEAD"}), f"{_PACKAGE}/upload"),
    "chunk": (frozenset({"PATCH"}), f"{_PACKAGE}/upload"),
    "complete": (frozenset({"POST"}), f"{_PACKAGE}/upload/complete"),
    "receipt": (frozenset({"GET"}), f"{_PACKAGE}/receipt"),
    "package": (frozenset({"GET", "HEAD"}), _PACKAGE),
    "record": (frozenset({"GET"}), f"{_PACKAGE}/records/[^/]+"),
}
#: how a malformed 200 answer is broken: an HTML error page, the JSON cut in half, an upload document without offset
MALFORMED_KINDS = ("html", "cut_json", "no_offset")


@dataclass(frozen=True)
class Settings:
    """r7sim's behaviour; the fault settings let clients be tested against a misbehaving archive.

    :param error_rate: fraction of API requests answered 500 (drawn from ``seed``)
    :param stall_rate: fraction of API requests held ``stall_seconds`` before they are handled, so
        a client with a shorter timeout gives up while the archive still does the work
    :param stall_seconds: how long a stalled request is held
    :param latency: seconds added to every API request
    :param ingest_delay: seconds between arrival and ingest, during which the receipt is "pending"
    :param reject: package ids to reject at ingest, whatever their content
    :param drop_upload_once: package ids whose upload has its connection dropped once, halfway
        through a chunk that is not the first (the first, when the package is one chunk)
    :param seed: seed of the fault draws, so a run can be repeated
    :param auto_approve_test: approve a TEST delivery once all its packages are accepted
    :param store_empty, store_flip_record, store_flip_mets, receipt_other_sha256, hide_holdings, approval:
        an archive that damages what it stores or answers untruly (see :mod:`r7sim.misbehave`)
    :param no_progress: package ids whose chunks are answered 200 without being kept (the offset never moves)
    :param false_offset_once: package ids whose first chunk is kept but answered with the package's size as
        ``offset`` ("all bytes received"), once per data dir: completing then finds bytes missing
    :param drip: operations (:data:`OPERATIONS`) whose answers are sent one byte every ``drip_seconds``
    :param drip_seconds: the pause between two dripped bytes
    :param redirect: operations answered ``302`` to ``redirect_to`` (another origin) instead of being handled
    :param redirect_to: the origin redirects point to (the path is kept)
    :param busy: how many API requests, the first ones, are answered ``busy_status`` with ``Retry-After``
    :param busy_status: 429 (too many requests) or 503 (unavailable)
    :param retry_after: the ``Retry-After`` value of a busy answer: seconds or an HTTP date
    :param malformed: ``KIND:OPERATION`` pairs: that operation's 2xx answers are handled, then broken as
        KIND says (:data:`MALFORMED_KINDS`)
    """

    error_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 0.0
    latency: float = 0.0
    ingest_delay: float = 0.0
    reject: frozenset[str] = field(default_factory=frozenset)
    drop_upload_once: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0
    auto_approve_test: bool = True
    store_empty: frozenset[str] = field(default_factory=frozenset)
    store_flip_record: frozenset[str] = field(default_factory=frozenset)
    store_flip_mets: frozenset[str] = field(default_factory=frozenset)
    receipt_other_sha256: frozenset[str] = field(default_factory=frozenset)
    hide_holdings: frozenset[str] = field(default_factory=frozenset)
    approval: str = ""
    no_progress: frozenset[str] = field(default_factory=frozenset)
    false_offset_once: frozenset[str] = field(default_factory=frozenset)
    drip: frozenset[str] = field(default_factory=frozenset)
    drip_seconds: float = 0.05
    redirect: frozenset[str] = field(default_factory=frozenset)
    redirect_to: str = "http://127.0.0.1:9"
    busy: int = 0
    busy_status: int = 429
    retry_after: str = "1"
    malformed: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("error_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("latency", "ingest_delay", "stall_seconds", "drip_seconds", "busy"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.approval not in ("", "false", "other_delivery", "partial"):
            raise ValueError(f"approval must be one of false, other_delivery, partial; got {self.approval!r}")
        if self.busy_status not in (429, 503):
            raise ValueError(f"busy_status must be 429 or 503, got {self.busy_status}")
        for name in SETS:
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        unknown = sorted((self.drip | self.redirect) - OPERATIONS.keys())
        if unknown:
            raise ValueError(f"unknown operations {', '.join(unknown)}; known: {', '.join(OPERATIONS)}")
        for pair in self.malformed:
            kind, _, operation = pair.partition(":")
            if kind not in MALFORMED_KINDS or operation not in OPERATIONS:
                raise ValueError(
                    f"malformed takes KIND:OPERATION with KIND one of {', '.join(MALFORMED_KINDS)} and OPERATION "
                    f"one of {', '.join(OPERATIONS)}; got {pair!r}"
                )
