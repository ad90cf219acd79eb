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


class SourceWritable(SourceError):
    """The source login could write to the legacy database: a person must give the programme a read-only one."""

    retryable = False


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


class StageFault(DecommissionError):
    """An error this package did not raise on purpose, told without its message (which may quote a value)."""

    retryable = True  # as any unexpected error: Airflow's retries decide


#: the error types whose messages are ours: they name things and faults, never a value
_OWN = DecommissionError


def scrub(exc: BaseException) -> BaseException:
    """``exc`` with nothing in it that may quote a source value: what a task may log and fail with.

    Our own errors keep their message (it names table, column, a keyed hash and the fault) but
    lose the chain of causes, whose messages are the drivers' and libraries' (``invalid input
    syntax for type date: "<the journal text>"``). Any other error becomes a :class:`StageFault`
    naming its type, its SQLSTATE if it has one, and where it was raised (file, line, function),
    never its message.
    """
    if type(exc).__module__.split(".")[0] == "airflow":
        return exc  # Airflow's own control flow (skip, fail, defer) passes as it is
    if isinstance(exc, _OWN):
        exc.__cause__ = None
        exc.__context__ = None
        exc.__suppress_context__ = True
        return exc
    fault = StageFault(f"{_kind(exc)} {_where(exc)}; its message is not shown (it may quote a source value)")
    fault.__suppress_context__ = True
    return fault


def _kind(exc: BaseException) -> str:
    kinds = []
    seen: BaseException | None = exc
    while seen is not None and len(kinds) < 4:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "sqlite_errorname", None)
        kinds.append(f"{type(seen).__name__}{f' ({code})' if code else ''}")
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return " from ".join(kinds)


def _where(exc: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/decommission/" in f.filename.replace("\\", "/")]
    shown = (ours[-3:] if ours else []) + ([frames[-1]] if frames and (not ours or frames[-1] is not ours[-1]) else [])
    return "at " + " < ".join(
        f"{'/'.join(f.filename.replace(chr(92), '/').split('/')[-2:])}:{f.lineno} {f.name}" for f in reversed(shown)
    )
