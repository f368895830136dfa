"""Inspect an uploaded PDF in a child process with time and memory limits (pdfchild.py): the app's
side. One child per file, or one long-lived child for a batch (`with batch():`), which pays the
child's start-up once. See docs/decisions.md, "Files"."""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from . import pdfchild
from .errors import UploadRejected, refusal
from .pdfchild import ACTIVE as ACTIVE_CONTENT
from .pdfchild import PREVIEW_MAX_PAGES

__all__ = ["PREVIEW_MAX_PAGES", "batch", "inspect_pdf", "split_pdf"]

CHILD = str(Path(pdfchild.__file__).resolve())
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REASONS = ("not_pdf", "encrypted", "no_pages", "damaged", "extra_data", "bomb", "too_many_pages", "page_too_large",
           *ACTIVE_CONTENT)

log = logging.getLogger(__name__)




def inspect_pdf(path: Path, timeout: float = 20.0, preview_dir: Path | None = None) -> int:
    """Page count of a readable, unencrypted PDF; anything else raises UploadRejected.

    Inside `with batch():` the files go to one long-lived checking child (same limits per file);
    otherwise each file gets a child of its own.
    """

    checker = _batch.get()
    if checker is not None:
        return checker.inspect(path, timeout, preview_dir)
    argv = [sys.executable, "-I", CHILD, str(Path(path).resolve())]
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

    try:
        verdict = json.loads(line)
    except ValueError:
        raise UploadRejected("damaged") from None
    if verdict.get("ok") is True and isinstance(verdict.get("pages"), int):
        return verdict["pages"]
    found = verdict.get("found")
    if isinstance(found, list) and found and all(kind in ACTIVE_CONTENT for kind in found):
        raise refusal(found)
    raise UploadRejected(verdict["reason"] if verdict.get("reason") in REASONS else "damaged")


def split_pdf(path: Path, ranges: list[tuple[int, int]], out_dir: Path, timeout: float = 60.0) -> list[Path]:
    """Cut a PDF into parts by 1-based page ranges, in a limited child like every other parse.

    Returns the part files (part-1.pdf, ...) in out_dir; raises UploadRejected("damaged") if it fails.
    """

    argv = [sys.executable, "-I", CHILD, "--split", str(Path(path).resolve()),
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
            self.proc = subprocess.Popen([sys.executable, "-I", CHILD, "--serve"],
                                         cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
            self._buffer = b""
        return self.proc

    def inspect(self, path: Path, timeout: float, preview_dir: Path | None) -> int:
        proc = self._start()
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None  # _start opens both as pipes
        self._sent += 1
        request = {"id": self._sent, "path": str(Path(path).resolve()),
                   "preview": str(Path(preview_dir).resolve()) if preview_dir is not None else None}
        deadline = time.monotonic() + (timeout * 3 if preview_dir is not None else timeout)
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([stdout], [], [], left)[0]:
                    raise TimeoutError
                chunk = os.read(stdout.fileno(), 65536)
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
                assert stream is not None  # _start opens both as pipes
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


