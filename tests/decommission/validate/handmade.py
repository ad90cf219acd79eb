"""A minimal E-ARK SIP 2.1.0 + eHealth1 package written by hand, as another tool would, not by our packager.

Its layout and METS follow the structure the specifications set out (CSIP 2.1.0 sections 5-6,
SIP 2.1.0, eHealth1 2.0.1): one root folder named after the OBJID; the root METS with the SIP
agents, a dmdSec for the patient manifest and a digiprovMD for PREMIS, file groups for
documentation, schemas and the representation, and the CSIP structural map; a representation
METS for the data. Nothing of ``decommission.package`` writes it: only the schema files are
copied from the package's ``schemas/`` (a tool ships the same published files). Synthetic data.

It differs from our packages where CSIP lets a tool differ: another OBJID, other ids and
labels, a data file that is not our ``record.xml``, no patient manifest of our format, and a
schema in ``schemas/`` that no METS document references (CSIP asks only for the schemas used).
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from decommission.package import mets

OBJID = "urn-uuid-2f1c7f0e-8d2a-4c3e-9b1a-5e6f7a8b9c0d"
CREATED = "2024-05-02T10:00:00+02:00"
SCHEMAS = ("mets.xsd", "xlink.xsd", "DILCISExtensionMETS.xsd", "DILCISExtensionSIPMETS.xsd", "premis.xsd")
UNREFERENCED_SCHEMA = "schemas/unused-extension.xsd"
NAMESPACES = (
    'xmlns:mets="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:csip="https://DILCIS.eu/XML/METS/CSIPExtensionMETS" '
    'xmlns:sip="https://DILCIS.eu/XML/METS/SIPExtensionMETS" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
CONTENT_TYPE = (
    'TYPE="Other" csip:OTHERTYPE="Patient Medical Records" '
    'csip:CONTENTINFORMATIONTYPE="OTHER" csip:OTHERCONTENTINFORMATIONTYPE="citsehpj_v2_0"'
)
REPRESENTATION_TYPE = 'csip:CONTENTINFORMATIONTYPE="OTHER" csip:OTHERCONTENTINFORMATIONTYPE="citsehpj_v2_0"'
SOFTWARE = (
    '<mets:agent ROLE="CREATOR" TYPE="OTHER" OTHERTYPE="SOFTWARE"><mets:name>Handmade SIP writer</mets:name>'
    '<mets:note csip:NOTETYPE="SOFTWARE VERSION">0.9</mets:note></mets:agent>'
)
DATA = {
    "representations/rep1/data/patient-A/journal.txt": "Synthetic journal note, patient A.\n",
    "representations/rep1/data/patient-A/scan.pdf": "%PDF-1.4\n% synthetic scan\n%%EOF\n",
    "representations/rep1/data/patient-B/journal.txt": "Synthetic journal note, patient B.\n",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(ident: str, href: str, data: bytes, mimetype: str, size: int | None = None) -> str:
    return (
        f'<mets:file ID="{ident}" MIMETYPE="{mimetype}" SIZE="{len(data) if size is None else size}" '
        f'CREATED="{CREATED}" '
        f'CHECKSUM="{_sha(data)}" CHECKSUMTYPE="SHA-256">'
        f'<mets:FLocat LOCTYPE="URL" xlink:type="simple" xlink:href="{href}"/></mets:file>'
    )


def _md_ref(href: str, data: bytes, mdtype: str) -> str:
    kind = f'MDTYPE="{mdtype}"' if mdtype == "PREMIS" else f'MDTYPE="OTHER" OTHERMDTYPE="{mdtype}"'
    return (
        f'<mets:mdRef LOCTYPE="URL" xlink:type="simple" xlink:href="{href}" {kind} MIMETYPE="text/xml" '
        f'SIZE="{len(data)}" CREATED="{CREATED}" CHECKSUM="{_sha(data)}" CHECKSUMTYPE="SHA-256"/>'
    )


def _premis() -> bytes:
    objects = "".join(
        "<object xsi:type='file'><objectIdentifier><objectIdentifierType>filepath</objectIdentifierType>"
        f"<objectIdentifierValue>{path}</objectIdentifierValue></objectIdentifier>"
        "<objectCharacteristics><fixity><messageDigestAlgorithm>SHA-256</messageDigestAlgorithm>"
        f"<messageDigest>{_sha(text.encode())}</messageDigest></fixity><size>{len(text.encode())}</size>"
        "<format><formatDesignation><formatName>text/plain</formatName></formatDesignation></format>"
        "</objectCharacteristics></object>"
        for path, text in DATA.items()
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<premis xmlns='http://www.loc.gov/premis/v3' xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "
        f"version='3.0'>{objects}"
        "<event><eventIdentifier><eventIdentifierType>local</eventIdentifierType>"
        "<eventIdentifierValue>event-1</eventIdentifierValue></eventIdentifier><eventType>creation</eventType>"
        f"<eventDateTime>{CREATED}</eventDateTime></event></premis>\n"
    ).encode()


def _manifest() -> bytes:
    patients = "".join(f'<patient folder="representations/rep1/data/{p}"/>' for p in ("patient-A", "patient-B"))
    document = f'<?xml version="1.0" encoding="UTF-8"?>\n<patients xmlns="urn:example:manifest">{patients}</patients>\n'
    return document.encode()


def _representation_mets() -> bytes:
    by_patient: dict[str, list[str]] = {}
    for n, (path, text) in enumerate(DATA.items(), 1):
        patient = path.split("/")[3]
        mimetype = "application/pdf" if path.endswith(".pdf") else "text/plain"
        href = path.removeprefix("representations/rep1/")
        by_patient.setdefault(patient, []).append(_file(f"ID-data-{n}", href, text.encode(), mimetype))
    groups = "".join(
        f'<mets:fileGrp ID="ID-grp-{patient}" USE="Data">{"".join(files)}</mets:fileGrp>'
        for patient, files in by_patient.items()
    )
    pointers = "".join(f'<mets:fptr FILEID="ID-grp-{patient}"/>' for patient in by_patient)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<mets:mets {NAMESPACES} OBJID="rep1" {CONTENT_TYPE} '
        f'PROFILE="{mets.EHEALTH1_REPRESENTATION_PROFILE}">'
        f'<mets:metsHdr CREATEDATE="{CREATED}" RECORDSTATUS="NEW" csip:OAISPACKAGETYPE="SIP">{SOFTWARE}</mets:metsHdr>'
        f'<mets:fileSec ID="ID-filesec-rep1">{groups}</mets:fileSec>'
        '<mets:structMap ID="ID-structmap-rep1" TYPE="PHYSICAL" LABEL="CSIP">'
        f'<mets:div ID="ID-div-rep1" LABEL="rep1"><mets:div ID="ID-div-data" LABEL="Data">{pointers}</mets:div>'
        "</mets:div></mets:structMap></mets:mets>\n"
    ).encode()


def _root_mets(files: dict[str, bytes], declared: dict[str, int]) -> bytes:
    documentation = _file("ID-doc-1", "documentation/about.txt", files["documentation/about.txt"], "text/plain")
    documentation += "".join(
        _file(f"ID-doc-{n}", path, b"", "application/octet-stream", size)
        for n, (path, size) in enumerate(declared.items(), 2)
    )
    schemas = "".join(
        _file(f"ID-schema-{n}", f"schemas/{name}", files[f"schemas/{name}"], "text/xml")
        for n, name in enumerate(SCHEMAS, 1)
    )
    rep = _file("ID-rep1-mets", "representations/rep1/METS.xml", files["representations/rep1/METS.xml"], "text/xml")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<mets:mets {NAMESPACES} OBJID="{OBJID}" LABEL="Hand-made test package" {CONTENT_TYPE} '
        f'PROFILE="{mets.SIP_PROFILES["2.1.0"]}">'
        f'<mets:metsHdr CREATEDATE="{CREATED}" RECORDSTATUS="NEW" csip:OAISPACKAGETYPE="SIP">{SOFTWARE}'
        '<mets:agent ROLE="ARCHIVIST" TYPE="ORGANIZATION"><mets:name>Example region</mets:name>'
        '<mets:note csip:NOTETYPE="IDENTIFICATIONCODE">SE0000000000</mets:note></mets:agent>'
        '<mets:agent ROLE="CREATOR" TYPE="ORGANIZATION"><mets:name>Example submitter</mets:name>'
        '<mets:note csip:NOTETYPE="IDENTIFICATIONCODE">SE0000000000</mets:note></mets:agent>'
        '<mets:agent ROLE="PRESERVATION" TYPE="ORGANIZATION"><mets:name>Example archive</mets:name></mets:agent>'
        '<mets:altRecordID TYPE="SUBMISSIONAGREEMENT">SA-EXAMPLE-1</mets:altRecordID></mets:metsHdr>'
        f'<mets:dmdSec ID="ID-dmd-1" CREATED="{CREATED}" STATUS="CURRENT">'
        f"{_md_ref('metadata/descriptive/patients.xml', files['metadata/descriptive/patients.xml'], 'PatientList')}"
        "</mets:dmdSec>"
        '<mets:amdSec><mets:digiprovMD ID="ID-premis-1" STATUS="CURRENT">'
        f"{_md_ref('metadata/preservation/premis.xml', files['metadata/preservation/premis.xml'], 'PREMIS')}"
        "</mets:digiprovMD></mets:amdSec>"
        '<mets:fileSec ID="ID-filesec">'
        f'<mets:fileGrp ID="ID-grp-doc" USE="Documentation">{documentation}</mets:fileGrp>'
        f'<mets:fileGrp ID="ID-grp-schemas" USE="Schemas">{schemas}</mets:fileGrp>'
        f'<mets:fileGrp ID="ID-grp-rep1" USE="Representations/rep1" {REPRESENTATION_TYPE}>{rep}'
        "</mets:fileGrp></mets:fileSec>"
        '<mets:structMap ID="ID-structmap" TYPE="PHYSICAL" LABEL="CSIP">'
        f'<mets:div ID="ID-div-root" LABEL="{OBJID}">'
        '<mets:div ID="ID-div-metadata" LABEL="Metadata" DMDID="ID-dmd-1" ADMID="ID-premis-1"/>'
        '<mets:div ID="ID-div-doc" LABEL="Documentation"><mets:fptr FILEID="ID-grp-doc"/></mets:div>'
        '<mets:div ID="ID-div-schemas" LABEL="Schemas"><mets:fptr FILEID="ID-grp-schemas"/></mets:div>'
        '<mets:div ID="ID-div-rep1" LABEL="Representations/rep1">'
        '<mets:mptr LOCTYPE="URL" xlink:type="simple" xlink:href="representations/rep1/METS.xml" '
        'xlink:title="ID-grp-rep1"/></mets:div></mets:div></mets:structMap></mets:mets>\n'
    ).encode()


def write_folder(base: Path, declared: dict[str, int] | None = None) -> Path:
    """Write the package folder under ``base`` and return it.

    :param declared: documentation files the root METS lists with that SIZE but whose bytes the
        caller supplies in a container (written empty here): a file too large to write
    """
    declared = declared or {}
    files: dict[str, bytes] = {path: text.encode() for path, text in DATA.items()}
    files.update(dict.fromkeys(declared, b""))
    files["documentation/about.txt"] = b"A hand-made E-ARK SIP for interoperability tests.\n"
    for name in SCHEMAS:
        files[f"schemas/{name}"] = (mets.SCHEMA_DIR / name).read_bytes()
    files[UNREFERENCED_SCHEMA] = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n'
    files["metadata/descriptive/patients.xml"] = _manifest()
    files["metadata/preservation/premis.xml"] = _premis()
    files["representations/rep1/METS.xml"] = _representation_mets()
    files["METS.xml"] = _root_mets(files, declared)
    root = base / OBJID
    shutil.rmtree(root, ignore_errors=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_zip(folder: Path, target: Path) -> Path:
    """The folder as a zip with its root folder inside, deflated, folders as entries (as zip tools write it)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder.name}/", b"")
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder.parent).as_posix()
            if path.is_dir():
                archive.writestr(name + "/", b"")
            else:
                archive.write(path, name)
    return target
