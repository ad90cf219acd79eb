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

from decommission.records import SCHEMA_DIR, XmlStream, format_value

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
    ("transformation", "Records mapped to the archive record model; rows that fail a rule are quarantined."),
    ("validation", "Mapped records checked against the archive record model before packaging."),
    ("information package creation", "E-ARK SIP written with SHA-256 fixity computed while writing."),
)


class PremisWriter:
    """Streams the PREMIS document: file objects first, then events and agents on close.

    :param stream: binary stream of the PREMIS file
    :param provenance: the package, dates and agents the document names
    """

    def __init__(self, stream: BinaryIO, provenance: Provenance) -> None:
        self._prov = provenance
        self._xs = XmlStream(stream)
        attrib = {"version": "3.0", f"{{{XSI_NS}}}schemaLocation": f"{PREMIS_NS} {PREMIS_SCHEMA_URL}"}
        self._xs.start(_p("premis"), attrib, nsmap={"premis": PREMIS_NS, "xsi": XSI_NS})
        self._xs.start(_p("object"), {f"{{{XSI_NS}}}type": "premis:representation"})
        self._identifier("objectIdentifier", LOCAL_ID_TYPE, provenance.representation)
        self._xs.end()

    def _identifier(self, element: str, id_type: str, value: str, role: str | None = None) -> None:
        prefix = element.removesuffix("Identifier")
        self._xs.start(_p(element))
        self._xs.leaf(_p(f"{prefix}IdentifierType"), None, id_type)
        self._xs.leaf(_p(f"{prefix}IdentifierValue"), None, value)
        if role is not None:
            self._xs.leaf(_p(f"{prefix}Role"), None, role)
        self._xs.end()

    def add_file(self, path: str, *, size: int, sha256: str, mimetype: str) -> None:
        """Add a file object (path relative to the package root) with its fixity and size."""
        xs = self._xs
        xs.start(_p("object"), {f"{{{XSI_NS}}}type": "premis:file"})
        self._identifier("objectIdentifier", PATH_ID_TYPE, path)
        xs.start(_p("objectCharacteristics"))
        xs.leaf(_p("compositionLevel"), None, "0")
        xs.start(_p("fixity"))
        xs.leaf(_p("messageDigestAlgorithm"), None, DIGEST_ALGORITHM)
        xs.leaf(_p("messageDigest"), None, sha256)
        xs.leaf(_p("messageDigestOriginator"), None, self._prov.software_name)
        xs.end()
        xs.leaf(_p("size"), None, str(size))
        xs.start(_p("format"))
        xs.start(_p("formatDesignation"))
        xs.leaf(_p("formatName"), None, mimetype)
        xs.end()
        xs.end()
        xs.end()
        xs.end()

    def close(self) -> None:
        """Write the events and agents and end the document."""
        prov = self._prov
        software_id = f"{prov.software_name}-{prov.software_version}"
        when = format_value(prov.created) or ""
        for event_type, detail in EVENTS:
            xs = self._xs
            xs.start(_p("event"))
            self._identifier("eventIdentifier", LOCAL_ID_TYPE, f"{prov.package_id}-{event_type.replace(' ', '-')}")
            xs.leaf(_p("eventType"), None, event_type)
            xs.leaf(_p("eventDateTime"), None, when)
            xs.start(_p("eventDetailInformation"))
            xs.leaf(_p("eventDetail"), None, detail.format(system=prov.system_name))
            xs.end()
            xs.start(_p("eventOutcomeInformation"))
            xs.leaf(_p("eventOutcome"), None, "success")
            xs.end()
            self._identifier("linkingAgentIdentifier", LOCAL_ID_TYPE, software_id, "executing program")
            if event_type == "extraction":
                self._identifier("linkingAgentIdentifier", LOCAL_ID_TYPE, prov.region_id, "records creator")
            if event_type == "information package creation":
                self._identifier("linkingAgentIdentifier", LOCAL_ID_TYPE, prov.archive_name, "recipient")
            self._identifier("linkingObjectIdentifier", LOCAL_ID_TYPE, prov.representation, "outcome")
            xs.end()
        self._agent(software_id, prov.software_name, "software", prov.software_version)
        self._agent(prov.region_id, prov.region_name, "organization", None)
        self._agent(prov.archive_name, prov.archive_name, "organization", None)
        self._xs.close()

    def _agent(self, agent_id: str, name: str, agent_type: str, version: str | None) -> None:
        self._xs.start(_p("agent"))
        self._identifier("agentIdentifier", LOCAL_ID_TYPE, agent_id)
        self._xs.leaf(_p("agentName"), None, name)
        self._xs.leaf(_p("agentType"), None, agent_type)
        if version is not None:
            self._xs.leaf(_p("agentVersion"), None, version)
        self._xs.end()


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
