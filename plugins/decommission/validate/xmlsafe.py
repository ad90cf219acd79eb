"""XML as the validator parses it: no DTD, no entity, no network, bounded memory whatever the input.

Every document is parsed by libxml2 with ``resolve_entities=False``, ``no_network=True``,
``load_dtd=False`` and without ``huge_tree`` (so a text node, comment or attribute value over
10 MB and nesting over 256 levels are errors). A document with a DOCTYPE is refused outright
(:class:`Refused`): nothing of ours uses DTDs, and refusing them leaves no entity to expand,
no external subset to fetch and no internal subset to trust.

Small documents (up to :data:`WHOLE` bytes: nearly every record file) are read whole and
parsed as a tree, the fastest way for many small files. Larger ones are parsed by
``iterparse`` as they are read, through :class:`_Guard`, because libxml2's push parser holds
a whole start tag, comment, processing instruction or CDATA section in memory before it looks
at it: a 64 MB start tag of attributes took 1.6 GB. The guard refuses a document once
:data:`WINDOW` bytes have been read without the parser producing an element, and a tag of more
than :data:`MAX_ATTRIBUTES` attributes (``=`` signs since the last ``<``), so what libxml2
holds stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

from lxml import etree

#: documents up to this size are read whole and parsed as a tree
WHOLE = 1 << 20
#: bytes the parser may take in without giving an element (above libxml2's 10 MB text limit)
WINDOW = 32 << 20
#: ``=`` signs since the last ``<`` (the attributes of one tag, or one text's equals signs)
MAX_ATTRIBUTES = 100_000
_READ = 1 << 16


class Refused(Exception):  # noqa: N818 (a verdict on the document)
    """The document is not parsed further: a DOCTYPE, or a construct beyond the bounds."""


class Incomplete(Refused):
    """The parser stopped before the end of the document (see :func:`iterparse`)."""


def parser() -> etree.XMLParser:
    """A parser for whole documents (one per validation run: lxml parsers are not shared between threads)."""
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False)


def refuse_doctype(tree: etree._ElementTree) -> None:
    """Raise :class:`Refused` when the document has a DOCTYPE (internal subset, SYSTEM or PUBLIC id)."""
    info = tree.docinfo
    if info.internalDTD is not None or info.doctype or info.system_url or info.public_id:
        raise Refused("it has a DOCTYPE: DTDs and entities are refused")


def parse_whole(data: bytes, whole_parser: etree.XMLParser) -> etree._ElementTree:
    """A small document as a tree (raises ``etree.XMLSyntaxError`` or :class:`Refused`)."""
    tree = etree.ElementTree(etree.fromstring(data, whole_parser))
    refuse_doctype(tree)
    return tree


class _Guard:
    """The file object ``iterparse`` reads: counts what the parser took in since its last element."""

    __slots__ = ("_check", "_equals", "_stream", "unproductive")

    def __init__(self, stream: IO[bytes], check: Callable[[], None]) -> None:
        self._stream, self._check = stream, check
        self.unproductive = 0
        self._equals = 0

    def read(self, size: int = -1) -> bytes:
        self._check()
        data = self._stream.read(size if 0 < size <= _READ else _READ)
        self.unproductive += len(data)
        if self.unproductive > WINDOW:
            raise Refused(f"more than {WINDOW >> 20} MiB without an element: a tag, comment or section too long")
        last = data.rfind(b"<")
        self._equals = data.count(b"=", last) if last >= 0 else self._equals + data.count(b"=")
        if self._equals > MAX_ATTRIBUTES:
            raise Refused(f"more than {MAX_ATTRIBUTES} attributes (or '=' signs) in one tag or text")
        return data


def iterparse(
    stream: IO[bytes], schema: etree.XMLSchema | None, check: Callable[[], None], **options: Any
) -> Iterator[tuple[str, etree._Element]]:
    """``iterparse`` with ``schema`` validated as it reads; raises :class:`Refused` as set out above.

    With a schema and ``resolve_entities=False``, lxml (6.1) ends the iteration silently at a
    well-formedness error, a truncated document included, instead of raising: so the last
    event must be the end of the document element, or the document is :class:`Incomplete`.

    :param check: called before each read (the validator's time budget)
    :param options: ``events`` (with ``"end"``) and ``tag`` of ``etree.iterparse``; with ``tag``,
        name the document element and elements frequent enough that no :data:`WINDOW` of a
        valid document goes by without one
    """
    guard = _Guard(stream, check)
    events = etree.iterparse(
        guard, schema=schema, no_network=True, resolve_entities=False, load_dtd=False, huge_tree=False, **options
    )
    last: tuple[str, etree._Element] | None = None
    for item in events:
        guard.unproductive = 0
        if last is None:
            refuse_doctype(item[1].getroottree())
        last = item
        yield item
    if last is None and events.root is not None:
        refuse_doctype(events.root.getroottree())
    if last is None or last[0] != "end" or last[1].getparent() is not None:
        raise Incomplete("not well-formed XML: the parser stopped before the end of the document")


def free(element: etree._Element) -> None:
    """Drop an element's content and the siblings before it (iterparse keeps them otherwise)."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]
