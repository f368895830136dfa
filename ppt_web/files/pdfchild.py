"""The child process that reads an untrusted PDF under time and memory limits (pdfcheck.py starts it).

A hostile or broken PDF can make the parser loop or allocate without bound; here the worst it can
do is die, which the parent reports as "damaged". Run as a plain script in isolated mode
(`python -I ppt_web/files/pdfchild.py <path> [<preview folder>]`, or `--serve`, or `--split`):
it needs only pypdf and pypdfium2, never Flask or the app, so it imports nothing of the package.
It prints one line of JSON per file. With a preview folder it also renders each page as <n>.jpg
there (pypdfium2), under the same limits: the renderer is a C library reading untrusted input.

Every file gets the same check, whatever the channel and whether previews are rendered
(docs/decisions.md, "What the upload check refuses"): every object in the file is read, every
stream is decoded under caps on decoded bytes (one stream, the whole file), and a file is refused
for active content (JavaScript, Launch, embedded files, XFA, actions that submit, import or open
other files) found by pypdf's reading of the objects or by pdfium's own (the viewer's parser).
"""
from __future__ import annotations

import json
import logging
import resource
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdfium2
    import pypdfium2.raw as pdfium_c
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import LimitReachedError
    from pypdf.filters import decode_stream_data
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject, StreamObject

