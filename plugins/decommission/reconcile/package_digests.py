"""The package side of a fingerprint: record files read back into digests per source table.

A record in a package is attributed to its source table by its id (the staged rows say which
table made which id). On the package side a flagged value is first read back to the source's
(escaped text unescaped, a corrected value's original), so a fingerprint also proves those
transformations reversible. Records are read by a stylesheet (libxslt, in C) into their digest
bodies; a flagged record, and the records of an entity whose tables carry different fields, one
by one in Python.

The validation gate reads every record file anyway: it hands each parsed file to a
:class:`RecordReader` (``stages.validate_stage``), and the ledger keeps the package's digests
beside its SHA-256, so the reconciliation need not parse the packages a second time.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa
from lxml import etree

from decommission.mapping import flags as qflags
from decommission.model import QUALITY, Disposition, Reason
from decommission.package.records import ELEMENTS, NS, camel
from decommission.plan.mapping_spec import MappingSpec
from decommission.reconcile.digest import BASE64_MARK, MOD, compared_fields, digest, record_digest
from decommission.reconcile.readback import CODE_ATTRIBUTES
from decommission.reconcile.timecheck import converted_fields, utc_text
from decommission.validate.tarindex import patient_records

log = logging.getLogger(__name__)

#: a coded element (its name in a record file) -> its attributes -> the model columns they carry
_CODE_ELEMENTS = {camel(column): attributes for column, attributes in CODE_ATTRIBUTES.items()}


class Owners:
    """Which source table made each record of an entity that several tables feed (by record id)."""

    def __init__(self) -> None:
        self.single: dict[str, str] = {}
        self.by_id: dict[str, dict[str, str]] = {}
        self.collisions: list[dict[str, Any]] = []

    def table(self, entity: str, record_id: str) -> str | None:
        if entity in self.single:
            return self.single[entity]
        return self.by_id.get(entity, {}).get(record_id)


def owners_of(spec: MappingSpec, ids: dict[str, list[pa.Array]]) -> Owners:
    owners = Owners()
    feeding: dict[str, list[str]] = defaultdict(list)
    for name, table in spec.tables.items():
        feeding[table.entity].append(name)
    for entity, names in feeding.items():
        if len(names) == 1:
            owners.single[entity] = names[0]
            continue
        # several tables: an id made by two of them is one record for the archive, two for the source
        found: dict[str, str] = {}
        clash: Counter[tuple[str, str]] = Counter()
        for name in names:
            for chunk in ids.get(name, []):
                for record_id in chunk.to_pylist():
                    other = found.setdefault(record_id, name)
                    if other != name:
                        clash[(other, name)] += 1
        owners.by_id[entity] = found
        owners.collisions += [{"entity": entity, "tables": [a, b], "ids": k} for (a, b), k in sorted(clash.items())]
    return owners


class RecordReader:
    """Reads the records of record files back into digests per source table: ``fp`` and ``rows``."""

    def __init__(self, spec: MappingSpec, owners: Owners) -> None:
        self.owners = owners
        self.zone = spec.timezone
        self.fields_of = {name: frozenset(compared_fields(t)) for name, t in spec.tables.items()}
        self.converted = {f for t in spec.tables.values() for f in converted_fields(t)}
        wanted_of: dict[str, set[str]] = defaultdict(set)
        for name, t in spec.tables.items():
            wanted_of[t.entity] |= self.fields_of[name]
        self.tags = {f"{{{NS}}}{element}": entity for entity, (_c, element) in ELEMENTS.items()}
        # per entity, once: the child elements and reference attributes that hold its carried fields
        self.children = {e: {f"{{{NS}}}{camel(f)}": f for f in wanted} for e, wanted in wanted_of.items()}
        self.names = {e: {camel(f): f for f in wanted} for e, wanted in wanted_of.items()}
        self.attributes = {
            e: [(a, f) for f, a in (("case_id", "caseId"), ("document_id", "documentId")) if f in wanted]
            for e, wanted in wanted_of.items()
        }
        self.quality = f"{{{NS}}}{QUALITY}"
        # one field set per entity (each table feeding it carries the same fields): its records are read by
        # a stylesheet (libxslt, in C) into their digest bodies; a flagged record, and the records of an entity
        # whose tables carry different fields, one by one here
        # (an entity no table feeds is uniform too: a record of it has no source table, whatever it holds)
        mixed = {
            t.entity
            for t in spec.tables.values()
            if len({self.fields_of[n] for n, u in spec.tables.items() if u.entity == t.entity}) > 1
        }
        self.transform = etree.XSLT(_stylesheet({e: sorted(w) for e, w in wanted_of.items() if e not in mixed}))
        # an element's start tag, not its container's (``<order`` would also find ``<orders>``)
        self.mixed = [f"<{ELEMENTS[e][1]}{end}".encode() for e in sorted(mixed) for end in (" ", ">")]
        self.parser = etree.XMLParser(huge_tree=True, resolve_entities=False)
        self.fp: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def _table(self, entity: str, record_id: str) -> str:
        return self.owners.table(entity, record_id) or f"({entity}: no source table made this id)"

    def read(self, record: bytes, doc: etree._Element | None = None) -> None:
        """Add one record file's records; ``doc``: the file already parsed (by the validator), else parsed here."""
        if any(m in record for m in self.mixed):
            for _event, node in etree.iterparse(
                io.BytesIO(record), events=("end",), tag=list(self.tags), huge_tree=True, resolve_entities=False
            ):
                self._one(node)
                if self.tags[node.tag] != "patient":
                    node.clear(keep_tail=True)
            return
        if doc is None:
            doc = etree.fromstring(record, self.parser)
        single = self.owners.single
        for mark, body in _netstrings(str(self.transform(doc))):
            entity = _MARKS[mark]
            table = single.get(entity) or self._table(entity, _head(body)[1])
            self.fp[table] += digest(body.encode("utf-8"))
            self.rows[table] += 1
        if b"<quality>" in record:  # the stylesheet leaves flagged records out
            for flags in doc.iter(self.quality):
                self._one(flags.getparent())

    def _one(self, node: Any) -> None:
        """One record, field by field: its flagged transformations undone (see :func:`_as_source`)."""
        entity = self.tags[node.tag]
        record_id = node.get("key" if entity == "patient" else "id", "")
        found = {f: v for a, f in self.attributes.get(entity, ()) if (v := node.get(a)) is not None}
        mine = self.children.get(entity, {})
        flags = None
        wanted = self.names.get(entity, {}).values()
        for child in node:
            field = mine.get(child.tag)
            if field is not None:
                found[field] = child.text or ""
            elif child.tag == self.quality:
                flags = [dict(flag.attrib) for flag in child]
            for attribute, target in _CODE_ELEMENTS.get(etree.QName(child).localname, {}).items():
                if target in wanted and child.get(attribute) is not None:
                    found[target] = child.get(attribute)  # a code's system: an attribute of its element
        if flags:
            if entity == "patient" and any(f.get("reason") == Reason.ORPHAN for f in flags):
                return  # a placeholder holding orphans' rows: no source row of its own
            found = _as_source(
                found, flags, self.names[entity], lambda f, v: utc_text(v, self.zone) if f in self.converted else v
            )
        table = self._table(entity, record_id)
        own = self.fields_of.get(table, frozenset())
        if len(own) != len(found) or not own.issuperset(found):
            found = {k: v for k, v in found.items() if k in own}
        self.fp[table] += record_digest(entity, record_id, found)
        self.rows[table] += 1


