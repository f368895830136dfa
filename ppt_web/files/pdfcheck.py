"""Inspect an uploaded PDF in a child process with time and memory limits (DESIGN.md §4).

A hostile or broken PDF can make the parser loop or allocate without bound; in a child the
worst it can do is die, which the parent reports as "damaged". Run as
`python -I ppt_web/files/pdfcheck.py <path> [<preview folder>]`; it prints one line of JSON.
With a preview folder it also renders each page as <n>.jpg there (pypdfium2), in the same
child and under the same limits: the renderer is a C library reading untrusted input.
"""
from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import ArrayObject

MEMORY_BYTES = 1024**3
CPU_SECONDS = 30  # the parent's wall-clock timeout usually ends it first; this outlives a dead parent
WINDOW = 1024  # %PDF- must be in the first and %%EOF in the last 1024 bytes (what Acrobat accepts)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REASONS = ("not_pdf", "encrypted", "no_pages", "damaged")

log = logging.getLogger(__name__)


PREVIEW_WIDTH = 900  # pixels: readable next to the form, small enough to load at once
PREVIEW_MAX_PAGES = 300
PREVIEW_QUALITY = 80


def inspect_pdf(path: Path, timeout: float = 20.0, preview_dir: Path | None = None) -> int:
    """Page count of a readable, unencrypted PDF; anything else raises UploadRejected."""
    from .storage import UploadRejected  # imported here: storage imports this module

    argv = [sys.executable, "-I", str(Path(__file__).resolve()), str(Path(path).resolve())]
    if preview_dir is not None:
        argv.append(str(Path(preview_dir).resolve()))
        timeout *= 3
    try:
        done = subprocess.run(
            # Run as a plain script in isolated mode: it needs only pypdf, not Flask and the app.
            argv,
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise UploadRejected("damaged") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        verdict = json.loads(lines[-1])
    except (IndexError, ValueError):
        # Killed by a limit, or broken itself: log stderr so an install fault is not silently "damaged".
        log.warning("pdfcheck gave no verdict (exit %s): %s", done.returncode, done.stderr[-2000:])
        raise UploadRejected("damaged") from None
    if verdict.get("ok") is True and isinstance(verdict.get("pages"), int):
        return verdict["pages"]
    raise UploadRejected(verdict["reason"] if verdict.get("reason") in REASONS else "damaged")


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
    except Exception:  # any parser error, including MemoryError from the address-space limit
        return {"ok": False, "reason": "damaged"}
    return {"ok": True, "pages": pages}


def render(path: Path, folder: Path, pages: int) -> None:
    """Each page as <n>.jpg, PREVIEW_WIDTH wide; up to PREVIEW_MAX_PAGES pages."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        for index in range(min(pages, PREVIEW_MAX_PAGES)):
            page = pdf[index]
            width = page.get_width() or 595
            bitmap = page.render(scale=min(4.0, PREVIEW_WIDTH / width))
            bitmap.to_pil().convert("RGB").save(folder / f"{index + 1}.jpg", quality=PREVIEW_QUALITY)
            page.close()
    finally:
        pdf.close()


def main(argv: list[str]) -> int:
    """Limits are set here, not in preexec_fn, which is unsafe when the parent runs threads."""
    _limit(resource.RLIMIT_AS, MEMORY_BYTES)
    _limit(resource.RLIMIT_CPU, CPU_SECONDS)
    _limit(resource.RLIMIT_CORE, 0)
    logging.disable(logging.CRITICAL)  # pypdf's warnings about lenient repairs are noise here
    verdict = check(Path(argv[1]))
    if verdict.get("ok") and len(argv) > 2:
        try:
            render(Path(argv[1]), Path(argv[2]), verdict["pages"])
        except Exception:  # pypdf could read it, the renderer could not: not a usable document
            verdict = {"ok": False, "reason": "damaged"}
    print(json.dumps(verdict), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
