"""What a package says that is not a record: agents, agreement, status, date, bounds; checked before a build."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from decommission.errors import PackageError
from decommission.package import mets, xmltext

RECORD_STATUSES = ("TEST", "NEW", "SUPPLEMENT", "REPLACEMENT")
#: default bounds of one package (a delivery is many packages; the plan's partition size decides)
DEFAULT_MAX_PATIENTS = 100_000
DEFAULT_MAX_BYTES = 50 * 2**30


@dataclass(frozen=True)
class PackageContext:
    """Everything a package says that is not a record: agents, agreement, status, date.

    :param region_name: records creator (ARCHIVIST agent); ``region_id`` is its identification code
    :param archive_name: the preservation agent
    :param submitter_name: the submitting organisation (CREATOR agent); ``submitter_id`` its code
    :param agreement_id: the submission agreement (altRecordID SUBMISSIONAGREEMENT)
    :param record_status: one of :data:`RECORD_STATUSES`
    :param created: tz-aware UTC; the only date written anywhere in the package
    :param documentation: files copied into ``documentation/`` (at least one, CSIP60)
    :param profile_version: E-ARK SIP version whose profile URL goes into mets/@PROFILE
    """

    system_id: str
    system_name: str
    region_name: str
    region_id: str
    archive_name: str
    submitter_name: str
    agreement_id: str
    record_status: str
    created: dt.datetime
    documentation: tuple[Path, ...] = ()
    profile_version: str = "2.1.0"
    #: the submitting organisation's identification code (SIP19-20); empty: ``region_id``
    submitter_id: str = ""
    #: the most patients and bytes (of the tar) one package may hold
    max_patients: int = DEFAULT_MAX_PATIENTS
    max_bytes: int = DEFAULT_MAX_BYTES


def check_context(context: PackageContext) -> None:
    created = context.created
    if created.tzinfo is None or created.utcoffset() != dt.timedelta(0):
        raise PackageError("context.created must be a tz-aware UTC datetime")
    if context.profile_version not in mets.SIP_PROFILES:
        raise PackageError(f"profile_version {context.profile_version!r} is not one of {sorted(mets.SIP_PROFILES)}")
    for field in (
        "system_id",
        "system_name",
        "region_name",
        "region_id",
        "archive_name",
        "submitter_name",
        "agreement_id",
        "submitter_id",
    ):
        value = getattr(context, field)
        if (not value and field != "submitter_id") or not xmltext.is_xml_safe(value):
            raise PackageError(f"context.{field} is empty or holds a character XML 1.0 does not allow")
    if not context.documentation:
        raise PackageError("context.documentation is empty: CSIP60 requires at least one documentation file")
    if context.max_patients < 1 or context.max_bytes < 1:
        raise PackageError("context.max_patients and context.max_bytes must be positive")
