"""The validator's bounds: the size of a file, the size of an XML document, a time budget per package.

Packages come from outside too (read back from the archive, made by other tools): whatever
their bytes, validation must end with a verdict, in bounded time and memory. Memory is bounded
by how the validator reads (streamed XML, files hashed a chunk at a time, per-file state on
disk), time by :class:`Budget`, which every loop that reads or hashes consults.

Defaults (:class:`Limits`), each settable per call or by environment (:meth:`Limits.from_env`):

* ``max_member_bytes`` (``DECOMMISSION_VALIDATE_MAX_MEMBER_BYTES``), 50 GiB: a file larger
  than the largest package we build (``DECOMMISSION_PACKAGE_MAX_BYTES``) makes the package
  invalid before anything is read;
* ``max_xml_bytes`` (``DECOMMISSION_VALIDATE_MAX_XML_BYTES``), 4 GiB: an XML document the
  validator parses (METS, PREMIS, the manifest, record files) that is larger is not parsed
  (a finding); PREMIS for 2.5 million files is about that size;
* ``seconds`` (``DECOMMISSION_VALIDATE_SECONDS``), 3 600: past the budget validation stops
  with a finding (a 100 000-file package takes under a minute here);
* ``max_findings``, 10 000: findings kept in the report; the rest are counted in one more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

GIB = 1 << 30

#: the environment variable of each settable limit
ENVIRONMENT = {
    "max_member_bytes": "DECOMMISSION_VALIDATE_MAX_MEMBER_BYTES",
    "max_xml_bytes": "DECOMMISSION_VALIDATE_MAX_XML_BYTES",
    "seconds": "DECOMMISSION_VALIDATE_SECONDS",
}


@dataclass(frozen=True)
class Limits:
    """How much one package may cost the validator (see the module's text for the defaults)."""

    max_member_bytes: int = 50 * GIB
    max_xml_bytes: int = 4 * GIB
    seconds: float = 3600.0
    max_findings: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_member_bytes", "max_xml_bytes", "seconds", "max_findings"):
            if not getattr(self, name) > 0:
                raise ValueError(f"validator limit {name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The defaults, with any limit the environment sets (a wrong value raises ValueError)."""
        values: dict[str, float | int] = {}
        for name, variable in ENVIRONMENT.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                values[name] = float(text) if name == "seconds" else int(text)
            except ValueError:
                raise ValueError(f"{variable} must be a number, got {text!r}") from None
        return cls(**values)


class Stop(Exception):  # noqa: N818 (not an error of the validator: the package's last finding)
    """Validation cannot go on (an unreadable container, a limit reached); the reason is a finding."""

    def __init__(self, requirement: str, path: str, message: str) -> None:
        super().__init__(message)
        self.requirement, self.path, self.message = requirement, path, message


class Budget:
    """The time one package may take; :meth:`check` raises :class:`Stop` once it is spent."""

    __slots__ = ("_deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._deadline:
            raise Stop("LIMIT", "", f"validation took longer than its budget of {self.seconds:g} s and was stopped")
