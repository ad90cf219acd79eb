"""The METS checks of the validator: CSIP, SIP and eHealth1 requirements, by requirement id.

The root METS is small and checked as a tree. A representation METS lists every data file, so
it is stream-parsed (schema-validated while parsed) and each file group is checked and freed as
soon as it is read: memory does not grow with the package.
"""

from __future__ import annotations

import posixpath

from lxml import etree

from decommission.package import mets
from decommission.validate import vocabularies
from decommission.validate.package_source import Checker, free, stream_parse

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


def _check_root_element(v: Checker, doc: etree._Element, rel: str, folder: str, root: bool) -> None:
    """CSIP1-6 and the eHealth1 content type (EHR2-4 in the root METS, EH3-5 in a representation's)."""
    ehr = ("EHR2", "EHR3", "EHR4") if root else ("EH3", "EH4", "EH5")
    if not v.need(doc.tag == _m("mets"), "CSIP1000", rel, "the root element is not mets:mets"):
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


def _check_header(v: Checker, doc: etree._Element, rel: str, root: bool) -> None:
    """CSIP7-16, CSIP117 and, in the root METS, the SIP agents and agreement (SIP3-31)."""
    hdr = doc.find(_m("metsHdr"))
    if not v.need(hdr is not None, "CSIP117", rel, "mets/metsHdr is missing"):
        return
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


def check_metadata(v: Checker, doc: etree._Element, rel: str) -> dict[str, list[str]]:
    """dmdSec and amdSec references; returns MDTYPE -> referenced paths."""
    found: dict[str, list[str]] = {}
    sections = [(s, "dmdSec", _md_ids(22), ("CSIP18", "CSIP19", "CSIP21")) for s in doc.findall(_m("dmdSec"))]
    v.need(sections, "EHR12", rel, "no dmdSec: eHealth1 requires the patient manifest")
    v.need(doc.find(_m("amdSec")) is not None, "CSIP31", rel, "no amdSec (PREMIS is required here)")
    for kind, first, required in (
        ("digiprovMD", 36, ("CSIP33", None, "CSIP35")),
        ("rightsMD", 49, ("CSIP46", None, "CSIP48")),
    ):
        sections += [(s, kind, _md_ids(first), required) for s in doc.iterfind(f"{_m('amdSec')}/{_m(kind)}")]
    for section, kind, ids, (id_req, created_req, ref_req) in sections:
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
                found.setdefault(ref.get("OTHERMDTYPE") or ref.get("MDTYPE") or "", []).append(target)
    return found


def _check_files(v: Checker, doc: etree._Element, rel: str, root: bool) -> set[str]:
    """File section: attributes and fixity of every file; returns the representation METS files listed."""
    representations: set[str] = set()
    section = doc.find(_m("fileSec"))
    if not v.need(section is not None, "CSIP58", rel, "no fileSec"):
        return representations
    v.need(section.get("ID"), "CSIP59", rel, "fileSec/@ID is missing")
    groups = list(section.iter(_m("fileGrp")))
    if root:
        uses = [g.get("USE") or "" for g in groups]
        v.need("Documentation" in uses, "CSIP60", rel, "no fileGrp USE=Documentation")
        v.need("Schemas" in uses, "CSIP113", rel, "no fileGrp USE=Schemas")
        v.need(any(u.startswith("Representations") for u in uses), "CSIP114", rel, "no fileGrp USE=Representations/...")
    for group in groups:
        representations |= check_group(v, group, rel, root)
    return representations


