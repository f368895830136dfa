"""Two hundred hostile files through every upload channel: refused with a clear reason, never a 500,
nothing stored (docs/decisions.md, "What the upload check refuses").

The files are built here, in code (no binary files in git): decompression bombs of several kinds,
deep nesting, huge page counts and sizes, malformed cross-reference tables, truncated files, active
content (JavaScript, Launch, embedded files, XFA, actions that submit, import or open other files),
polyglots and files that are not PDFs at all. Each goes through the journal post upload and the
inbox upload (the test client) and through the sync folder and the SvarInn intake (their service
functions), all checked in the run's one checking child (pdfcheck.batch()).
"""
from __future__ import annotations

import functools
import gzip
import io
import os
import struct
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask_babel import force_locale
from markupsafe import escape
from pypdf import PdfWriter
from pypdf._codecs._codecs import LzwCodec
from pypdf.generic import DictionaryObject, NameObject, TextStringObject
from sqlalchemy import func, select

from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.files.errors import MESSAGES
from ppt_web.inbound.folder import write_example
from ppt_web.models import Document, InboxItem, InboxSource, InboxStatus, JournalPost
from ppt_web.models.files import StoredFile
from ppt_web.postreg import intake, mail_intake, sync_intake

from . import builders
from .conftest import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.one_database,
              pytest.mark.app_config(PPT_SYNC_SETTLE_SECONDS=0, PPT_SYNC_INCOMPLETE_SECONDS=0)]

BOMB = "bomb"
JS = b"<< /S /JavaScript /JS (app.launchURL\\('https://example.invalid'\\)) >>"
LAUNCH = b"<< /S /Launch /Win << /F (cmd.exe) /P (/c calc) >> /F (calc) >>"
ACTIVE = {"javascript", "launch", "embedded_file", "xfa", "external_action"}
BROKEN = {"damaged", "not_pdf", "extra_data", "empty", "no_pages", "bomb"}


# --- a small PDF writer that can also write what no good writer would -------------------------------------

def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def raw_pdf(objects: dict[int, bytes], *, root: int = 1, packed: bool = False, trailer: bytes = b"",
            header: bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") -> bytes:
    """Objects by number; packed puts every non-stream object in an object stream (with an xref stream)."""
    out = bytearray(header)
    offsets: dict[int, tuple[int, int, int]] = {}  # number -> (type, field 2, field 3)
    if packed:
        inline = {n: body for n, body in objects.items() if b"stream\n" in body}
        small = {n: body for n, body in objects.items() if n not in inline}
        numbers = sorted(small)
        table, bodies = b"", b""
        for n in numbers:
            table += b"%d %d " % (n, len(bodies))
            bodies += small[n] + b"\n"
        objstm = max(objects) + 1
        inline[objstm] = stream(zlib.compress(table + bodies),
                                b"/Type /ObjStm /N %d /First %d /Filter /FlateDecode" % (len(numbers), len(table)))
        for index, n in enumerate(numbers):
            offsets[n] = (2, objstm, index)
        objects = inline
    for n in sorted(objects):
        offsets[n] = (1, len(out), 0)
        out += b"%d 0 obj\n%s\nendobj\n" % (n, objects[n])
    size = max(offsets) + 2
    if packed:
        xref_number = size - 1
        offsets[xref_number] = (1, len(out), 0)
        rows = b"".join(struct.pack(">BIH", *offsets.get(n, (0, 0, 65535 if n == 0 else 0))) for n in range(size))
        out += b"%d 0 obj\n%s\nendobj\n" % (xref_number, stream(
            rows, b"/Type /XRef /W [1 4 2] /Size %d /Root %d 0 R %s" % (size, root, trailer)))
        out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number][1]
        return bytes(out)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (size - 1)
    for n in range(1, size - 1):
        out += b"%010d 00000 n \n" % offsets[n][1] if n in offsets else b"0000000000 00000 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (size - 1, root, trailer, start)
    return bytes(out)


