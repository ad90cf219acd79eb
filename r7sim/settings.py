"""How r7sim behaves: a well-behaved archive by default, faults on request (for tests and demos)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: the settings that hold package ids
SETS = (
    "reject",
    "drop_upload_once",
    "store_empty",
    "store_flip_record",
    "store_flip_mets",
    "receipt_other_sha256",
    "hide_holdings",
)


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

    def __post_init__(self) -> None:
        for name in ("error_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("latency", "ingest_delay", "stall_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.approval not in ("", "false", "other_delivery", "partial"):
            raise ValueError(f"approval must be one of false, other_delivery, partial; got {self.approval!r}")
        for name in SETS:
            object.__setattr__(self, name, frozenset(getattr(self, name)))
