"""Page images of stored PDFs for the post registration view, cached under instance/previews/.

Rendered once per file (content-addressed like the files), in the checking child process, so
a page image is ready when the item appears in the inbox.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from flask import current_app

from .errors import UploadRejected
from .paths import StoredFileFault, checked_path, file_path
from .pdfcheck import PREVIEW_MAX_PAGES, inspect_pdf


def folder(sha256: str) -> Path:
    file_path(sha256)  # the same check on the digest: a crafted value cannot leave the folder
    return Path(current_app.instance_path) / "previews" / sha256[:2] / sha256


def page_image(sha256: str, page: int) -> Path | None:
    """The image of one page (1-based), rendering the file's previews first if they are missing."""
    if page < 1 or page > PREVIEW_MAX_PAGES:
        return None
    path = folder(sha256) / f"{page}.jpg"
    if not path.exists():
        ensure(sha256)
    return path if path.exists() else None


def scratch() -> Path:
    tmp_dir = Path(current_app.instance_path) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=tmp_dir, suffix=".preview"))


def install(rendered: Path, sha256: str) -> None:
    """Move a folder of rendered pages into place; a folder there already holds the same pages."""
    target = folder(sha256)
    if target.exists():
        shutil.rmtree(rendered, ignore_errors=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(rendered, target)
    except OSError:  # another process put the same pages there first
        shutil.rmtree(rendered, ignore_errors=True)


def ensure(sha256: str) -> None:
    """Render the previews of a stored file that has none (stored before previews existed)."""

    if folder(sha256).exists():
        return
    try:
        source = checked_path(sha256)  # never pages of bytes other than those stored (missing or changed: none)
    except StoredFileFault:
        return
    rendered = scratch()
    try:
        inspect_pdf(source, preview_dir=rendered)
    except UploadRejected:
        shutil.rmtree(rendered, ignore_errors=True)
        return
    install(rendered, sha256)
