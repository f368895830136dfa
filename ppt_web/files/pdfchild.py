"""The child process that reads an untrusted PDF under time and memory limits (pdfcheck.py starts it).

A hostile or broken PDF can make the parser loop or allocate without bound; here the worst it can
do is die, which the parent reports as "damaged". Run as a plain script in isolated mode
(`python -I ppt_web/files/pdfchild.py <path> [<preview folder>]`, or `--serve`, or `--split`):
it needs only pypdf and pypdfium2, never Flask or the app, so it imports nothing of the package.
It prints one line of JSON per file. With a preview folder it also renders each page as <n>.jpg
there (pypdfium2), under the same limits: the renderer is a C library reading untrusted input.
"""
from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path

import pypdfium2
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject

MEMORY_BYTES = 1024**3
CPU_SECONDS = 30  # the parent's wall-clock timeout usually ends it first; this outlives a dead parent
WINDOW = 1024  # %PDF- must be in the first and %%EOF in the last 1024 bytes (what Acrobat accepts)
PREVIEW_WIDTH = 900  # pixels: readable next to the form, small enough to load at once
PREVIEW_MAX_PAGES = 300
PREVIEW_QUALITY = 80


def _split(source: Path, out_dir: Path, ranges: list[str]) -> None:
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
    with path.open("rb") as f:
        head = f.read(WINDOW)
        f.seek(max(0, path.stat().st_size - WINDOW))
        tail = f.read()
    if b"%PDF-" not in head:
        return {"ok": False, "reason": "not_pdf"}
    if b"%%EOF" not in tail:  # cut short: pypdf's lenient mode might otherwise rebuild a partial file
        return {"ok": False, "reason": "damaged"}
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            return {"ok": False, "reason": "encrypted"}
        reader.trailer["/Root"].get_object()
        pages = len(reader.pages)
        if pages == 0:
            return {"ok": False, "reason": "no_pages"}
        for page in reader.pages:  # resolve every page and its content objects, not just the page tree
            _ = page.mediabox
            contents = page.get("/Contents")
            contents = contents.get_object() if contents is not None else None
            for part in contents if isinstance(contents, ArrayObject) else [contents]:
                if part is not None:
                    part.get_object()
    except Exception:  # noqa: BLE001 - any parser error, including MemoryError from the address-space limit
        return {"ok": False, "reason": "damaged"}
    return {"ok": True, "pages": pages}


def render(path: Path, folder: Path, pages: int) -> None:
    """Each page as <n>.jpg, PREVIEW_WIDTH wide; up to PREVIEW_MAX_PAGES pages."""
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