MEMORY_BYTES = 1024**3
CPU_SECONDS = 30  # the parent's wall-clock timeout usually ends it first; this outlives a dead parent
WINDOW = 1024  # %PDF- must be in the first and %%EOF in the last 1024 bytes (what Acrobat accepts)
PREVIEW_WIDTH = 900  # pixels: readable next to the form, small enough to load at once
PREVIEW_MAX_PAGES = 300
PREVIEW_QUALITY = 80
DECODED_MAX_BYTES = 1024**3  # all streams of one file together, decoded (a legitimate 50 MB file stays far below)
STREAM_MAX_BYTES = 128 * 1024**2  # one stream, decoded: a 600 dpi colour A4 page is about 100 MB
IMAGE_MAX_PIXELS = 100_000_000  # width x height of one image: A4 at 1000 dpi
MAX_PAGES = 5000
MAX_NESTING = 64  # arrays and dictionaries inside each other (pdfium reads no deeper either)
MAX_PAGE_SIDE = 14400  # points (200 inches), the PDF standard's limit for a side of a page
CHUNK = 1024 * 1024
TRAILING = b" \t\r\n\f\x00"  # what may follow the last %%EOF (line ends, padding)
IMAGE_CODECS = {"/DCTDecode", "/DCT", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode", "/CCF"}
FLATE = {"/FlateDecode", "/Fl"}
# What a viewer may run or open by itself, in the order a refusal names it first.
ACTIVE = ("javascript", "launch", "embedded_file", "xfa", "external_action")
EXTERNAL_ACTIONS = {"/SubmitForm", "/ImportData", "/GoToR"}


def _load_parsers() -> None:
    """Import pypdf and pypdfium2 into this module, the first time a file is read. The app imports this
    module for its limits (pdfcheck.py, errors.py) and never reads a PDF itself: loaded at the top, the two
    would cost every web worker ~20 MiB."""
    global pypdfium2, pdfium_c, PdfReader, PdfWriter, LimitReachedError, decode_stream_data  # noqa: PLW0603
    global ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject, StreamObject  # noqa: PLW0603
    import pypdfium2  # noqa: PLC0415
    import pypdfium2.raw as pdfium_c  # noqa: PLC0415
    from pypdf import PdfReader, PdfWriter  # noqa: PLC0415
    from pypdf.errors import LimitReachedError  # noqa: PLC0415
    from pypdf.filters import decode_stream_data  # noqa: PLC0415
    from pypdf.generic import (  # noqa: PLC0415
        ArrayObject,
        DictionaryObject,
        IndirectObject,
        NameObject,
        PdfObject,
        StreamObject,
    )


class Refused(Exception):
    """The check stops at once: the file is refused for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _split(source: Path, out_dir: Path, ranges: list[str]) -> None:
    _load_parsers()
    reader = PdfReader(source, strict=False)
    for n, text in enumerate(ranges, start=1):
        first, last = (int(x) for x in text.split("-"))
        writer = PdfWriter()
        for index in range(first - 1, last):
            writer.add_page(reader.pages[index])
        with (out_dir / f"part-{n}.pdf").open("wb") as out:
            writer.write(out)


def _limit(kind: int, value: int) -> None:
    """Lower soft and hard limit to value, never above a hard limit set by the system."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def check(path: Path) -> dict:
    """The verdict on one file, as the child prints it."""
    _load_parsers()
    with path.open("rb") as f:
        head = f.read(WINDOW)
        f.seek(max(0, path.stat().st_size - WINDOW))
        tail = f.read()
    if b"%PDF-" not in head:
        return {"ok": False, "reason": "not_pdf"}
    if b"%%EOF" not in tail:  # cut short: pypdf's lenient mode might otherwise rebuild a partial file
        return {"ok": False, "reason": "damaged"}
    if not head.startswith(b"%PDF-") or tail.rsplit(b"%%EOF", 1)[1].strip(TRAILING):
        return {"ok": False, "reason": "extra_data"}  # a polyglot: the same bytes read as another kind of file
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            return {"ok": False, "reason": "encrypted"}
        root = reader.trailer["/Root"].get_object()
        tree = _get(root, "/Pages") if isinstance(root, DictionaryObject) else None
        declared = _get(tree, "/Count") if isinstance(tree, DictionaryObject) else None
        if isinstance(declared, int) and declared > MAX_PAGES:  # before the page tree is flattened
            return {"ok": False, "reason": "too_many_pages"}
        pages = len(reader.pages)
        if pages == 0:
            return {"ok": False, "reason": "no_pages"}
        if pages > MAX_PAGES:
            return {"ok": False, "reason": "too_many_pages"}
        for page in reader.pages:  # resolve every page and its content objects, not just the page tree
            box = page.mediabox
            if max(abs(float(box.width)), abs(float(box.height))) > MAX_PAGE_SIDE:
                return {"ok": False, "reason": "page_too_large"}
            contents = page.get("/Contents")
            contents = contents.get_object() if contents is not None else None
            for part in contents if isinstance(contents, ArrayObject) else [contents]:
                if part is not None:
                    part.get_object()
        found = Walk(reader).run()
        found |= pdfium_findings(path)
    except Refused as exc:
        return {"ok": False, "reason": exc.reason}
    except (LimitReachedError, MemoryError):  # pypdf's own caps, or the address-space limit
        return {"ok": False, "reason": "bomb"}
    except Exception:  # noqa: BLE001 - any other parser error
        return {"ok": False, "reason": "damaged"}
    if found:
        ordered = [kind for kind in ACTIVE if kind in found]
        return {"ok": False, "reason": ordered[0], "found": ordered}
    return {"ok": True, "pages": pages}


class Walk:
    """Every object of the file (reachable from the trailer or listed in the cross-reference table),
    without recursion: active content is noted, every stream is decoded under the byte caps."""

    def __init__(self, reader: PdfReader) -> None:
        self.reader = reader
        self.found: set[str] = set()
        self.decoded = 0
        self.seen: set[tuple[int, int]] = set()
        self.automatic: list[PdfObject] = []  # OpenAction and AA: actions that run without a click

    def run(self) -> set[str]:
        todo: list[tuple[PdfObject | None, int]] = [(self.reader.trailer, 0)]
        for generation, numbers in self.reader.xref.items():
            todo.extend((IndirectObject(number, generation, self.reader), 0) for number in numbers)
        todo.extend((IndirectObject(number, 0, self.reader), 0) for number in self.reader.xref_objStm)
        while todo:
            obj, depth = todo.pop()
            if isinstance(obj, IndirectObject):
                key = (obj.idnum, obj.generation)
                if key in self.seen:
                    continue
                self.seen.add(key)
                obj, depth = obj.get_object(), 0
            if depth > MAX_NESTING:
                raise Refused("bomb")
            if isinstance(obj, DictionaryObject):
                self.note(obj)
                todo.extend((value, depth + 1) for value in dict.values(obj))
            elif isinstance(obj, ArrayObject):
                todo.extend((value, depth + 1) for value in list.__iter__(obj))
        self.follow_automatic()
        return self.found

    def note(self, d: DictionaryObject) -> None:
        action = _get(d, "/S")
        if "/JS" in d or "/JavaScript" in d or action == "/JavaScript":
            self.found.add("javascript")
        if action == "/Launch":
            self.found.add("launch")
        if ("/EmbeddedFiles" in d or "/EF" in d or action == "/GoToE"
                or _get(d, "/Subtype") == "/FileAttachment" or _get(d, "/Type") == "/EmbeddedFile"):
            self.found.add("embedded_file")
        if "/XFA" in d:
            self.found.add("xfa")
        if action in EXTERNAL_ACTIONS:
            self.found.add("external_action")
        if "/OpenAction" in d:
            self.automatic.append(d.raw_get("/OpenAction"))
        triggers = _get(d, "/AA")
        if isinstance(triggers, DictionaryObject):
            self.automatic.extend(dict.values(triggers))
        if isinstance(d, StreamObject):
            self.decode(d)

    def follow_automatic(self) -> None:
        """A web address opened with no click (a tracking beacon, a phishing page) counts as external."""
        seen: set[tuple[int, int]] = set()
        todo: list[PdfObject | None] = list(self.automatic)
        while todo:
            obj = todo.pop()
            if isinstance(obj, IndirectObject):
                if (obj.idnum, obj.generation) in seen:
                    continue
                seen.add((obj.idnum, obj.generation))
                obj = obj.get_object()
            if isinstance(obj, ArrayObject):
                todo.extend(list.__iter__(obj))
            elif isinstance(obj, DictionaryObject):
                if _get(obj, "/S") == "/URI":
                    self.found.add("external_action")
                if "/Next" in obj:
                    todo.append(obj.raw_get("/Next"))

    def count(self, size: int) -> None:
        self.decoded += size
        if size > STREAM_MAX_BYTES or self.decoded > DECODED_MAX_BYTES:
            raise Refused("bomb")

    def decode(self, stream: StreamObject) -> None:
        """Decode up to the first image codec (its pixels are bounded by the image's declared size)."""
        filters = _get(stream, "/Filter")
        names = [filters] if isinstance(filters, NameObject) else list(filters) if isinstance(filters, list) else []
        parms = _get(stream, "/DecodeParms")
        parms = list(parms) if isinstance(parms, list) else [parms] * len(names)
        generic = names[: next((i for i, n in enumerate(names) if n in IMAGE_CODECS), len(names))]
        if _get(stream, "/Subtype") == "/Image" or len(generic) < len(names):
            width, height = _get(stream, "/Width"), _get(stream, "/Height")
            if isinstance(width, int) and isinstance(height, int) and abs(width * height) > IMAGE_MAX_PIXELS:
                raise Refused("bomb")
        data = stream._data
        if not generic:
            return
        if len(generic) == 1 and generic[0] in FLATE:
            self.inflate(data)
            return
        prefix = StreamObject()
        prefix._data = data
        prefix[NameObject("/Filter")] = ArrayObject(generic)
        prefix[NameObject("/DecodeParms")] = ArrayObject(
            _resolved(p) if isinstance(_resolved(p), DictionaryObject) else DictionaryObject()
            for p in parms[: len(generic)])
        try:
            decoded = decode_stream_data(prefix)
        except (LimitReachedError, MemoryError):
            raise Refused("bomb") from None
        except Exception:  # noqa: BLE001 - a stream no decoder reads: no viewer unpacks it either
            return
        self.count(len(decoded))

    def inflate(self, data: bytes) -> None:
        """Count a Flate stream's decoded bytes a chunk at a time; nothing is kept (the predictor is skipped:
        it only removes a byte per row)."""
        inflater = zlib.decompressobj()
        size = 0
        try:
            while data and not inflater.eof:
                out = inflater.decompress(data, CHUNK)
                size += len(out)
                self.count(len(out))
                if size > STREAM_MAX_BYTES:
                    raise Refused("bomb")
                data = inflater.unconsumed_tail
            self.count(len(inflater.flush()))
        except zlib.error:
            pass  # a damaged stream ends where zlib stops, for every reader alike


def _resolved(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


def _get(d: DictionaryObject, key: str):
    """d[key] with an indirect value resolved, or None (dict.get gives the reference itself)."""
    return _resolved(d.get(key))


def pdfium_findings(path: Path) -> set[str]:
    """The same questions asked of pdfium, the parser of the viewers: a file that pypdf and pdfium
    read differently cannot slip active content past one of them."""
    _load_parsers()
    found: set[str] = set()
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        if pdf.get_formtype() in (pdfium_c.FORMTYPE_XFA_FULL, pdfium_c.FORMTYPE_XFA_FOREGROUND):
            found.add("xfa")
        if pdf.count_attachments() > 0:
            found.add("embedded_file")
        if pdfium_c.FPDFDoc_GetJavaScriptActionCount(pdf.raw) > 0:
            found.add("javascript")
    finally:
        pdf.close()
    return found


def render(path: Path, folder: Path, pages: int) -> None:
    """Each page as <n>.jpg, PREVIEW_WIDTH wide; up to PREVIEW_MAX_PAGES pages."""
    _load_parsers()
    pdf = pypdfium2.PdfDocument(str(path))
    pdf.init_forms()  # form fields and signature stamps are drawn only with the form environment set up
    try:
        for index in range(min(pages, PREVIEW_MAX_PAGES)):
            page = pdf[index]
            width = page.get_width() or 595
            bitmap = page.render(scale=min(4.0, PREVIEW_WIDTH / width))
            bitmap.to_pil().convert("RGB").save(folder / f"{index + 1}.jpg", quality=PREVIEW_QUALITY)
            page.close()
    finally:
        pdf.close()


def judge(path: Path, preview: Path | None) -> dict:
    verdict = check(path)
    if verdict.get("ok") and preview is not None:
        try:
            render(path, preview, verdict["pages"])
        except Exception:  # noqa: BLE001 - pypdf could read it, the renderer could not: not a usable document
            verdict = {"ok": False, "reason": "damaged"}
    return verdict


def serve() -> None:
    """Many files, one per stdin line; each gets CPU_SECONDS more CPU time than used so far."""
    for line in sys.stdin:
        request = json.loads(line)
        used = resource.getrusage(resource.RUSAGE_SELF)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(used.ru_utime + used.ru_stime) + CPU_SECONDS
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        preview = Path(request["preview"]) if request.get("preview") else None
        print(json.dumps({"id": request.get("id"), **judge(Path(request["path"]), preview)}), flush=True)


def main(argv: list[str]) -> int:
    """Limits are set here, not in preexec_fn, which is unsafe when the parent runs threads."""
    _load_parsers()  # before the limits, as when they were imported at the top
    _limit(resource.RLIMIT_AS, MEMORY_BYTES)
    _limit(resource.RLIMIT_CORE, 0)
    logging.disable(logging.CRITICAL)  # pypdf's warnings about lenient repairs are noise here
    if argv[1:] == ["--serve"]:
        serve()  # the CPU limit is set per file
        return 0
    if len(argv) > 3 and argv[1] == "--split":
        _limit(resource.RLIMIT_CPU, CPU_SECONDS)
        _split(Path(argv[2]), Path(argv[3]), argv[4:])
        return 0
    _limit(resource.RLIMIT_CPU, CPU_SECONDS)
    print(json.dumps(judge(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