def doc(*, catalog: bytes = b"", page: bytes = b"", content: bytes | None = None, extra: dict | None = None,
        packed: bool = False, pages: bytes | None = None, trailer: bytes = b"", box: bytes = b"[0 0 595 842]") -> bytes:
    """A one-page document with additions to the catalog (1), the page tree (2), the page (3), its content (4)."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog,
        2: pages or b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents 4 0 R /Resources << >> %s >>" % (box, page),
        4: content if content is not None else stream(b"BT /F1 12 Tf 72 720 Td (Hei) Tj ET"),
    }
    objects.update(extra or {})
    return raw_pdf(objects, packed=packed, trailer=trailer)


@functools.cache
def zeros_deflated(megabytes: int, level: int = 9) -> bytes:
    """megabytes of zeros, deflated a chunk at a time (never held whole)."""
    packer = zlib.compressobj(level)
    chunk = bytes(1024 * 1024)
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


def lzw_zeros(count: int) -> bytes:
    """LZW of count zero bytes, as pypdf's encoder writes it, without its slow byte-by-byte loop: for a run
    of zeros the longest match grows by one each step, so code 256 + n stands for n zeros."""
    codes, longest, next_code, left = [256], 1, 258, count
    while left > 0:
        take = min(longest, left)
        codes.append(0 if take == 1 else 256 + take)
        left -= take
        if next_code <= 4095:
            longest, next_code = take + 1, next_code + 1
        else:
            codes.append(256)
            longest, next_code = 1, 258
    codes.append(257)
    return LzwCodec()._pack_codes_into_bytes(codes)


def pypdf_bytes(build: Callable[[PdfWriter], None], pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    build(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def nested(depth: int, opening: bytes, closing: bytes, inner: bytes = b"0") -> bytes:
    return opening * depth + inner + closing * depth


# --- the two hundred files --------------------------------------------------------------------------------

def hostile_files() -> dict[str, tuple[bytes, set[str]]]:
    """name -> (bytes, the reasons a refusal may give)."""
    files: dict[str, tuple[bytes, set[str]]] = {}

    def add(name: str, data: bytes, reasons: set[str]) -> None:
        assert name not in files, name
        files[name] = (data, reasons)

    # Decompression bombs: Flate, chains of filters, LZW, run length; in content, images, fonts, object
    # streams, metadata, unreferenced objects, and so many streams that only the file's total is too much.
    big = zeros_deflated(200)
    flate = b"/Filter /FlateDecode"
    link_bomb = b"/Annots [5 0 R]"
    for packed in (False, True):
        tag = " packed" if packed else ""
        add(f"bomb: content stream{tag}", doc(content=stream(big, flate), packed=packed), {BOMB})
        add(f"bomb: second content stream{tag}", doc(page=b"/Annots []", packed=packed, content=b"[5 0 R 6 0 R]",
                                                    extra={5: stream(b"q Q"), 6: stream(big, flate)}), {BOMB})
        add(f"bomb: image{tag}", doc(page=b"/Resources << /XObject << /Im1 5 0 R >> >>", packed=packed, extra={
            5: stream(big, b"/Type /XObject /Subtype /Image /Width 100 /Height 100 /ColorSpace /DeviceGray "
                           b"/BitsPerComponent 8 " + flate)}), {BOMB})
        add(f"bomb: form xobject{tag}", doc(page=b"/Resources << /XObject << /Fm1 5 0 R >> >>", packed=packed,
                                            extra={5: stream(big, b"/Type /XObject /Subtype /Form /BBox [0 0 9 9] "
                                                                  + flate)}), {BOMB})
        add(f"bomb: font file{tag}", doc(packed=packed, extra={
            5: b"<< /Type /FontDescriptor /FontName /X /FontFile2 6 0 R >>", 6: stream(big, flate)}), {BOMB})
        add(f"bomb: metadata{tag}", doc(catalog=b"/Metadata 5 0 R", packed=packed, extra={
            5: stream(big, b"/Type /Metadata /Subtype /XML " + flate)}), {BOMB})
        add(f"bomb: unreferenced object{tag}", doc(packed=packed, extra={9: stream(big, flate)}), {BOMB})
        add(f"bomb: ICC profile{tag}", doc(packed=packed, extra={5: stream(big, b"/N 3 " + flate)}), {BOMB})
        add(f"bomb: with PNG predictor{tag}", doc(packed=packed, content=stream(
            big, flate + b" /DecodeParms << /Predictor 12 /Columns 100 >>")), {BOMB})
        add(f"bomb: appearance stream{tag}", doc(page=link_bomb, packed=packed, extra={
            5: b"<< /Type /Annot /Subtype /Square /Rect [0 0 9 9] /AP << /N 6 0 R >> >>",
            6: stream(big, b"/Type /XObject /Subtype /Form /BBox [0 0 9 9] " + flate)}), {BOMB})
        add(f"bomb: shading{tag}", doc(page=b"/Resources << /Shading << /Sh1 5 0 R >> >>", packed=packed, extra={
            5: stream(big, b"/ShadingType 4 /ColorSpace /DeviceGray /BitsPerCoordinate 8 /BitsPerComponent 8 "
                           b"/BitsPerFlag 8 /Decode [0 1 0 1 0 1] " + flate)}), {BOMB})
        add(f"bomb: Type 3 glyph{tag}", doc(page=b"/Resources << /Font << /F1 5 0 R >> >>", packed=packed, extra={
            5: b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 9 9] /FontMatrix [1 0 0 1 0 0] /CharProcs "
               b"<< /a 6 0 R >> /Encoding << /Differences [97 /a] >> /FirstChar 97 /LastChar 97 /Widths [9] >>",
            6: stream(big, flate)}), {BOMB})
        add(f"bomb: thumbnail{tag}", doc(page=b"/Thumb 5 0 R", packed=packed, extra={
            5: stream(big, b"/Width 10 /Height 10 /BitsPerComponent 8 /ColorSpace /DeviceGray " + flate)}), {BOMB})
    twice = zlib.compress(zeros_deflated(400, 1), 9)
    add("bomb: Flate twice", doc(content=stream(twice, b"/Filter [/FlateDecode /FlateDecode]")), {BOMB})
    add("bomb: ASCIIHex then Flate", doc(content=stream(big.hex().encode() + b">",
                                                          b"/Filter [/ASCIIHexDecode /FlateDecode]")), {BOMB})
    add("bomb: LZW", doc(content=stream(lzw_zeros(200_000_000), b"/Filter /LZWDecode")), {BOMB})
    add("bomb: run length", doc(content=stream(b"\x81\x00" * 700_000 + b"\x80", b"/Filter /RunLengthDecode")),
        {BOMB})
    add("bomb: object stream", _object_stream_bomb(big), {BOMB, "damaged"})
    add("bomb: xref stream", _xref_stream_bomb(big), {BOMB, "damaged"})
    many = zeros_deflated(100)
    add("bomb: eleven streams of 100 MB", doc(content=b"[" + b" ".join(b"%d 0 R" % n for n in range(5, 16)) + b"]",
                                               extra={n: stream(many, flate) for n in range(5, 16)}), {BOMB})
    add("bomb: one stream referenced many times", doc(
        content=b"[" + b" 5 0 R" * 20 + b"]", extra={5: stream(big, flate)}), {BOMB})
    for side in (20_000, 100_000, 1_000_000):
        add(f"bomb: JPEG image {side} pixels square", doc(page=b"/Resources << /XObject << /Im1 5 0 R >> >>", extra={
            5: stream(b"\xff\xd8\xff\xd9", b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                                           b"/DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode" % (side, side))}),
            {BOMB})
    add("bomb: image 2 000 000 x 100", doc(page=b"/Resources << /XObject << /Im1 5 0 R >> >>", extra={
        5: stream(b"\x00", b"/Subtype /Image /Width 2000000 /Height 100 /BitsPerComponent 1 /Filter /CCITTFaxDecode")}),
        {BOMB})
    add("bomb: JBIG2 image 50 000 square", doc(extra={
        5: stream(b"\x00", b"/Subtype /Image /Width 50000 /Height 50000 /BitsPerComponent 1 /Filter /JBIG2Decode")}),
        {BOMB})

    # Deep nesting, huge page counts, huge pages.
    for depth in (1_000, 10_000, 100_000):
        add(f"nesting: arrays {depth} deep", doc(page=b"/X " + nested(depth, b"[", b"]")), BROKEN | {BOMB})
        add(f"nesting: dictionaries {depth} deep", doc(page=b"/X " + nested(depth, b"<< /A ", b" >>")), BROKEN)
    for depth in (150, 2_000):
        kids = {5 + n: b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (6 + n) for n in range(depth)}
        kids[5 + depth] = b"<< /Type /Page /MediaBox [0 0 9 9] >>"
        add(f"nesting: page tree {depth} deep", doc(pages=b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>", extra=kids),
            BROKEN | {"no_pages"})
    add("page tree: a cycle", doc(pages=b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>"), BROKEN)
    add("page tree: kid is its own parent", doc(
        pages=b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        extra={5: b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>"}), BROKEN)
    for count in (6_000, 100_000, 2_000_000):
        add(f"pages: /Count {count} (a lie)", doc(pages=b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count),
            {"too_many_pages"})
    add("pages: 6 000 real pages", doc(pages=b"<< /Type /Pages /Kids [" + b"3 0 R " * 6000 + b"] /Count 6000 >>"),
        {"too_many_pages", BOMB})
    add("pages: 120 000 references to one page", doc(
        pages=b"<< /Type /Pages /Kids [" + b"3 0 R " * 120_000 + b"] /Count 1 >>"), {"too_many_pages", BOMB})
    fan = {5 + n: b"<< /Type /Pages /Kids [" + b"3 0 R " * 100 + b"] /Count 100 >>" for n in range(100)}
    add("pages: 100 x 100 fan-out", doc(pages=b"<< /Type /Pages /Kids [" + b" ".join(
        b"%d 0 R" % n for n in fan) + b"] /Count 1 >>", extra=fan), {"too_many_pages", BOMB})
    for box in (b"[0 0 1000000000 1000000000]", b"[0 0 14401 100]", b"[0 0 100 20000]",
                b"[-1e30 -1e30 1e30 1e30]", b"[0 0 99999999999999999999 5]"):
        add(f"page size: {box.decode()}", doc(box=box, page=b"/CropBox [0 0 9 9]"),
            {"page_too_large", "damaged"})

    # Malformed cross-reference tables and trailers, and truncated files.
    good = doc()
    add("xref: startxref past the end, no objects", b"%PDF-1.7\ntrailer\n<< /Root 1 0 R >>\nstartxref\n999999\n"
        b"%%EOF\n", BROKEN)
    looped = doc(catalog=b"/OpenAction " + JS)
    at = looped.rindex(b"startxref")
    add("xref: /Prev loop, JavaScript on open", looped[:at].replace(
        b"trailer\n<<", b"trailer\n<< /Prev %d" % looped.index(b"xref\n0 ")) + looped[at:], BROKEN | {"javascript"})
    add("xref: a billion entries", good.replace(b"xref\n0 ", b"xref\n0 1000000000 "), BROKEN | ACTIVE)
    add("xref: no trailer, no root", b"%PDF-1.7\n1 0 obj\n<< /Type /Foo >>\nendobj\n%%EOF\n", BROKEN)
    add("xref: root is a number", b"%PDF-1.7\ntrailer\n<< /Root 5 >>\n%%EOF\n", BROKEN)
    add("xref: root points at itself", raw_pdf({1: b"1 0 R"}), BROKEN)
    add("xref: pages points at the catalog", raw_pdf({1: b"<< /Type /Catalog /Pages 1 0 R >>"}), BROKEN)
    add("xref: stream length far too large", doc(content=b"<< /Length 99999999 >>\nstream\nBT ET\nendstream"),
        BROKEN)
    add("xref: negative stream length, Launch on open", doc(
        catalog=b"/OpenAction " + LAUNCH, content=b"<< /Length -5 >>\nstream\nBT ET\nendstream"), BROKEN | {"launch"})
    add("xref: xref stream /W [9 9 9]", _xref_stream_bomb(b"", widths=b"[9 9 9]"), BROKEN | {BOMB})
    js_hidden = b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"
    broken_xref = doc().replace(b"0000000", b"9999999")
    add("xref: offsets wrong, JavaScript found by the rebuild", broken_xref.replace(
        b"<< /Type /Catalog /Pages 2 0 R  >>", js_hidden), {"javascript"} | BROKEN)
    add("xref: JavaScript only in a later revision", _incremental_js(good), {"javascript"})
    add("xref: Launch only in a later revision with a broken offset",
        _incremental_js(good, b"<< /S /Launch /F (cmd.exe) >>", broken=True), {"launch"} | BROKEN)
    three = builders.make_pdf(3, tag="truncated")
    for fraction in (0.05, 0.3, 0.5, 0.7, 0.9, 0.99):
        cut = three[: int(len(three) * fraction)]
        add(f"truncated at {fraction:.0%}", cut, {"damaged", "not_pdf"})
        if fraction < 0.95:  # cut inside the trailer, the rest is a whole document again
            add(f"truncated at {fraction:.0%}, %%EOF added", cut + b"\n%%EOF\n", BROKEN)
    add("truncated: header only", b"%PDF-1.7\n", {"damaged"})
    add("truncated: header and %%EOF", b"%PDF-1.7\n%%EOF\n", BROKEN)
    add("truncated: inside a bomb stream", doc(content=stream(big, flate))[:150_000] + b"\n%%EOF\n", BROKEN)

    # Active content: JavaScript, Launch, embedded files, XFA, SubmitForm/ImportData/GoToR, automatic URI;
    # plain and in an object stream; through names escaped with #xx.
    js, launch = JS, LAUNCH
    link = b"/Annots [5 0 R]"
    for packed in (False, True):
        tag = " packed" if packed else ""
        placements = {
            "javascript": {
                "open action": {"catalog": b"/OpenAction " + js},
                "open action, script in a stream": {"catalog": b"/OpenAction << /S /JavaScript /JS 5 0 R >>",
                                                    "extra": {5: stream(b"app.alert(1)")}},
                "document names tree": {"catalog": b"/Names << /JavaScript << /Names [(a) " + js + b"] >> >>"},
                "page open action (AA)": {"page": b"/AA << /O " + js + b" >>"},
                "document will-close (AA)": {"catalog": b"/AA << /WC " + js + b" >>"},
                "link annotation": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /Link /Rect [0 0 99 99] /A " + js + b" >>"}},
                "form field keystroke": {"page": link, "catalog": b"/AcroForm << /Fields [5 0 R] >>", "extra": {
                    5: b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (a) /Rect [0 0 9 9] /AA << /K " + js + b" >> >>"}},
                "chained after a harmless action (Next)": {"catalog": b"/OpenAction << /S /Named /N /NextPage "
                                                                      b"/Next " + js + b" >>"},
                "rendition action with JS": {"catalog": b"/OpenAction << /S /Rendition /JS (app.alert(1)) >>"},
                "name written with #xx escapes": {"catalog": b"/OpenAction << /S /JavaScr#69pt /J#53 (x) >>"},
                "unreferenced object": {"extra": {9: js}},
                "name tree with kids": {"catalog": b"/Names << /JavaScript 5 0 R >>", "extra": {
                    5: b"<< /Kids [6 0 R] >>", 6: b"<< /Limits [(a) (a)] /Names [(a) " + js + b"] >>"}},
                "page becomes visible (AA)": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /Widget /Rect [0 0 9 9] /AA << /PV " + js + b" >> >>"}},
                "outline item": {"catalog": b"/Outlines 5 0 R", "extra": {
                    5: b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
                    6: b"<< /Title (a) /Parent 5 0 R /A " + js + b" >>"}},
            },
            "launch": {
                "open action": {"catalog": b"/OpenAction " + launch},
                "link annotation": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /Link /Rect [0 0 99 99] /A " + launch + b" >>"}},
                "page close (AA)": {"page": b"/AA << /C " + launch + b" >>"},
                "indirect action": {"catalog": b"/OpenAction 5 0 R", "extra": {5: launch}},
            },
            "embedded_file": {
                "names tree": {"catalog": b"/Names << /EmbeddedFiles << /Names [(a.exe) 5 0 R] >> >>", "extra": {
                    5: b"<< /Type /Filespec /F (a.exe) /EF << /F 6 0 R >> >>",
                    6: stream(b"MZ\x90\x00", b"/Type /EmbeddedFile")}},
                "file attachment annotation": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] /FS 6 0 R >>",
                    6: b"<< /Type /Filespec /F (a.txt) /EF << /F 7 0 R >> >>", 7: stream(b"hello")}},
                "GoToE action": {"catalog": b"/OpenAction << /S /GoToE /T << /R /C /N (a) >> >>"},
                "embedded file stream only": {"extra": {5: stream(b"PK\x03\x04", b"/Type /EmbeddedFile")}},
            },
            "xfa": {
                "XFA as a stream": {"catalog": b"/AcroForm << /Fields [] /XFA 5 0 R >>", "extra": {
                    5: stream(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'/>")}},
                "XFA as packets": {"catalog": b"/AcroForm << /Fields [] /XFA [(template) 5 0 R] >>", "extra": {
                    5: stream(b"<template/>")}},
                "NeedsRendering": {"catalog": b"/NeedsRendering true /AcroForm << /Fields [] /XFA 5 0 R >>",
                                   "extra": {5: stream(b"<xdp/>")}},
            },
            "external_action": {
                "SubmitForm on open": {"catalog": b"/OpenAction << /S /SubmitForm /F << /FS /URL "
                                                  b"/F (https://example.invalid/x) >> >>"},
                "ImportData": {"catalog": b"/OpenAction << /S /ImportData /F (\\\\\\\\host\\\\share\\\\a.fdf) >>"},
                "GoToR to a network share": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /GoToR /F (\\\\\\\\host\\\\s.pdf) "
                       b"/D [0 /Fit] >> >>"}},
                "URI opened on open": {"catalog": b"/OpenAction << /S /URI /URI (https://example.invalid/beacon) >>"},
                "URI opened by a page (AA)": {"page": b"/AA << /O << /S /URI /URI (https://example.invalid/) >> >>"},
                "URI after a harmless action (Next)": {"catalog": b"/OpenAction << /S /Named /N /FirstPage "
                                                                  b"/Next [<< /S /URI /URI (https://x.invalid) >>] >>"},
                "submit button": {"page": link, "extra": {
                    5: b"<< /Type /Annot /Subtype /Widget /FT /Btn /Rect [0 0 9 9] /A << /S /SubmitForm "
                       b"/F (https://example.invalid) >> >>"}},
            },
        }
        for kind, variants in placements.items():
            for where, parts in variants.items():
                add(f"{kind}: {where}{tag}", doc(packed=packed, **parts), {kind})
    add("javascript and launch and an embedded file", doc(
        catalog=b"/OpenAction " + js + b" /Names << /EmbeddedFiles << /Names [] >> >>", page=b"/AA << /O " + launch
        + b" >>"), {"javascript"})
    add("javascript added by pypdf", pypdf_bytes(_pypdf_javascript), {"javascript"})
    add("attachment added by pypdf", pypdf_bytes(lambda w: w.add_attachment("faktura.xml", b"<x/>")),
        {"embedded_file"})

    # Not PDFs at all, with a .pdf name; empty files; archives; polyglots.
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(2000) + b"\xff\xd9"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("brev.pdf", good)
    not_pdf = {
        "PNG": b"\x89PNG\r\n\x1a\n" + bytes(100), "JPEG": jpeg, "GIF": b"GIF89a" + bytes(100),
        "zip": zipped.getvalue(), "docx": b"PK\x03\x04" + b"[Content_Types].xml" + bytes(1500),
        "gzip": gzip.compress(good), "Windows program": b"MZ\x90\x00" + bytes(2000),
        "ELF program": b"\x7fELF" + bytes(2000), "HTML with a script": b"<html><script>alert(1)</script></html>" * 40,
        "SVG with a script": b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>" * 30,
        "plain text": b"Hei\n" * 500, "JSON": b'{"a": 1}' * 200, "RTF": b"{\\rtf1\\ansi hei}" * 100,
        "PostScript": b"%!PS-Adobe-3.0\n" * 100, "random bytes": bytes((n * 7919) % 251 for n in range(5000)),
        "NUL bytes": bytes(5000), "header after the first kilobyte": bytes(1100) + good,
        "UTF-16 text": "%PDF-1.7 hei".encode("utf-16"), "7z": b"7z\xbc\xaf\x27\x1c" + bytes(100),
        "tar": b"brev.pdf".ljust(257, b"\x00") + b"ustar" + bytes(300),
    }
    not_pdf.update({
        "Office 97 document": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), "RAR": b"Rar!\x1a\x07\x00" + bytes(99),
        "BMP": b"BM" + bytes(200), "TIFF": b"II*\x00" + bytes(200), "WebP": b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(99),
        "MP3": b"ID3\x03" + bytes(500), "e-mail": b"From: a@example.invalid\r\nSubject: brev\r\n\r\nHei\r\n" * 20,
        "Windows shortcut": b"L\x00\x00\x00\x01\x14\x02\x00" + bytes(300), "icon": b"\x00\x00\x01\x00" + bytes(300),
        "XML": b"<?xml version='1.0'?><brev>hei</brev>" * 30, "CSV": b"a;b;c\n1;2;3\n" * 100,
        "Python": b"import os\nos.system('calc')\n" * 30,
    })
    for name, data in not_pdf.items():
        add(f"not a PDF: {name}", data, {"not_pdf", "extra_data"})
    for name, data in {"empty": b"", "one space": b" ", "a newline": b"\n", "%PDF- only": b"%PDF-"}.items():
        add(f"empty: {name}", data, {"empty", "not_pdf", "damaged"})
    add("empty: a thousand NULs then %%EOF", bytes(1000) + b"%%EOF", {"not_pdf"})
    polyglots = {
        "HTML before the header": b"<html><script>alert(1)</script>" + good,
        "JPEG before the header": jpeg[:600] + good,
        "ZIP after %%EOF": good + zipped.getvalue(),
        "ZIP with the PDF stored first": _zip_first(good),
        "HTML after %%EOF": good + b"<script>alert(1)</script>",
        "shell script after %%EOF": good + b"#!/bin/sh\nrm -rf /\n",
        "second document after %%EOF": good + b"\n" + good[:200],
        "BOM before the header": b"\xef\xbb\xbf" + good,
        "GIF header before the PDF": b"GIF89a/*" + good,
        "PDF inside a JPEG comment": b"\xff\xd8\xff\xfe\x04\x00" + good + b"\xff\xd9",
    }
    for name, data in polyglots.items():
        add(f"polyglot: {name}", data, {"extra_data", "not_pdf"})
    return files


def _pypdf_javascript(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert('hei')")})


def _object_stream_bomb(big: bytes) -> bytes:
    """The catalog lives in an object stream that inflates without end."""
    out = bytearray(b"%PDF-1.7\n")
    first = len(out)
    out += b"5 0 obj\n" + stream(big, b"/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode") + b"\nendobj\n"
    xref = len(out)
    rows = struct.pack(">BIH", 0, 0, 65535) + struct.pack(">BIH", 2, 5, 0) + bytes(7 * 3) \
        + struct.pack(">BIH", 1, first, 0)
    body = b"6 0 obj\n" + stream(rows + struct.pack(">BIH", 1, xref, 0),
                                 b"/Type /XRef /W [1 4 2] /Size 7 /Root 1 0 R") + b"\nendobj\n"
    return bytes(out) + body + b"startxref\n%d\n%%%%EOF\n" % xref


def _xref_stream_bomb(big: bytes, widths: bytes = b"[1 4 2]") -> bytes:
    """The cross-reference stream itself inflates without end (or has absurd field widths)."""
    out = bytearray(b"%PDF-1.7\n")
    xref = len(out)
    out += b"1 0 obj\n" + stream(big or b"\x00" * 27, b"/Type /XRef /W %s /Size 3 /Root 2 0 R %s"
                                 % (widths, b"/Filter /FlateDecode" if big else b"")) + b"\nendobj\n"
    return bytes(out) + b"startxref\n%d\n%%%%EOF\n" % xref


def _incremental_js(good: bytes, action: bytes = b"<< /S /JavaScript /JS (app.alert(1)) >>",
                    broken: bool = False) -> bytes:
    """A later revision replaces the catalog with one that runs an action on open."""
    prev = int(good.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    out = bytearray(good)
    offset = len(out)
    out += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction %s >>\nendobj\n" % action
    start = len(out)
    out += b"xref\n1 1\n%010d 00000 n \ntrailer\n<< /Size 5 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        offset + (7 if broken else 0), prev, start)
    return bytes(out)


def _zip_first(pdf: bytes) -> bytes:
    """A ZIP whose first member is the PDF, stored: the file starts with PK, the PDF follows at once."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("a", pdf)
    return out.getvalue()