def check_group(v: Checker, group: etree._Element, rel: str, root: bool) -> set[str]:
    """One fileGrp: its attributes and every file's attributes and fixity; returns representation METS paths."""
    base = posixpath.dirname(rel)
    found: set[str] = set()
    where = f"line {group.sourceline}"
    v.need(group.get("USE"), "CSIP64", rel, f"{where}: fileGrp/@USE is missing")
    v.need(group.get("ID"), "CSIP65", rel, f"{where}: fileGrp/@ID is missing")
    v.need(group.find(_m("file")) is not None, "CSIP66", rel, f"{where}: fileGrp has no file")
    representation = (group.get("USE") or "").startswith("Representations")
    if root and representation:
        info = group.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
        v.need(info, "CSIP62", rel, f"{where}: Representations fileGrp has no csip:CONTENTINFORMATIONTYPE")
        v.need(is_ehealth1(group), "EHR22", rel, f"{where}: fileGrp is not citsehpj_v2_0")
    for file in group.findall(_m("file")):
        v.check_attributes(file, _FILE_IDS, rel)
        locations = file.findall(_m("FLocat"))
        if v.need(len(locations) == 1, "CSIP76", rel, f"line {file.sourceline}: file has not one FLocat"):
            v.check_attributes(locations[0], _FLOCAT_IDS, rel)
            target = v.resolve(base, locations[0].get(f"{{{X}}}href"), rel)
            v.check_file(file, target, rel)
            if root and target and target.endswith("/METS.xml") and representation:
                found.add(target)
    return found


def check_struct_map(v: Checker, doc: etree._Element, rel: str, root: bool) -> list[str]:
    """The CSIP structural map; returns the representation METS paths its mptr elements name."""
    maps = doc.findall(_m("structMap"))
    if not v.need(maps, "CSIP80", rel, "no structMap"):
        return []
    v.need(any(s.get("TYPE") == "PHYSICAL" for s in maps), "CSIP81", rel, "no structMap TYPE=PHYSICAL")
    csip = [s for s in maps if s.get("LABEL") == "CSIP"]
    if not v.need(csip, "CSIP82", rel, "no structMap LABEL=CSIP"):
        return []
    v.need(csip[0].get("ID"), "CSIP83", rel, "structMap/@ID is missing")
    divs = csip[0].findall(_m("div"))
    if not v.need(len(divs) == 1, "CSIP84", rel, "the CSIP structMap has not exactly one div"):
        return []
    v.need(divs[0].get("ID"), "CSIP85", rel, "the main div has no ID")
    if not root:
        return []
    children = {d.get("LABEL"): d for d in divs[0].findall(_m("div"))}
    for label, present, ident, pointer, fileid in (
        ("Metadata", "CSIP88", "CSIP89", None, None),
        ("Documentation", "CSIP93", "CSIP94", "CSIP96", "CSIP116"),
        ("Schemas", "CSIP97", "CSIP98", "CSIP100", "CSIP118"),
    ):
        div = children.get(label)
        if v.need(div is not None, present, rel, f"no div LABEL={label}"):
            v.need(div.get("ID"), ident, rel, f"div {label} has no ID")
            if pointer:
                pointers = div.findall(_m("fptr"))
                v.need(pointers, pointer, rel, f"div {label} has no fptr")
                v.need(all(p.get("FILEID") for p in pointers), fileid, rel, f"div {label}: fptr without FILEID")
    representations = [d for label, d in children.items() if (label or "").startswith("Representations/")]
    v.need(representations, "CSIP105", rel, "no representation div (LABEL=Representations/...)")
    group_ids = {g.get("ID") for g in doc.iter(_m("fileGrp"))}
    found = []
    for div in representations:
        v.need(div.get("ID"), "CSIP106", rel, f"div {div.get('LABEL')} has no ID")
        pointers = div.findall(_m("mptr"))
        if not v.need(len(pointers) == 1, "CSIP109", rel, f"div {div.get('LABEL')} has not one mptr"):
            continue
        mptr = pointers[0]
        v.need(mptr.get(f"{{{X}}}title") in group_ids, "CSIP108", rel, "mptr/@xlink:title names no fileGrp")
        v.need(mptr.get("LOCTYPE") == "URL", "CSIP112", rel, "mptr/@LOCTYPE is not URL")
        v.need(mptr.get(f"{{{X}}}type") == "simple", "CSIP111", rel, "mptr/@xlink:type is not simple")
        if v.need(mptr.get(f"{{{X}}}href"), "CSIP110", rel, "mptr/@xlink:href is missing"):
            target = v.resolve("", mptr.get(f"{{{X}}}href"), rel)
            if target and v.need(target in v.src.files, "MISSING-FILE", target, "the mptr target is absent"):
                found.append(target)
    return found


