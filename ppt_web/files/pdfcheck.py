"""Inspect an uploaded PDF in a child process with time and memory limits (DESIGN.md §4).

A hostile or broken PDF can make the parser loop or allocate without bound; in a child the
worst it can do is die, which the parent reports as "damaged". Run as
`python -I ppt_web/files/pdfcheck.py <path> [<preview folder>]`; it prints one line of JSON.
With a preview folder it also renders each page as <n>.jpg there (pypdfium2), in the same
child and under the same limits: the renderer is a C library reading untrusted input.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import resource
import select
import subprocess
import sys
import time
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
    """Page count of a readable, unencrypted PDF; anything else raises UploadRejected.

    Inside `with batch():` the files go to one long-lived checking child (same limits per file);
    otherwise each file gets a child of its own.
    """
    from .storage import UploadRejected  # imported here: storage imports this module

    checker = _batch.get()
    if checker is not None:
        return checker.inspect(path, timeout, preview_dir)
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
    if not lines:
        # Killed by a limit, or broken itself: log stderr so an install fault is not silently "damaged".
        log.warning("pdfcheck gave no verdict (exit %s): %s", done.returncode, done.stderr[-2000:])
    return _pages(lines[-1] if lines else "")


def _pages(line: str) -> int:
    from .storage import UploadRejected

    try:
        verdict = json.loads(line)
    except ValueError:
        raise UploadRejected("damaged") from None
    if verdict.get("ok") is True and isinstance(verdict.get("pages"), int):
        return verdict["pages"]
    raise UploadRejected(verdict["reason"] if verdict.get("reason") in REASONS else "damaged")


def split_pdf(path: Path, ranges: list[tuple[int, int]], out_dir: Path, timeout: float = 60.0) -> list[Path]:
    """Cut a PDF into parts by 1-based page ranges, in a limited child like every other parse.

    Returns the part files (part-1.pdf, ...) in out_dir; raises UploadRejected("damaged") if it fails.
    """
    from .storage import UploadRejected

    argv = [sys.executable, "-I", str(Path(__file__).resolve()), "--split", str(Path(path).resolve()),
            str(Path(out_dir).resolve())] + [f"{first}-{last}" for first, last in ranges]
    try:
        done = subprocess.run(argv, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UploadRejected("damaged") from None
    parts = [Path(out_dir) / f"part-{n}.pdf" for n in range(1, len(ranges) + 1)]
    if done.returncode != 0 or not all(p.exists() for p in parts):
        log.warning("pdfcheck --split failed (exit %s): %s", done.returncode, done.stderr[-2000:])
        raise UploadRejected("damaged")
    return parts


def _split(source: Path, out_dir: Path, ranges: list[str]) -> None:
    from pypdf import PdfWriter

    reader = PdfReader(source, strict=False)
    for n, text in enumerate(ranges, start=1):
        first, last = (int(x) for x in text.split("-"))
        writer = PdfWriter()
        for index in range(first - 1, last):
            writer.add_page(reader.pages[index])
        with (out_dir / f"part-{n}.pdf").open("wb") as out:
            writer.write(out)


class Checker:
    """One checking child for many files (the intake of a burst of scans): the start-up is paid once.

    The child reads one JSON request per line and answers one verdict per line. A file that
    hangs or kills the child costs only that file ("damaged"); the next file starts a new child.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._buffer = b""
        self._sent = 0

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), "--serve"],
                                         cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
            self._buffer = b""
        return self.proc

    def inspect(self, path: Path, timeout: float, preview_dir: Path | None) -> int:
        proc = self._start()
        self._sent += 1
        request = {"id": self._sent, "path": str(Path(path).resolve()),
                   "preview": str(Path(preview_dir).resolve()) if preview_dir is not None else None}
        deadline = time.monotonic() + (timeout * 3 if preview_dir is not None else timeout)
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                    raise TimeoutError
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError  # the child died on this file (a limit, a crash)
                self._buffer += chunk
        except (TimeoutError, EOFError, BrokenPipeError, OSError):
            self.close()
            return _pages("")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict) or answer.get("id") != request["id"]:
            log.warning("pdfcheck child answered out of turn; restarting it")
            self.close()  # every later answer could belong to another file
            return _pages("")
        return _pages(line.decode(errors="replace"))

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None


_batch: contextvars.ContextVar[Checker | None] = contextvars.ContextVar("pdfcheck_batch", default=None)


@contextlib.contextmanager
def batch():
    """Check the files of this block in one long-lived child."""
    checker = Checker()
    token = _batch.set(checker)
    try:
        yield checker
    finally:
        _batch.reset(token)
        checker.close()


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
        except Exception:  # pypdf could read it, the renderer could not: not a usable document
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