FILES = hostile_files()


# --- the channels -------------------------------------------------------------------------------------------

def messages_for(reasons: set[str]) -> set[str]:
    """What the refusal may say, in any of the app's languages, as it appears in a page."""
    texts = set()
    for locale in ("en", "nb", "nn"):
        with force_locale(locale):
            texts |= {str(escape(str(MESSAGES[r]))) for r in reasons if r in MESSAGES}
            texts |= {str(escape(intake.reason_text(r))) for r in reasons}
    return texts


def nothing_stored(app) -> None:
    instance = Path(app.instance_path)
    left = [p for folder in ("files", "tmp", "previews") for p in (instance / folder).rglob("*") if p.is_file()]
    assert left == []
    assert db.session.scalar(select(func.count()).select_from(StoredFile)) == 0
    assert db.session.scalar(select(func.count()).select_from(Document)) == 0
    assert db.session.scalar(select(func.count()).select_from(JournalPost)) == 0
    assert db.session.scalar(select(func.count()).select_from(InboxItem).where(
        InboxItem.status != InboxStatus.SYSTEM_REJECTED)) == 0


def test_two_hundred_hostile_files_through_every_channel(app, ctx):
    """Every file through every channel: refused with a reason the user can read, no 500, nothing kept."""
    assert len(FILES) >= 200, len(FILES)
    started = time.monotonic()
    figures: Counter = Counter()
    channel_seconds: dict[str, float] = {}
    case_id = builders.case("radgjevar1").id
    db.session.commit()
    web = app.test_client()
    failures: list[str] = []

    for channel, user, url, field in (("journal post", "radgjevar1", f"/cases/{case_id}/posts/new", "main_document"),
                                      ("inbox upload", "sekretaer", "/post-registration/upload", "file")):
        web.post("/logout")
        assert sign_in(web, user).status_code == 302
        for name, (data, reasons) in FILES.items():
            form = {"post_type": "N", "title": "Brev", "document_date": oslo_today().isoformat(),
                    field: (io.BytesIO(data), "brev.pdf")}
            figures["sent"] += 1
            try:
                response = web.post(url, data=form, content_type="multipart/form-data")
            except Exception as exc:  # noqa: BLE001 - PROPAGATE_EXCEPTIONS: what would have been a 500
                failures.append(f"{channel}: {name}: 500 ({exc!r})")
                figures["500"] += 1
                continue
            html = response.get_data(as_text=True)
            if response.status_code == 500:
                figures["500"] += 1
            if response.status_code != 422:
                failures.append(f"{channel}: {name}: status {response.status_code}")
                figures["stored" if response.status_code == 302 else "other"] += 1
            elif not any(text in html for text in messages_for(reasons)):
                failures.append(f"{channel}: {name}: no clear reason (expected one of {sorted(reasons)})")
            else:
                figures["refused"] += 1
        channel_seconds[channel] = time.monotonic() - started - sum(channel_seconds.values())

    # The sync folder: every file in one pass (two: the first notes them), each refused into the inbox's
    # "rejected by the system" list with its bytes in quarantine.
    root = Path(app.config["PPT_SYNC_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    names = {}
    for n, (name, (data, _)) in enumerate(FILES.items()):
        path = root / f"fil-{n:03}.pdf"
        path.write_bytes(data)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
        names[path.name] = name
    for _ in range(2):
        sync_intake.scan_sync_folder()
    channel_seconds["sync folder"] = time.monotonic() - started - sum(channel_seconds.values())
    figures["sent"] += len(FILES)
    db.session.expire_all()
    scans = {i.filename: i for i in db.session.scalars(select(InboxItem).where(InboxItem.source == InboxSource.SCAN))}
    for filename, name in names.items():
        reasons = FILES[name][1]
        item = scans.get(filename)
        if item is None or item.status != InboxStatus.SYSTEM_REJECTED:
            failures.append(f"sync folder: {name}: {'not reported' if item is None else item.status}")
            figures["stored" if item is not None else "lost"] += 1
            continue
        allowed = reasons | ({"incomplete"} if reasons & {"damaged", "empty"} else set())
        if item.reject_code not in allowed or not item.reject_reason:
            failures.append(f"sync folder: {name}: {item.reject_code} not in {sorted(allowed)}")
        else:
            figures["refused"] += 1
        assert (Path(app.instance_path) / "quarantine" / item.quarantine_name).read_bytes() == FILES[name][0]
    assert not [p for p in root.rglob("*") if p.is_file()], "a refused scan must leave the folder only once kept"
    # A refused file is offered only as a download that nothing in it can run from.
    download = web.get(f"/post-registration/{next(iter(scans.values())).id}/file")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert download.headers["X-Content-Type-Options"] == "nosniff"

    # SvarInn (its folder stand-in): one message per file, one poll.
    svarinn = Path(app.config["PPT_SVARINN_DIR"])
    sent = {write_example(svarinn, data, title=name, sender="Avsendar", org_number=None): name
            for name, (data, _) in FILES.items()}
    figures["sent"] += len(FILES)
    mail_intake.poll_inbound()
    channel_seconds["SvarInn"] = time.monotonic() - started - sum(channel_seconds.values())
    db.session.expire_all()
    mail = {i.svarinn_id: i for i in db.session.scalars(select(InboxItem).where(
        InboxItem.source == InboxSource.SVARINN))}
    for message_id, name in sent.items():
        item = mail.get(message_id)
        if item is None or item.status != InboxStatus.SYSTEM_REJECTED:
            failures.append(f"SvarInn: {name}: {'not reported' if item is None else item.status}")
            figures["stored" if item is not None else "lost"] += 1
        elif item.reject_code not in FILES[name][1] | {"empty", "size_mismatch"} or not item.reject_reason:
            failures.append(f"SvarInn: {name}: {item.reject_code} not in {sorted(FILES[name][1])}")
        else:
            figures["refused"] += 1

    nothing_stored(app)
    elapsed = time.monotonic() - started
    print(f"\nhostile files: {len(FILES)} files x 4 channels = {figures['sent']} uploads; refused "
          f"{figures['refused']}, 500s={figures['500']}, stored={figures['stored']}, lost={figures['lost']}, "
          f"time {elapsed:.1f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in channel_seconds.items()) + ")")
    assert not failures, "\n".join(failures[:60]) + f"\n({len(failures)} in all)"
    assert figures["refused"] == figures["sent"] == 4 * len(FILES)