def _check_references(v: Checker, doc: etree._Element, rel: str) -> None:
    """Every FILEID, DMDID, ADMID and mptr xlink:title names an element of the document (XSD does not check)."""
    ids = {element.get("ID") for element in doc.iter() if element.get("ID")}
    for element in doc.iter(_m("fptr"), _m("div"), _m("fileGrp"), _m("file"), _m("mptr")):
        for attribute in ("FILEID", "DMDID", "ADMID", f"{{{X}}}title" if element.tag == _m("mptr") else ""):
            for ref in (element.get(attribute) or "").split() if attribute else ():
                v.need(ref in ids, "IDREF", rel, f"line {element.sourceline}: {attribute.rsplit('}')[-1]} names no ID")


def check_mets(v: Checker, rel: str, folder: str) -> tuple[etree._Element | None, set[str]]:
    """Schema, references, root element, header and file section of the root METS document."""
    tree = v.parse(rel, v.mets_schema)
    if tree is None:
        v.need(rel in v.src.files, "LAYOUT", rel, "METS document is absent")
        return None, set()
    doc = tree.getroot()
    _check_references(v, doc, rel)
    _check_root_element(v, doc, rel, folder, True)
    _check_header(v, doc, rel, True)
    return doc, _check_files(v, doc, rel, True)


_ID_BATCH = 20_000


def check_representation_mets(v: Checker, rel: str, folder: str) -> None:
    """A representation METS, stream-parsed and schema-validated as it is read; file groups checked one by one."""
    if not v.need(rel in v.src.files, "MISSING-FILE", rel, "METS document is absent"):
        return
    # the schema attached to iterparse does not check ID references: we do (FILEID, DMDID, ADMID)
    # ids and references go to the file table's database a batch at a time: they grow with the package
    state = v.src.files
    state.reset_ids()
    ids: list[tuple[str]] = []
    refs: list[tuple[str, str, int]] = []
    doc = None
    try:
        with v.src.open(rel) as stream:
            events = stream_parse(stream, v.mets_schema, events=("start", "end"))
            for event, element in events:
                if event == "start":
                    if doc is None:
                        doc = element
                        _check_root_element(v, doc, rel, folder, False)
                    continue
                if element.get("ID"):
                    ids.append((element.get("ID"),))
                for attribute in ("FILEID", "DMDID", "ADMID"):
                    refs += [(ref, attribute, element.sourceline) for ref in (element.get(attribute) or "").split()]
                if len(ids) + len(refs) > _ID_BATCH:
                    state.add_ids(ids, refs)
                    ids, refs = [], []
                tag = element.tag
                if tag == _m("metsHdr"):
                    _check_header(v, doc, rel, False)
                elif tag == _m("fileSec"):
                    v.need(element.get("ID"), "CSIP59", rel, "fileSec/@ID is missing")
                elif tag == _m("fileGrp"):
                    check_group(v, element, rel, False)
                    free(element)
                elif tag == _m("fptr") or (tag == _m("div") and element.get("LABEL") == "Patient Record"):
                    free(element)
    except etree.XMLSyntaxError as exc:
        v.syntax_error(rel, exc, private=False)
        return
    v.need(doc is not None and doc.find(_m("fileSec")) is not None, "CSIP58", rel, "no fileSec")
    state.add_ids(ids, refs)
    for _ref, attribute, line in state.dangling():
        v.add("IDREF", rel, f"line {line}: {attribute} names no ID")
    if doc is not None:
        check_struct_map(v, doc, rel, root=False)
