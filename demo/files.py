"""Attachment bytes of the synthetic legacy systems: small but well-formed PDF, TIFF and JPEG.

Each maker takes its own ``random.Random`` and a target size in bytes and returns the
file content; the same stream state gives the same bytes.
"""

from __future__ import annotations

import random
import struct

from demo.vocab import PDF_WORDS

__all__ = ["jpeg", "pdf", "tiff"]


def pdf(rnd: random.Random, size: int) -> bytes:
    lines, length, i = ["BT", "/F1 10 Tf", "50 800 Td", "12 TL"], 0, 0
    while length < size - 700:
        line = f"({i:04d} {' '.join(rnd.choices(PDF_WORDS, k=8))}) '"
        lines.append(line)
        length, i = length + len(line) + 1, i + 1
    stream = "\n".join([*lines, "ET"]).encode("ascii")
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def tiff(rnd: random.Random, size: int) -> bytes:
    width = 128
    height = max(1, (size - 128) // width)
    pixels = rnd.randbytes(width * height)
    entries = (
        (256, 3, width),
        (257, 3, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 3, height),
        (279, 4, len(pixels)),
    )
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", tag, typ, 1, v) for tag, typ, v in entries)
    return b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + ifd + struct.pack("<I", 0)


def jpeg(rnd: random.Random, size: int) -> bytes:
    head = (
        b"\xff\xd8\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xdb"
        + struct.pack(">HB", 67, 0)
        + bytes(range(1, 65))
        + b"\xff\xc0"
        + struct.pack(">HBHHB", 11, 8, 480, 640, 1)
        + b"\x01\x11\x00"
        + b"\xff\xda"
        + struct.pack(">HB", 8, 1)
        + b"\x01\x00\x00\x3f\x00"
    )
    scan = rnd.randbytes(max(0, size - len(head) - 2)).replace(b"\xff", b"\xfe")
    return head + scan + b"\xff\xd9"
