"""PREMIS 3 preservation metadata of a package (``metadata/preservation/premis.xml``).

One object per data file with its SHA-256 fixity and size, one object for the
representation, the events that made the package (extraction, transformation, validation,
packaging; all dated with the package's creation time) and the agents: our software with
its version, the region that created the records and the archive.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from lxml import etree

from decommission.package import xmltext
from decommission.package.records import SCHEMA_DIR, format_value

if TYPE_CHECKING:
    from collections.abc import Iterator

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PREMIS_XSD = SCHEMA_DIR / "premis.xsd"
PREMIS_SCHEMA_URL = "http://www.loc.gov/standards/premis/v3/premis.xsd"
#: objectIdentifierType of file objects; the value is the path relative to the package root
PATH_ID_TYPE = "filepath"
LOCAL_ID_TYPE = "local"
DIGEST_ALGORITHM = "SHA-256"


def _p(name: str) -> str:
    return f"{{{PREMIS_NS}}}{name}"


@dataclass(frozen=True)
class Provenance:
    """Who and what the PREMIS events and agents name.

    :param package_id: the package's OBJID (prefix of event identifiers)
    :param representation: the representation's path in the package (``representations/rep1``)
    """

    package_id: str
    representation: str
    created: dt.datetime
    software_name: str
    software_version: str
    system_name: str
    region_name: str
    region_id: str
    archive_name: str


#: (event type, detail); the order in which the events are written
EVENTS = (
    ("extraction", "Records read from the legacy system {system} inside one consistent snapshot."),
    (
        "transformation",
        "Records mapped to the archive record model; rows with a finding archived flagged or corrected, "
        "or disposed of by a recorded decision.",
    ),
    ("validation", "Mapped records checked against the archive record model before packaging."),
    ("information package creation", "E-ARK SIP written with SHA-256 fixity computed while writing."),
)


def _leaf(depth: int, tag: str, text: str) -> str:
    return f"\n{'  ' * depth}<premis:{tag}>{xmltext.text(text)}</premis:{tag}>"


def _open(depth: int, tag: str, attrib: str = "") -> str:
    return f"\n{'  ' * depth}<premis:{tag}{attrib}>"


def _close(depth: int, tag: str) -> str:
    return f"\n{'  ' * depth}</premis:{tag}>"


def _identifier(depth: int, element: str, id_type: str, value: str, role: str | None = None) -> str:
    prefix = element.removesuffix("Identifier")
    out = _open(depth, element) + _leaf(depth + 1, f"{prefix}IdentifierType", id_type)
    out += _leaf(depth + 1, f"{prefix}IdentifierValue", value)
    if role is not None:
        out += _leaf(depth + 1, f"{prefix}Role", role)
    return out + _close(depth, element)


class PremisWriter:
    """Streams the PREMIS document as text: file objects first, then events and agents on close.

    :param stream: binary stream of the PREMIS file
    :param provenance: the package, dates and agents the document names
    """

    def __init__(self, stream: BinaryIO, provenance: Provenance) -> None:
        self._prov = provenance
        self._stream = stream
        self._originator = xmltext.text(provenance.software_name)
        head = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            f'<premis:premis xmlns:premis="{PREMIS_NS}" xmlns:xsi="{XSI_NS}" version="3.0"'
            f' xsi:schemaLocation="{PREMIS_NS} {PREMIS_SCHEMA_URL}">'
            + _open(1, "object", ' xsi:type="premis:representation"')
            + _identifier(2, "objectIdentifier", LOCAL_ID_TYPE, provenance.representation)
            + _close(1, "object")
        )
        stream.write(head.encode())

    def add_files(self, files: list[tuple[str, int, str, str]]) -> None:
        """Add file objects: (path relative to the package root, size, SHA-256, MIME type) each."""
        out = []
        for path, size, sha256, mimetype in files:
            out.append(
                '\n  <premis:object xsi:type="premis:file">\n    <premis:objectIdentifier>'
                f"\n      <premis:objectIdentifierType>{PATH_ID_TYPE}</premis:objectIdentifierType>"
                f"\n      <premis:objectIdentifierValue>{xmltext.text(path)}</premis:objectIdentifierValue>"
                "\n    </premis:objectIdentifier>\n    <premis:objectCharacteristics>"
                "\n      <premis:compositionLevel>0</premis:compositionLevel>\n      <premis:fixity>"
                f"\n        <premis:messageDigestAlgorithm>{DIGEST_ALGORITHM}</premis:messageDigestAlgorithm>"
                f"\n        <premis:messageDigest>{sha256}</premis:messageDigest>"
                f"\n        <premis:messageDigestOriginator>{self._originator}</premis:messageDigestOriginator>"
                f"\n      </premis:fixity>\n      <premis:size>{size}</premis:size>"
                "\n      <premis:format>\n        <premis:formatDesignation>"
                f"\n          <premis:formatName>{xmltext.text(mimetype)}</premis:formatName>"
                "\n        </premis:formatDesignation>\n      </premis:format>"
                "\n    </premis:objectCharacteristics>\n  </premis:object>"
            )
        self._stream.write("".join(out).encode())

    def add_file(self, path: str, *, size: int, sha256: str, mimetype: str) -> None:
        """Add one file object (path relative to the package root) with its fixity and size."""
        self.add_files([(path, size, sha256, mimetype)])

    def close(self) -> None:
        """Write the events and agents and end the document."""
        prov = self._prov
        software_id = f"{prov.software_name}-{prov.software_version}"
        when = format_value(prov.created) or ""
        out = []
        for event_type, detail in EVENTS:
            out += [
                _open(1, "event"),
                _identifier(2, "eventIdentifier", LOCAL_ID_TYPE, f"{prov.package_id}-{event_type.replace(' ', '-')}"),
                _leaf(2, "eventType", event_type),
                _leaf(2, "eventDateTime", when),
                _open(2, "eventDetailInformation"),
                _leaf(3, "eventDetail", detail.format(system=prov.system_name)),
                _close(2, "eventDetailInformation"),
                _open(2, "eventOutcomeInformation"),
                _leaf(3, "eventOutcome", "success"),
                _close(2, "eventOutcomeInformation"),
                _identifier(2, "linkingAgentIdentifier", LOCAL_ID_TYPE, software_id, "executing program"),
            ]
            if event_type == "extraction":
                out.append(_identifier(2, "linkingAgentIdentifier", LOCAL_ID_TYPE, prov.region_id, "records creator"))
            if event_type == "information package creation":
                out.append(_identifier(2, "linkingAgentIdentifier", LOCAL_ID_TYPE, prov.archive_name, "recipient"))
            out += [
                _identifier(2, "linkingObjectIdentifier", LOCAL_ID_TYPE, prov.representation, "outcome"),
                _close(1, "event"),
            ]
        for agent_id, name, agent_type, version in (
            (software_id, prov.software_name, "software", prov.software_version),
            (prov.region_id, prov.region_name, "organization", None),
            (prov.archive_name, prov.archive_name, "organization", None),
        ):
            out += [
                _open(1, "agent"),
                _identifier(2, "agentIdentifier", LOCAL_ID_TYPE, agent_id),
                _leaf(2, "agentName", name),
                _leaf(2, "agentType", agent_type),
            ]
            if version is not None:
                out.append(_leaf(2, "agentVersion", version))
            out.append(_close(1, "agent"))
        out.append("\n</premis:premis>\n")
        self._stream.write("".join(out).encode())


def file_objects(root: etree._Element) -> Iterator[tuple[str, str | None, list[tuple[str | None, str | None]]]]:
    """Yield (path, size, [(algorithm, digest)]) of each file object identified by its path."""
    for obj in root.iter(_p("object")):
        identifier = obj.find(_p("objectIdentifier"))
        if identifier is None or identifier.findtext(_p("objectIdentifierType")) != PATH_ID_TYPE:
            continue
        digests = [
            (f.findtext(_p("messageDigestAlgorithm")), f.findtext(_p("messageDigest"))) for f in obj.iter(_p("fixity"))
        ]
        yield identifier.findtext(_p("objectIdentifierValue")) or "", obj.findtext(f".//{_p('size')}"), digests


def premis_schema() -> etree.XMLSchema:
    """A new PREMIS 3.0 validator from ``schemas/premis.xsd`` (it imports nothing; not shared between threads)."""
    return etree.XMLSchema(etree.parse(str(PREMIS_XSD), etree.XMLParser(no_network=True)))
