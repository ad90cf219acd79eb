"""Exceptions of the decommission package. Messages name the thing and what is wrong, never patient data."""

from __future__ import annotations


class DecommissionError(Exception):
    """Base class of every error this package raises on purpose."""


class PlanError(DecommissionError):
    """The programme plan file is broken."""


class MappingError(DecommissionError):
    """A mapping spec is broken or does not match the source schema."""


class SourceError(DecommissionError):
    """The legacy source database cannot be read as the mapping expects."""


class PackageError(DecommissionError):
    """A package could not be written or is invalid."""


class ArchiveError(DecommissionError):
    """The archive refused or failed a request."""


class LedgerError(DecommissionError):
    """The evidence ledger is broken or was changed."""
