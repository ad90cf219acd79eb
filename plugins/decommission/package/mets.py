"""METS documents of a package (E-ARK CSIP/SIP 2.1.0, CITS eHealth1 2.0.1) and their local schemas.

The representation METS lists every data file and grows with the package, so it is streamed
one patient at a time as text (each value escaped by :mod:`decommission.package.xmltext`); its eHealth1
structural map goes to a spool file meanwhile and is appended on close, so memory stays flat.
Validation loads the METS, xlink and DILCIS extension schemas from ``schemas/`` through a
resolver: nothing is ever fetched.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO

from lxml import etree

from decommission.package import xmltext
from decommission.package.records import SCHEMA_DIR, format_value

if TYPE_CHECKING:
    from collections.abc import Sequence

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
CSIP_NS = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
SIP_NS = "https://DILCIS.eu/XML/METS/SIPExtensionMETS"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"mets": METS_NS, "xlink": XLINK_NS, "csip": CSIP_NS, "sip": SIP_NS, "xsi": XSI_NS}

#: namespace -> canonical schema URL, as written in xsi:schemaLocation
SCHEMA_URLS = {
    METS_NS: "http://www.loc.gov/standards/mets/mets.xsd",
    XLINK_NS: "http://www.loc.gov/standards/mets/xlink.xsd",
    CSIP_NS: "https://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd",
    SIP_NS: "https://earksip.dilcis.eu/schema/DILCISExtensionSIPMETS.xsd",
}
#: every URL a METS document or schema may use for a schema -> the local file in schemas/
LOCAL_SCHEMAS = {
    "http://www.loc.gov/standards/mets/mets.xsd": "mets.xsd",
    "https://www.loc.gov/standards/mets/mets.xsd": "mets.xsd",
    "http://www.loc.gov/standards/xlink/xlink.xsd": "xlink.xsd",
    "http://www.loc.gov/standards/mets/xlink.xsd": "xlink.xsd",
    "https://www.loc.gov/standards/mets/xlink.xsd": "xlink.xsd",
    "https://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd": "DILCISExtensionMETS.xsd",
    "http://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd": "DILCISExtensionMETS.xsd",
    "https://earksip.dilcis.eu/schema/DILCISExtensionSIPMETS.xsd": "DILCISExtensionSIPMETS.xsd",
    "http://earksip.dilcis.eu/schema/DILCISExtensionSIPMETS.xsd": "DILCISExtensionSIPMETS.xsd",
}
#: E-ARK SIP profile URL per specification version (root mets/@PROFILE, SIP2). eHealth1 EHR1 wants
#: its own root profile URL there instead; SIP2 (and eark-validator) want this one; we follow SIP2.
SIP_PROFILES = {
    "2.1.0": "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml",
    "2.2.0": "https://earksip.dilcis.eu/profile/E-ARK-SIP-v2-2-0.xml",
}
#: eHealth1 representation METS profile (EH2)
EHEALTH1_REPRESENTATION_PROFILE = "https://citsehealth1.dilcis.eu/profile/E-ARK-eHealth1-REPRESENTATION.xml"
#: mets/@TYPE per CSIP version (CSIP2, EHR2; docs/packaging.md): the CSIP 2.1.0 vocabulary and its
#: Schematron spell the category "Other"; eHealth1 2.0.1, written against CSIP 2.2, says "OTHER"
#: (DILCISBoard/E-ARK-CSIP#722). Either way csip:OTHERTYPE names the category (CSIP3, EHR3).
CONTENT_CATEGORY = {"2.1.0": "Other", "2.2.0": "OTHER"}
OTHER_CONTENT_CATEGORY = "Patient Medical Records"  # EHR3
#: eHealth1 2.0.1 (EHR4, EHR22, EH5, EH17). The CSIP 2.1.0 vocabulary and extension schema list
#: only citsehpj_v1_0, so CSIP4/CSIP5 apply: CONTENTINFORMATIONTYPE="OTHER" and the value goes to
#: csip:OTHERCONTENTINFORMATIONTYPE (docs/packaging.md).
CONTENT_INFORMATION_TYPE = "citsehpj_v2_0"
OTHER = "OTHER"
SOFTWARE_NAME = "decommission"
REPRESENTATION = "rep1"
#: the raw representation (CITS SIARD): the source rows in one SIARD 2.2 file
RAW_REPRESENTATION = "rep2"
SIARD_CONTENT_TYPE = "SIARD2"
SIARD_CATEGORY = "Databases"
SIARD_REPRESENTATION_PROFILE = "https://citssiard.dilcis.eu/profile/E-ARK-SIARD-REPRESENTATION.xml"
CHECKSUM_TYPE = "SHA-256"


def _attrs(attrib: dict[str, str]) -> str:
    return "".join(f' {name}="{xmltext.attr(value)}"' for name, value in attrib.items())


def _leaf(depth: int, tag: str, attrib: dict[str, str] | None = None, text: str | None = None) -> str:
    pad = "  " * depth
    if text is None:
        return f"\n{pad}<{tag}{_attrs(attrib or {})}/>"
    return f"\n{pad}<{tag}{_attrs(attrib or {})}>{xmltext.text(text)}</{tag}>"


def _open(depth: int, tag: str, attrib: dict[str, str] | None = None) -> str:
    return f"\n{'  ' * depth}<{tag}{_attrs(attrib or {})}>"


def _close(depth: int, tag: str) -> str:
    return f"\n{'  ' * depth}</{tag}>"


@dataclass(frozen=True)
class FileEntry:
    """A file a METS document references (href relative to the METS document's folder)."""

    file_id: str
    href: str
    mimetype: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Header:
    """What metsHdr says: dates, status, agreement and the agents (CSIP10-16, SIP9-31)."""

    created: dt.datetime
    record_status: str
    agreement_id: str
    software_version: str
    archivist_name: str
    archivist_code: str
    submitter_name: str
    submitter_code: str
    preservation_name: str
    #: the E-ARK CSIP/SIP version the package follows (decides mets/@TYPE, see CONTENT_CATEGORY)
    profile_version: str = "2.1.0"


_NAMESPACES = "".join(f' xmlns:{prefix}="{ns}"' for prefix, ns in NSMAP.items())


def _root(objid: str, profile: str, label: str | None, version: str) -> str:
    attrib = {
        "OBJID": objid,
        "TYPE": CONTENT_CATEGORY[version],
        "csip:OTHERTYPE": OTHER_CONTENT_CATEGORY,
        "csip:CONTENTINFORMATIONTYPE": OTHER,
        "csip:OTHERCONTENTINFORMATIONTYPE": CONTENT_INFORMATION_TYPE,
        "PROFILE": profile,
    }
    if label:
        attrib["LABEL"] = label
    attrib["xsi:schemaLocation"] = " ".join(f"{ns} {url}" for ns, url in SCHEMA_URLS.items())
    return f"<?xml version='1.0' encoding='UTF-8'?>\n<mets:mets{_NAMESPACES}{_attrs(attrib)}>"


def _agent(attrib: dict[str, str], name: str, note: tuple[str, str] | None) -> str:
    out = _open(2, "mets:agent", attrib) + _leaf(3, "mets:name", None, name)
    if note is not None:
        out += _leaf(3, "mets:note", {"csip:NOTETYPE": note[0]}, note[1])
    return out + _close(2, "mets:agent")


def _header(header: Header) -> str:
    created = format_value(header.created) or ""
    attrib = {
        "CREATEDATE": created,
        "LASTMODDATE": created,
        "RECORDSTATUS": header.record_status,
        "csip:OAISPACKAGETYPE": "SIP",
    }
    return "".join(
        (
            _open(1, "mets:metsHdr", attrib),
            _agent(
                {"ROLE": "CREATOR", "TYPE": "OTHER", "OTHERTYPE": "SOFTWARE"},
                SOFTWARE_NAME,
                ("SOFTWARE VERSION", header.software_version),
            ),
            _agent(
                {"ROLE": "ARCHIVIST", "TYPE": "ORGANIZATION"},
                header.archivist_name,
                ("IDENTIFICATIONCODE", header.archivist_code),
            ),
            # the submitting organisation (SIP15-20); its note also keeps eark-validator's CSIP15 quiet
            _agent(
                {"ROLE": "CREATOR", "TYPE": "ORGANIZATION"},
                header.submitter_name,
                ("IDENTIFICATIONCODE", header.submitter_code),
            ),
            _agent({"ROLE": "PRESERVATION", "TYPE": "ORGANIZATION"}, header.preservation_name, None),
            _leaf(2, "mets:altRecordID", {"TYPE": "SUBMISSIONAGREEMENT"}, header.agreement_id),
            _close(1, "mets:metsHdr"),
        )
    )


def _file_attrib(entry: FileEntry, created: str) -> dict[str, str]:
    return {
        "MIMETYPE": entry.mimetype,
        "SIZE": str(entry.size),
        "CREATED": created,
        "CHECKSUM": entry.sha256,
        "CHECKSUMTYPE": CHECKSUM_TYPE,
    }


def _link(href: str) -> dict[str, str]:
    return {"LOCTYPE": "URL", "xlink:type": "simple", "xlink:href": href}


def _file(depth: int, entry: FileEntry, created: str) -> str:
    # one per data file: written directly; ids, sizes, digests and dates need no escaping
    pad = "  " * depth
    return (
        f'\n{pad}<mets:file ID="{entry.file_id}" MIMETYPE="{xmltext.attr(entry.mimetype)}" SIZE="{entry.size}"'
        f' CREATED="{created}" CHECKSUM="{entry.sha256}" CHECKSUMTYPE="{CHECKSUM_TYPE}">'
        f'\n{pad}  <mets:FLocat LOCTYPE="URL" xlink:type="simple" xlink:href="{xmltext.attr(entry.href)}"/>'
        f"\n{pad}</mets:file>"
    )


def _group_attrib(group_id: str, use: str) -> dict[str, str]:
    return {
        "ID": group_id,
        "USE": use,
        "csip:CONTENTINFORMATIONTYPE": OTHER,
        "csip:OTHERCONTENTINFORMATIONTYPE": CONTENT_INFORMATION_TYPE,
    }


def write_root_mets(
    stream: BinaryIO,
    *,
    objid: str,
    profile: str,
    label: str,
    header: Header,
    manifest: FileEntry,
    premis: FileEntry,
    documentation: Sequence[FileEntry],
    schemas: Sequence[FileEntry],
    representation: FileEntry,
    raw: FileEntry | None = None,
) -> None:
    """Write the package (root) METS document.

    :param objid: the package id, also the package's root folder name (CSIP1)
    :param profile: the SIP profile URL (CSIP6, SIP2)
    :param manifest: the patient manifest in metadata/descriptive (dmdSec, EHR12)
    :param premis: the PREMIS file in metadata/preservation (amdSec/digiprovMD)
    :param representation: the representation METS (fileGrp Representations/rep1)
    :param raw: the raw representation's METS (fileGrp Representations/rep2, SIARD2), if any
    """
    created = format_value(header.created) or ""
    rep_group = f"grp-{REPRESENTATION}"
    out = [
        _root(objid, profile, label, header.profile_version),
        _header(header),
        _open(1, "mets:dmdSec", {"ID": "dmd-patients", "CREATED": created, "STATUS": "CURRENT"}),
        _leaf(
            2,
            "mets:mdRef",
            {
                **_link(manifest.href),
                "MDTYPE": "OTHER",
                "OTHERMDTYPE": "PatientManifest",
                **_file_attrib(manifest, created),
            },
        ),
        _close(1, "mets:dmdSec"),
        _open(1, "mets:amdSec"),
        _open(2, "mets:digiprovMD", {"ID": "digiprov-premis", "STATUS": "CURRENT"}),
        _leaf(3, "mets:mdRef", {**_link(premis.href), "MDTYPE": "PREMIS", **_file_attrib(premis, created)}),
        _close(2, "mets:digiprovMD"),
        _close(1, "mets:amdSec"),
        _open(1, "mets:fileSec", {"ID": "filesec"}),
    ]
    groups = [
        ("grp-documentation", {"ID": "grp-documentation", "USE": "Documentation"}, documentation),
        ("grp-schemas", {"ID": "grp-schemas", "USE": "Schemas"}, schemas),
        (rep_group, _group_attrib(rep_group, f"Representations/{REPRESENTATION}"), [representation]),
    ]
    raw_group = f"grp-{RAW_REPRESENTATION}"
    if raw is not None:
        attrib = {
            "ID": raw_group,
            "USE": f"Representations/{RAW_REPRESENTATION}",
            "csip:CONTENTINFORMATIONTYPE": SIARD_CONTENT_TYPE,
        }
        groups.append((raw_group, attrib, [raw]))
    for _group_id, attrib, entries in groups:
        out.append(_open(2, "mets:fileGrp", attrib))
        out += [_file(3, entry, created) for entry in entries]
        out.append(_close(2, "mets:fileGrp"))
    out += [
        _close(1, "mets:fileSec"),
        _open(1, "mets:structMap", {"ID": "structmap-csip", "TYPE": "PHYSICAL", "LABEL": "CSIP"}),
        _open(2, "mets:div", {"ID": "div-package", "LABEL": objid}),
        _leaf(
            3,
            "mets:div",
            {"ID": "div-metadata", "LABEL": "Metadata", "DMDID": "dmd-patients", "ADMID": "digiprov-premis"},
        ),
    ]
    for div_id, div_label, group_id in (
        ("div-documentation", "Documentation", "grp-documentation"),
        ("div-schemas", "Schemas", "grp-schemas"),
    ):
        out += [_open(3, "mets:div", {"ID": div_id, "LABEL": div_label}), _leaf(4, "mets:fptr", {"FILEID": group_id})]
        out.append(_close(3, "mets:div"))
    # CSIP107 label "Representations/rep1" (CSIP103 contradicts it: DILCISBoard/E-ARK-CSIP#749)
    out += [
        _open(3, "mets:div", {"ID": f"div-{REPRESENTATION}", "LABEL": f"Representations/{REPRESENTATION}"}),
        _leaf(4, "mets:mptr", {**_link(representation.href), "xlink:title": rep_group}),
        _close(3, "mets:div"),
    ]
    if raw is not None:
        out += [
            _open(3, "mets:div", {"ID": f"div-{RAW_REPRESENTATION}", "LABEL": f"Representations/{RAW_REPRESENTATION}"}),
            _leaf(4, "mets:mptr", {**_link(raw.href), "xlink:title": raw_group}),
            _close(3, "mets:div"),
        ]
    out += [
        _close(2, "mets:div"),
        _close(1, "mets:structMap"),
        "\n</mets:mets>\n",
    ]
    stream.write("".join(out).encode())


def write_raw_mets(stream: BinaryIO, *, header: Header, siard: FileEntry) -> None:
    """The raw representation's METS (CITS SIARD): one SIARD file in ``data/``."""
    attrib = {
        "OBJID": RAW_REPRESENTATION,
        "TYPE": SIARD_CATEGORY,
        "csip:CONTENTINFORMATIONTYPE": SIARD_CONTENT_TYPE,
        "PROFILE": SIARD_REPRESENTATION_PROFILE,
        "xsi:schemaLocation": " ".join(f"{ns} {url}" for ns, url in SCHEMA_URLS.items()),
    }
    created = format_value(header.created) or ""
    group = {"ID": "grp-siard", "USE": "Data", "csip:CONTENTINFORMATIONTYPE": SIARD_CONTENT_TYPE}
    out = [
        f"<?xml version='1.0' encoding='UTF-8'?>\n<mets:mets{_NAMESPACES}{_attrs(attrib)}>",
        _header(header),
        _open(1, "mets:fileSec", {"ID": "filesec"}),
        _open(2, "mets:fileGrp", group),
        _file(3, siard, created),
        _close(2, "mets:fileGrp"),
        _close(1, "mets:fileSec"),
        _open(1, "mets:structMap", {"ID": "structmap-csip", "TYPE": "PHYSICAL", "LABEL": "CSIP"}),
        _open(2, "mets:div", {"ID": "div-csip", "LABEL": RAW_REPRESENTATION}),
        _open(3, "mets:div", {"ID": "div-csip-data", "LABEL": "Data"}),
        _leaf(4, "mets:fptr", {"FILEID": "grp-siard"}),
        _close(3, "mets:div"),
        _close(2, "mets:div"),
        _close(1, "mets:structMap"),
        "\n</mets:mets>\n",
    ]
    stream.write("".join(out).encode())


class RepresentationMets:
    """Streams the representation METS: the file section grows one patient at a time.

    The eHealth1 structural map (patient, case, document divisions) is written to a spool file
    while the file section grows and copied in on :meth:`close`; nothing grows in memory.

    :param stream: binary stream of ``representations/rep1/METS.xml``
    :param objid: the representation's id (CSIP1: the representation folder's name)
    :param header: the same metsHdr content as the root METS
    """

    def __init__(self, stream: BinaryIO, *, objid: str, header: Header) -> None:
        self._stream = stream
        self._created = format_value(header.created) or ""
        self._count = 0
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        head = _root(objid, EHEALTH1_REPRESENTATION_PROFILE, None, header.profile_version)
        stream.write((head + _header(header) + _open(1, "mets:fileSec", {"ID": "filesec"})).encode())

    def add_patient(
        self,
        *,
        folder: str,
        files: Sequence[FileEntry],
        cases: Sequence[str],
        documents: Sequence[tuple[str | None, list[str]]],
    ) -> None:
        """Add one patient's file group and its divisions of the eHealth1 structural map.

        :param folder: the patient's folder relative to the representation (``data/<key>``)
        :param files: the patient's files (the record file first)
        :param cases: the patient's case ids, in record order
        :param documents: (case id or None, file ids) of each document that has attachments
        """
        # written directly (one call per data file): only the folder needs escaping, ids are ours
        self._count += 1
        group_id, div_id = f"grp-p{self._count:06d}", f"div-p{self._count:06d}"
        created = self._created
        head = (
            f'\n    <mets:fileGrp ID="{group_id}" USE="{xmltext.attr(folder)}" csip:CONTENTINFORMATIONTYPE="{OTHER}"'
            f' csip:OTHERCONTENTINFORMATIONTYPE="{CONTENT_INFORMATION_TYPE}">'
        )
        self._stream.write(
            (head + "".join(_file(3, entry, created) for entry in files) + "\n    </mets:fileGrp>").encode()
        )
        by_case: dict[str, list[tuple[str, list[str]]]] = {case_id: [] for case_id in cases}
        loose: list[tuple[str, list[str]]] = []
        for index, (case_id, file_ids) in enumerate(documents, start=1):
            doc = (f"{div_id}-d{index:04d}", file_ids)
            (by_case[case_id] if case_id in by_case else loose).append(doc)
        div = [f'\n      <mets:div ID="{div_id}" LABEL="Patient Record">\n        <mets:fptr FILEID="{group_id}"/>']
        for number, docs in enumerate(by_case.values(), start=1):
            div.append(f'\n        <mets:div ID="{div_id}-c{number:04d}" LABEL="Case">')
            div += _documents(5, docs)
            div.append("\n        </mets:div>")
        div += _documents(4, loose)
        div.append("\n      </mets:div>")
        self._spool.write("".join(div).encode())

    def close(self) -> None:
        """Write the structural maps (CSIP and eHealth1) and end the document."""
        out = [
            _close(1, "mets:fileSec"),
            _open(1, "mets:structMap", {"ID": "structmap-csip", "TYPE": "PHYSICAL", "LABEL": "CSIP"}),
            _open(2, "mets:div", {"ID": "div-csip", "LABEL": REPRESENTATION}),
            _open(3, "mets:div", {"ID": "div-csip-data", "LABEL": "Data"}),
        ]
        self._stream.write("".join(out).encode())
        for start in range(1, self._count + 1, 10_000):
            end = min(start + 10_000, self._count + 1)
            pointers = "".join(_leaf(4, "mets:fptr", {"FILEID": f"grp-p{n:06d}"}) for n in range(start, end))
            self._stream.write(pointers.encode())
        out = [
            _close(3, "mets:div"),
            _close(2, "mets:div"),
            _close(1, "mets:structMap"),
            _open(1, "mets:structMap", {"ID": "structmap-ehealth1", "TYPE": "PHYSICAL", "LABEL": "eHealth1"}),
            _open(2, "mets:div", {"ID": "div-ehealth1", "LABEL": REPRESENTATION}),
            _open(3, "mets:div", {"ID": "div-data", "LABEL": "Data"}),
        ]
        self._stream.write("".join(out).encode())
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._stream, 1 << 20)
        self._spool.close()
        tail = [_close(3, "mets:div"), _close(2, "mets:div"), _close(1, "mets:structMap"), "\n</mets:mets>\n"]
        self._stream.write("".join(tail).encode())


