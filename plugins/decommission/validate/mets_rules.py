"""The METS checks of the validator: CSIP, SIP and eHealth1 requirements, by requirement id.

Every METS document, the root one and each representation's, is stream-parsed (schema-validated
while parsed): each header, metadata section, file, file group and division is checked as soon
as it ends and then freed, so memory does not grow with the document, whoever wrote it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from decommission.package import mets
from decommission.validate import vocabularies, xmlsafe
from decommission.validate.package_source import Checker

M, X, C = mets.METS_NS, mets.XLINK_NS, mets.CSIP_NS


def _m(name: str) -> str:
    return f"{{{M}}}{name}"


_FILE_IDS = {
    "ID": "CSIP67",
    "MIMETYPE": "CSIP68",
    "SIZE": "CSIP69",
    "CREATED": "CSIP70",
    "CHECKSUM": "CSIP71",
    "CHECKSUMTYPE": "CSIP72",
}
_FLOCAT_IDS = {"LOCTYPE": "CSIP77", f"{{{X}}}type": "CSIP78", f"{{{X}}}href": "CSIP79"}


def _md_ids(first: int) -> dict[str, str]:
    names = (
        "LOCTYPE",
        f"{{{X}}}type",
        f"{{{X}}}href",
        "MDTYPE",
        "MIMETYPE",
        "SIZE",
        "CREATED",
        "CHECKSUM",
        "CHECKSUMTYPE",
    )
    return {name: f"CSIP{first + i}" for i, name in enumerate(names)}


def is_ehealth1(element: etree._Element) -> bool:
    """citsehpj_v2_0 as csip:CONTENTINFORMATIONTYPE, or as OTHER + csip:OTHERCONTENTINFORMATIONTYPE (CSIP 2.1.0)."""
    info = element.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
    other = element.get(f"{{{C}}}OTHERCONTENTINFORMATIONTYPE")
    return info == mets.CONTENT_INFORMATION_TYPE or (info == mets.OTHER and other == mets.CONTENT_INFORMATION_TYPE)


def is_siard(element: etree._Element) -> bool:
    """The raw representation (CITS SIARD): csip:CONTENTINFORMATIONTYPE SIARD2."""
    return element.get(f"{{{C}}}CONTENTINFORMATIONTYPE") == mets.SIARD_CONTENT_TYPE


def _check_root_element(v: Checker, doc: etree._Element, rel: str, folder: str, root: bool) -> None:
    """CSIP1-6 and the eHealth1 content type (EHR2-4 in the root METS, EH3-5 in a representation's).

    The raw representation's METS is CITS SIARD instead: TYPE Databases, SIARD2 (checked in full
    by :mod:`decommission.validate.siard` on the SIARD file itself).
    """
    ehr = ("EHR2", "EHR3", "EHR4") if root else ("EH3", "EH4", "EH5")
    if not v.need(doc.tag == _m("mets"), "CSIP1000", rel, "the root element is not mets:mets"):
        return
    if not root and is_siard(doc):
        objid = doc.get("OBJID")
        v.need(objid == folder, "CSIP1", rel, f"mets/@OBJID {objid!r} is not the folder name {folder!r}")
        v.need(doc.get("TYPE") == mets.SIARD_CATEGORY, "CSIP2", rel, "mets/@TYPE of a SIARD representation")
        v.need(doc.get("PROFILE"), "CSIP6", rel, "mets/@PROFILE is missing")
        return
    objid = doc.get("OBJID")
    if v.need(objid, "CSIP1", rel, "mets/@OBJID is missing"):
        v.need(objid == folder, "CSIP1", rel, f"mets/@OBJID {objid!r} is not the folder name {folder!r}")
    category, other = doc.get("TYPE"), doc.get(f"{{{C}}}OTHERTYPE")
    v.need(category in vocabularies.CONTENT_CATEGORIES, "CSIP2", rel, "mets/@TYPE is missing or not in the vocabulary")
    if category and category.upper() == "OTHER":
        v.need(other, "CSIP3", rel, "mets/@TYPE is Other but csip:OTHERTYPE is missing")
    v.need((category or "").upper() == "OTHER", ehr[0], rel, "mets/@TYPE is not Other/OTHER (eHealth1)")
    v.need(other == mets.OTHER_CONTENT_CATEGORY, ehr[1], rel, "csip:OTHERTYPE is not 'Patient Medical Records'")
    info = doc.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
    v.need(
        info in vocabularies.CONTENT_INFORMATION_TYPES, "CSIP4", rel, "csip:CONTENTINFORMATIONTYPE missing or unknown"
    )
    if info == mets.OTHER:
        v.need(doc.get(f"{{{C}}}OTHERCONTENTINFORMATIONTYPE"), "CSIP5", rel, "csip:OTHERCONTENTINFORMATIONTYPE missing")
    v.need(is_ehealth1(doc), ehr[2], rel, "the content information type is not citsehpj_v2_0")
    if v.need(doc.get("PROFILE"), "CSIP6", rel, "mets/@PROFILE is missing") and root:
        profile = doc.get("PROFILE")
        v.need(profile in mets.SIP_PROFILES.values(), "SIP2", rel, "mets/@PROFILE is not an E-ARK SIP profile")


def _check_header(v: Checker, hdr: etree._Element, rel: str, root: bool) -> None:
    """CSIP7-16 and, in the root METS, the SIP agents and agreement (SIP3-31), on the metsHdr element."""
    v.need(hdr.get("CREATEDATE"), "CSIP7", rel, "metsHdr/@CREATEDATE is missing")
    package_type = hdr.get(f"{{{C}}}OAISPACKAGETYPE")
    v.need(
        package_type in vocabularies.OAIS_PACKAGE_TYPES,
        "CSIP9",
        rel,
        "metsHdr/@csip:OAISPACKAGETYPE missing or unknown",
    )
    v.need(package_type == "SIP", "SIP4", rel, "metsHdr/@csip:OAISPACKAGETYPE is not SIP")
    status = hdr.get("RECORDSTATUS")
    v.need(
        status in vocabularies.RECORD_STATUSES, "SIP3", rel, "metsHdr/@RECORDSTATUS missing (required here) or unknown"
    )
    agents = hdr.findall(_m("agent"))
    v.need(agents, "CSIP10", rel, "metsHdr has no agent")
    creators = [a for a in agents if a.get("ROLE") == "CREATOR"]
    software = [a for a in creators if a.get("TYPE") == "OTHER" and a.get("OTHERTYPE") == "SOFTWARE"]
    if not software:
        if not creators:
            v.add("CSIP11", rel, "no agent with ROLE=CREATOR")
        elif not any(a.get("TYPE") == "OTHER" for a in creators):
            v.add("CSIP12", rel, "no CREATOR agent with TYPE=OTHER (the software agent)")
        else:
            v.add("CSIP13", rel, "no CREATOR agent with OTHERTYPE=SOFTWARE")
    for agent in software[:1]:
        names, notes = agent.findall(_m("name")), agent.findall(_m("note"))
        v.need(len(names) == 1 and (names[0].text or "").strip(), "CSIP14", rel, "software agent: not one name")
        v.need(len(notes) == 1 and (notes[0].text or "").strip(), "CSIP15", rel, "software agent: not one note")
        v.need(
            any(n.get(f"{{{C}}}NOTETYPE") == "SOFTWARE VERSION" for n in notes),
            "CSIP16",
            rel,
            "software agent note is not csip:NOTETYPE='SOFTWARE VERSION'",
        )
    if not root:
        return
    _check_sip_agent(
        v,
        rel,
        [a for a in agents if a.get("ROLE") == "ARCHIVIST"],
        "archival creator (ARCHIVIST)",
        ("SIP9", "SIP11", "SIP12", "SIP13", "SIP14"),
        {"ORGANIZATION", "INDIVIDUAL"},
        note=True,
    )
    submitters = [a for a in creators if a.get("TYPE") in ("ORGANIZATION", "INDIVIDUAL")]
    _check_sip_agent(
        v,
        rel,
        submitters,
        "submitting (CREATOR)",
        ("SIP15", "SIP17", "SIP18", None, "SIP20"),
        {"ORGANIZATION", "INDIVIDUAL"},
    )
    _check_sip_agent(
        v,
        rel,
        [a for a in agents if a.get("ROLE") == "PRESERVATION"],
        "preservation",
        ("SIP26", "SIP28", "SIP29", None, "SIP31"),
        {"ORGANIZATION"},
    )
    agreements = [a for a in hdr.findall(_m("altRecordID")) if a.get("TYPE") == "SUBMISSIONAGREEMENT"]
    v.need(any((a.text or "").strip() for a in agreements), "SIP5", rel, "no altRecordID TYPE=SUBMISSIONAGREEMENT")


def _check_sip_agent(v: Checker, rel: str, agents: list, what: str, ids: tuple, types: set, note: bool = False) -> None:
    present, typed, named, noted, notetype = ids
    if not v.need(agents, present, rel, f"no {what} agent"):
        return
    agent = agents[0]
    v.need(agent.get("TYPE") in types, typed, rel, f"{what} agent TYPE is not {' or '.join(sorted(types))}")
    v.need((agent.findtext(_m("name")) or "").strip(), named, rel, f"{what} agent has no name")
    notes = agent.findall(_m("note"))
    if note:
        v.need(notes, noted, rel, f"{what} agent has no identification code note")
    for item in notes:
        v.need(
            item.get(f"{{{C}}}NOTETYPE") == "IDENTIFICATIONCODE",
            notetype,
            rel,
            f"{what} agent note is not csip:NOTETYPE='IDENTIFICATIONCODE'",
        )


def _check_metadata_section(
    v: Checker, section: etree._Element, kind: str, rel: str, found: dict[str, list[str]]
) -> None:
    """One dmdSec, digiprovMD or rightsMD of the root METS: its id, date and references (with fixity)."""
    ids, (id_req, created_req, ref_req) = _MD_SECTIONS[kind]
    where = f"{rel} {kind} {section.get('ID')}"
    v.need(section.get("ID"), id_req, rel, f"line {section.sourceline}: {kind}/@ID is missing")
    if created_req:
        v.need(section.get("CREATED"), created_req, rel, f"line {section.sourceline}: {kind}/@CREATED missing")
    refs = section.findall(_m("mdRef"))
    v.need(refs, ref_req, rel, f"line {section.sourceline}: {kind} has no mdRef")
    for ref in refs:
        v.check_attributes(ref, ids, rel)
        target = v.resolve("", ref.get(f"{{{X}}}href"), where)
        v.check_file(ref, target, where)
        if target:
            paths = found.setdefault(ref.get("OTHERMDTYPE") or ref.get("MDTYPE") or "", [])
            if v.need(len(paths) < _MAX_NAMED, "LIMIT", rel, f"more than {_MAX_NAMED} metadata files of one type"):
                paths.append(target)


_MD_SECTIONS = {
    "dmdSec": (_md_ids(22), ("CSIP18", "CSIP19", "CSIP21")),
    "digiprovMD": (_md_ids(36), ("CSIP33", None, "CSIP35")),
    "rightsMD": (_md_ids(49), ("CSIP46", None, "CSIP48")),
}
#: representation METS and metadata files of one type the root METS may name (each is read in turn)
_MAX_NAMED = 10_000
#: elements a kept subtree (metsHdr, a metadata section, a file) may have: each is held until its end
_MAX_KEPT = 100_000
_ID_BATCH = 20_000
_KEPT = {_m(t) for t in ("metsHdr", "dmdSec", "techMD", "rightsMD", "sourceMD", "digiprovMD", "file")}
_MD_WRAP = _m("mdWrap")
_METS, _AMDSEC, _FILESEC, _FILEGRP = _m("mets"), _m("amdSec"), _m("fileSec"), _m("fileGrp")
_STRUCTMAP, _DIV = _m("structMap"), _m("div")


@dataclass
class _Division:
    """What the checks need of a structMap div, gathered while it is read (its children are freed)."""

    label: str | None
    ident: str | None
    depth: int
    fptrs: int = 0
    fptr_without_fileid: bool = False
    mptrs: int = 0
    mptr: dict[str, str | None] | None = None


@dataclass
class _Group:
    """The file group being read: where it starts, whether it holds representations, its files so far."""

    line: int
    representation: bool
    files: int = 0


@dataclass
class MetsResult:
    """What the validator needs of a METS document after it is read."""

    objid: str | None
    metadata: dict[str, list[str]] = field(default_factory=dict)
    representations: set[str] = field(default_factory=set)


class _MetsReader:
    """One METS document read as a stream: every check is made as its element ends, then it is freed.

    Nothing is kept but a few counters, the current file group and division, and the subtree of
    a header, metadata section or file until its checks are made; ids and references go to the
    file table. Memory does not grow with the document.
    """

    def __init__(self, v: Checker, rel: str, folder: str, root: bool) -> None:
        self.v, self.rel, self.folder, self.root = v, rel, folder, root
        self.base = posixpath.dirname(rel)
        self.result = MetsResult(None)
        self.doc: etree._Element | None = None
        self.seen: set[str] = set()
        self.uses = {"Documentation": False, "Schemas": False, "Representations": False}
        self.groups: list[_Group] = []
        self.maps = 0
        self.physical = False
        self.csip: dict[str, Any] | None = None  # the first structMap LABEL=CSIP
        self.in_csip = False
        self.divisions: list[_Division] = []
        self.kept = 0  # depth inside kept subtrees
        self.kept_elements = 0
        self.wrapped = 0  # depth inside mdWrap (its content is never needed)
        self.ids: list[tuple[str]] = []
        self.refs: list[tuple[str, str, int]] = []
        self._handlers: dict[str, Callable[[etree._Element], None]] = {
            _m("metsHdr"): self._end_header,
            _m("dmdSec"): self._end_section,
            _m("digiprovMD"): self._end_section,
            _m("rightsMD"): self._end_section,
            _AMDSEC: self._end_amd,
            _m("file"): self._end_file,
            _FILEGRP: self._end_group,
            _m("fptr"): self._end_fptr,
            _m("mptr"): self._end_mptr,
            _DIV: self._end_div,
            _STRUCTMAP: self._end_struct_map,
        }

    # ------------------------------------------------------------------ reading
    def read(self) -> MetsResult | None:
        v, rel = self.v, self.rel
        v.src.files.reset_ids()
        try:
            with v.src.open(rel) as stream:
                for event, element in v.events(stream, v.mets_schema, events=("start", "end")):
                    if event == "start":
                        self._start(element)
                    else:
                        self._end(element)
        except (etree.LxmlError, xmlsafe.Refused) as exc:
            v.xml_error(rel, exc, private=False)
            return None
        if self.doc is None:
            return None
        self._flush()
        for _ref, attribute, line in v.src.files.dangling():
            v.add("IDREF", rel, f"line {line}: {attribute} names no ID")
        self._finish()
        return self.result

    def _start(self, element: etree._Element) -> None:
        tag = element.tag
        if self.doc is None:
            self.doc = element
            self.result.objid = element.get("OBJID")
            _check_root_element(self.v, element, self.rel, self.folder, self.root)
            return
        if tag == _MD_WRAP or self.wrapped:  # inline metadata: never checked, freed as read
            self.wrapped += 1
            self.kept += 1 if self.kept else 0
            return
        if self.kept or tag in _KEPT:
            self.kept += 1
            self.kept_elements += 1
            if self.kept_elements > _MAX_KEPT:
                raise xmlsafe.Refused(f"more than {_MAX_KEPT} elements in one header, metadata section or file")
            if self.kept > 1:
                return
        if tag == _DIV:
            depth = self.divisions[-1].depth + 1 if self.divisions else 1
            self.divisions.append(_Division(element.get("LABEL"), element.get("ID"), depth))
        elif tag == _FILEGRP:
            self._start_group(element)
        elif tag == _FILESEC:
            self.seen.add("fileSec")
            self.v.need(element.get("ID"), "CSIP59", self.rel, "fileSec/@ID is missing")
        elif tag == _STRUCTMAP:
            self.maps += 1
            self.physical |= element.get("TYPE") == "PHYSICAL"
            self.in_csip = self.csip is None and element.get("LABEL") == "CSIP"
            if self.in_csip:
                self.csip = {"ID": element.get("ID"), "divs": 0, "main_id": None, "children": {}, "representations": 0}

    def _end(self, element: etree._Element) -> None:
        tag = element.tag
        ident = element.get("ID")
        if ident:
            self.ids.append((ident,))
        for attribute in ("FILEID", "DMDID", "ADMID"):
            value = element.get(attribute)
            if value:
                self.refs += [(ref, attribute, element.sourceline) for ref in value.split()]
        if len(self.ids) + len(self.refs) > _ID_BATCH:
            self._flush()
        if self.wrapped:
            self.wrapped -= 1
            if tag == _MD_WRAP:  # its siblings (an mdRef) are still to be checked with the section
                element.clear(keep_tail=True)
            else:
                xmlsafe.free(element)
            self.kept -= 1 if self.kept else 0
            return
        if self.kept > 1:  # inside a header, section or file: its own end makes the checks
            self.kept -= 1
            return
        handler = self._handlers.get(tag)
        if handler is not None:
            handler(element)
        self.kept = self.kept_elements = 0
        xmlsafe.free(element)

    def _end_header(self, element: etree._Element) -> None:
        self.seen.add("metsHdr")
        _check_header(self.v, element, self.rel, self.root)

    def _end_section(self, element: etree._Element) -> None:
        parent = element.getparent()
        if not self.root or parent is None:
            return
        kind = element.tag.rsplit("}", 1)[1]
        if parent.tag == (_METS if kind == "dmdSec" else _AMDSEC):
            self.seen.add(kind)
            _check_metadata_section(self.v, element, kind, self.rel, self.result.metadata)

    def _end_amd(self, _element: etree._Element) -> None:
        self.seen.add("amdSec")

    def _end_group(self, _element: etree._Element) -> None:
        group = self.groups.pop()
        self.v.need(group.files, "CSIP66", self.rel, f"line {group.line}: fileGrp has no file")

    def _end_fptr(self, element: etree._Element) -> None:
        if self.divisions:
            division = self.divisions[-1]
            division.fptrs += 1
            division.fptr_without_fileid |= not element.get("FILEID")

    def _end_mptr(self, element: etree._Element) -> None:
        title = element.get(_TITLE)
        if title:
            self.refs.append((title, "title", element.sourceline))
        if self.divisions:
            division = self.divisions[-1]
            division.mptrs += 1
            if division.mptr is None:
                division.mptr = {name: element.get(name) for name in _MPTR_ATTRIBUTES}

    def _end_div(self, _element: etree._Element) -> None:
        if self.divisions:
            self._end_division(self.divisions.pop())

    def _end_struct_map(self, _element: etree._Element) -> None:
        self.in_csip = False

    def _flush(self) -> None:
        self.v.src.add_ids(self.ids, self.refs)
        self.ids, self.refs = [], []

    # ------------------------------------------------------------------ file section
    def _start_group(self, group: etree._Element) -> None:
        v, rel = self.v, self.rel
        use = group.get("USE") or ""
        where = f"line {group.sourceline}"
        v.need(group.get("USE"), "CSIP64", rel, f"{where}: fileGrp/@USE is missing")
        v.need(group.get("ID"), "CSIP65", rel, f"{where}: fileGrp/@ID is missing")
        representation = use.startswith("Representations")
        if self.root:
            for name in ("Documentation", "Schemas"):
                self.uses[name] |= use == name
            self.uses["Representations"] |= representation
            if group.get("ID"):
                self.ids.append((_GROUP + group.get("ID"),))  # for CSIP108: an mptr names a file group
            if representation:
                info = group.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
                v.need(info, "CSIP62", rel, f"{where}: Representations fileGrp has no csip:CONTENTINFORMATIONTYPE")
                v.need(is_ehealth1(group) or is_siard(group), "EHR22", rel, f"{where}: fileGrp is not citsehpj_v2_0")
        self.groups.append(_Group(group.sourceline or 0, representation))

    def _end_file(self, file: etree._Element) -> None:
        parent = file.getparent()
        if not self.groups or parent is None or parent.tag != _FILEGRP:
            return
        v, rel = self.v, self.rel
        group = self.groups[-1]
        group.files += 1
        v.check_attributes(file, _FILE_IDS, rel)
        locations = file.findall(_m("FLocat"))
        if v.need(len(locations) == 1, "CSIP76", rel, f"line {file.sourceline}: file has not one FLocat"):
            v.check_attributes(locations[0], _FLOCAT_IDS, rel)
            target = v.resolve(self.base, locations[0].get(f"{{{X}}}href"), rel)
            v.check_file(file, target, rel)
            if self.root and target and target.endswith("/METS.xml") and group.representation:
                self._representation(target)

    def _representation(self, target: str) -> None:
        named = self.result.representations
        if target not in named and self.v.need(
            len(named) < _MAX_NAMED, "LIMIT", self.rel, f"more than {_MAX_NAMED} representation METS documents"
        ):
            named.add(target)

    # ------------------------------------------------------------------ structural map
    def _end_division(self, division: _Division) -> None:
        csip = self.csip
        if not self.in_csip or csip is None:
            return
        if division.depth == 1:
            csip["divs"] += 1
            if csip["divs"] == 1:
                csip["main_id"] = division.ident
        elif division.depth == 2 and csip["divs"] == 0 and self.root:
            self._child_division(division, csip)

    def _child_division(self, division: _Division, csip: dict[str, Any]) -> None:
        """A division in the package's main div (root METS): Metadata, Documentation, Schemas, representations."""
        v, rel, label = self.v, self.rel, division.label or ""
        if label in ("Metadata", "Documentation", "Schemas"):
            csip["children"][label] = division
            return
        if not label.startswith("Representations/"):
            return
        csip["representations"] += 1
        v.need(division.ident, "CSIP106", rel, f"div {label} has no ID")
        if not v.need(division.mptrs == 1, "CSIP109", rel, f"div {label} has not one mptr"):
            return
        mptr = division.mptr or {}
        title = mptr.get(f"{{{X}}}title")
        self._flush()  # the file group ids read so far, into the table has_id asks
        v.need(title and v.src.files.has_id(_GROUP + title), "CSIP108", rel, "mptr/@xlink:title names no fileGrp")
        v.need(mptr.get("LOCTYPE") == "URL", "CSIP112", rel, "mptr/@LOCTYPE is not URL")
        v.need(mptr.get(f"{{{X}}}type") == "simple", "CSIP111", rel, "mptr/@xlink:type is not simple")
        href = mptr.get(f"{{{X}}}href")
        if v.need(href, "CSIP110", rel, "mptr/@xlink:href is missing"):
            target = v.resolve("", href, rel)
            if target and v.need(target in v.src.files, "MISSING-FILE", target, "the mptr target is absent"):
                self._representation(target)

    # ------------------------------------------------------------------ after the document
    def _finish(self) -> None:
        v, rel = self.v, self.rel
        v.need("metsHdr" in self.seen, "CSIP117", rel, "mets/metsHdr is missing")
        if v.need("fileSec" in self.seen, "CSIP58", rel, "no fileSec") and self.root:
            v.need(self.uses["Documentation"], "CSIP60", rel, "no fileGrp USE=Documentation")
            v.need(self.uses["Schemas"], "CSIP113", rel, "no fileGrp USE=Schemas")
            v.need(self.uses["Representations"], "CSIP114", rel, "no fileGrp USE=Representations/...")
        if self.root:
            v.need("dmdSec" in self.seen, "EHR12", rel, "no dmdSec: eHealth1 requires the patient manifest")
            v.need("amdSec" in self.seen, "CSIP31", rel, "no amdSec (PREMIS is required here)")
        self._finish_struct_map()

    def _finish_struct_map(self) -> None:
        v, rel, csip = self.v, self.rel, self.csip
        if not v.need(self.maps, "CSIP80", rel, "no structMap"):
            return
        v.need(self.physical, "CSIP81", rel, "no structMap TYPE=PHYSICAL")
        if not v.need(csip is not None, "CSIP82", rel, "no structMap LABEL=CSIP") or csip is None:
            return
        v.need(csip["ID"], "CSIP83", rel, "structMap/@ID is missing")
        if not v.need(csip["divs"] == 1, "CSIP84", rel, "the CSIP structMap has not exactly one div"):
            return
        v.need(csip["main_id"], "CSIP85", rel, "the main div has no ID")
        if not self.root:
            return
        children = csip["children"]
        for label, present, ident, pointer, fileid in (
            ("Metadata", "CSIP88", "CSIP89", None, None),
            ("Documentation", "CSIP93", "CSIP94", "CSIP96", "CSIP116"),
            ("Schemas", "CSIP97", "CSIP98", "CSIP100", "CSIP118"),
        ):
            division = children.get(label)
            if v.need(division is not None, present, rel, f"no div LABEL={label}"):
                v.need(division.ident, ident, rel, f"div {label} has no ID")
                if pointer:
                    v.need(division.fptrs, pointer, rel, f"div {label} has no fptr")
                    v.need(not division.fptr_without_fileid, fileid, rel, f"div {label}: fptr without FILEID")
        v.need(csip["representations"], "CSIP105", rel, "no representation div (LABEL=Representations/...)")


_TITLE = f"{{{X}}}title"
_MPTR_ATTRIBUTES = (f"{{{X}}}title", "LOCTYPE", f"{{{X}}}type", f"{{{X}}}href")
#: file group ids are recorded with this prefix among the METS ids (an id cannot hold a space)
_GROUP = "fileGrp "


def check_mets(v: Checker, rel: str, folder: str, root: bool = True) -> MetsResult | None:
    """A METS document (the root one, or a representation's), stream-parsed and schema-validated as read.

    :returns: what the validator needs next (OBJID, metadata files by MDTYPE, representation
        METS documents), or None when the document is absent or could not be read to its end
    """
    if rel not in v.src.files:
        v.add("LAYOUT" if root else "MISSING-FILE", rel, "METS document is absent")
        return None
    if not v.xml_size_ok(rel):
        return None
    return _MetsReader(v, rel, folder, root).read()