def readers() -> int:
    """Processes that read packages back: ``DECOMMISSION_RECONCILE_PROCESSES``, else the CPUs (at most 4)."""
    setting = os.environ.get("DECOMMISSION_RECONCILE_PROCESSES", "").strip()
    return max(1, int(setting)) if setting.isdigit() else max(1, min(4, os.cpu_count() or 1))


def read_all(spec: MappingSpec, packages: list[tuple[Any, Owners]]) -> list[tuple[Counter[str], Counter[str]]]:
    """Digests per source table of each package tar, read with the owners of its partition."""
    workers = min(len(packages), readers())
    if workers <= 1:
        return [_read_package(spec, tar, owners) for tar, owners in packages]
    context = multiprocessing.get_context("spawn")  # no fork of a task process that may hold threads
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            tars, owners = zip(*packages, strict=True)
            return list(pool.map(_read_package, [spec] * len(packages), tars, owners))
    except (BrokenProcessPool, AssertionError, RuntimeError) as exc:
        # a process that may not start others (a daemon, a script without a main guard): slower, not wrong
        log.warning("packages read back in this process: no reader processes (%s)", type(exc).__name__)
        return [_read_package(spec, tar, owners) for tar, owners in packages]


class DigestsWhileValidating:
    """A :class:`RecordReader` the validator feeds (``validate_package(read_record=...)``).

    Its failure costs its digests only, never the validation: the ledger then holds none for the
    package and the reconciliation reads the package back itself.
    """

    def __init__(self, reader: RecordReader | None) -> None:
        self.reader = reader

    def read(self, record: bytes, doc: etree._Element | None) -> None:
        if self.reader is None:
            return
        try:
            self.reader.read(record, doc)
        except Exception as exc:  # noqa: BLE001 - a digest fault must not fail a valid package
            log.warning("no record digests for this package: %s (the reconciliation reads it back)", type(exc).__name__)
            self.reader = None

    def result(self) -> dict[str, Any]:
        """``{"digests": ...}`` for the ledger's validation entry, or nothing."""
        return {} if self.reader is None else {"digests": fingerprints(self.reader)}


def fingerprints(reader: RecordReader) -> dict[str, Any]:
    """What a reader found, as the ledger keeps it: per source table, the fingerprint (hex) and records."""
    return {
        "fingerprints": {t: f"{v % MOD:016x}" for t, v in sorted(reader.fp.items())},
        "rows": dict(sorted(reader.rows.items())),
    }