def _documents(depth: int, docs: Sequence[tuple[str, list[str]]]) -> list[str]:
    pad = "  " * depth
    out = []
    for div_id, file_ids in docs:
        out.append(f'\n{pad}<mets:div ID="{div_id}" LABEL="Document">')
        out += [f'\n{pad}  <mets:fptr FILEID="{file_id}"/>' for file_id in file_ids]
        out.append(f"\n{pad}</mets:div>")
    return out


class LocalSchemaResolver(etree.Resolver):
    """Serves schema URLs from ``schemas/``."""

    def resolve(self, system_url: str, public_id: str, context: object):  # noqa: ANN201 (lxml API)
        name = LOCAL_SCHEMAS.get(system_url)
        if name is not None:
            return self.resolve_filename(str(SCHEMA_DIR / name), context)
        return None


def schema_parser() -> etree.XMLParser:
    """An XML parser that never touches the network and resolves known schema URLs locally."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True)
    parser.resolvers.add(LocalSchemaResolver())
    return parser


def mets_schema() -> etree.XMLSchema:
    """A new METS 1.12 validator with xlink and the DILCIS CSIP/SIP extensions, all from local files.

    Built per use (a few milliseconds), never shared between threads.
    """
    imports = "".join(f'<xs:import namespace="{ns}" schemaLocation="{url}"/>' for ns, url in SCHEMA_URLS.items())
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    document = etree.fromstring(wrapper.encode(), schema_parser(), base_url=str(SCHEMA_DIR / "wrapper.xsd"))
    return etree.XMLSchema(document)
