"""Exceptions of the decommission package. Messages name the thing and what is wrong, never patient data."""

from __future__ import annotations


class DecommissionError(Exception):
    """Base class of every error this package raises on purpose.

    ``retryable`` says whether trying again can help: a broken plan or mapping needs a
    person, a database or archive that did not answer may be back in a minute.
    """

    retryable = False


class PlanError(DecommissionError):
    """The programme plan file is broken."""


class MappingError(DecommissionError):
    """A mapping spec is broken or does not match the source schema."""


class SourceError(DecommissionError):
    """The legacy source database cannot be reached or read."""

    retryable = True


class PackageError(DecommissionError):
    """A package could not be written or is invalid."""


class ArchiveError(DecommissionError):
    """The archive failed a request (retryable) or refused it (see the subclasses)."""

    retryable = True


class ArchiveRefusal(ArchiveError):
    """The archive refused: a rejected package, a conflicting id, a missing approval."""

    retryable = False


class LedgerError(DecommissionError):
    """The evidence ledger is broken or was changed."""