def _read_package(spec: MappingSpec, tar: Any, owners: Owners) -> tuple[Counter[str], Counter[str]]:
    """One package's digests and records per source table (in a reader process, or in this one)."""
    reader = RecordReader(spec, owners)
    for _key, record in patient_records(tar):
        reader.read(record)
    return reader.fp, reader.rows


def _stylesheet(fields: dict[str, list[str]]) -> etree._Element:
    """XSLT writing each record of a record file as ``<mark><length>:<body>``, the body as
    :func:`record_digest` makes it.

    The mark is a letter naming the entity (:data:`_MARKS`); a body's parts start with digits.

    ``fields``: per entity, its carried fields in sorted order. Lengths are in characters, as XPath's
    ``string-length`` and Python's ``len`` count them.
    """
    xsl = "http://www.w3.org/1999/XSL/Transform"
    templates = []
    for entity, (_container, element) in ELEMENTS.items():
        key = "@key" if entity == "patient" else "@id"
        # constant text written as it is; a value as its length (plus its constant prefix), ':' and itself
        body = [
            f"{len(entity)}:{entity}",
            f'<xsl:value-of select="string-length({key})"/>:<xsl:value-of select="{key}"/>',
        ]
        for field in fields.get(entity, []):
            attribute = {"case_id": "caseId", "document_id": "documentId"}.get(field)
            coded = next(
                (f"r:{el}/@{a}" for el, attrs in _CODE_ELEMENTS.items() for a, t in attrs.items() if t == field), None
            )
            node = f"@{attribute}" if attribute else coded or f"r:{camel(field)}"
            body.append(
                f'<xsl:for-each select="{node}"><xsl:value-of select="string-length(.) + {len(field) + 1}"/>'
                f':{field}=<xsl:value-of select="."/></xsl:for-each>'
            )
        mark = _MARK_OF[entity]
        # the body's length first, so Python splits the output record by record, not part by part
        templates.append(
            f'<xsl:template match="r:{element}"><xsl:variable name="b">{"".join(body)}</xsl:variable>'
            f'{mark}<xsl:value-of select="string-length($b)"/>:<xsl:value-of select="$b"/></xsl:template>'
        )
        templates.append(f'<xsl:template match="r:{element}[r:{QUALITY}]" priority="2"/>')
    text = (
        f'<xsl:stylesheet version="1.0" xmlns:xsl="{xsl}" xmlns:r="{NS}">'
        '<xsl:output method="text" encoding="utf-8"/>'
        # the patient, and the records in each container: no search of the whole tree per entity
        '<xsl:template match="/"><xsl:apply-templates select="r:record/r:patient | r:record/*/*"/></xsl:template>'
        '<xsl:template match="*"/>'
        f"{''.join(templates)}</xsl:stylesheet>"
    )
    return etree.XML(text)


#: the letter that starts an entity's record in the stylesheet's output
_MARK_OF = {entity: chr(ord("a") + i) for i, entity in enumerate(ELEMENTS)}
_MARKS = {mark: entity for entity, mark in _MARK_OF.items()}


def _netstrings(text: str) -> Iterator[tuple[str, str]]:
    """(mark, body) of ``<mark><length>:<body><mark><length>:<body>...`` (lengths in characters)."""
    pos, end = 0, len(text)
    while pos < end:
        colon = text.index(":", pos + 1)
        start = colon + 1
        stop = start + int(text[pos + 1 : colon])
        yield text[pos], text[start:stop]
        pos = stop


def _head(body: str) -> tuple[str, str]:
    """The entity and record id a digest body starts with."""
    colon = body.index(":")
    entity_end = colon + 1 + int(body[:colon])
    second = body.index(":", entity_end)
    return body[colon + 1 : entity_end], body[second + 1 : second + 1 + int(body[entity_end:second])]


def _as_source(
    found: dict[str, str], flags: list[dict[str, str]], names: dict[str, str], convert: Any = None
) -> dict[str, str]:
    """The carried fields as the source holds them: flagged transformations undone by what each flag says.

    :param convert: (field, source text) -> the text the field holds for it (a corrected time's original
        is converted as the source side converts it); None: the text as it is
    """
    if not flags:
        return found
    out = dict(found)
    for flag in flags:
        targets = [names[f] for f in flag.get("fields", "").split() if f in names]
        for target in targets:
            if flag.get("encoding") == qflags.BACKSLASH_U and target in out:
                out[target] = qflags.unescape(out[target])
            elif flag.get("encoding") == qflags.BASE64 and target in out:
                out[target] = BASE64_MARK + out[target]
            if flag.get("disposition") == Disposition.CORRECT:
                original = flag.get("original")
                if original is None:
                    out.pop(target, None)
                else:
                    out[target] = qflags.unescape(original)
                    if convert is not None:
                        out[target] = convert(target, out[target])
    return out
