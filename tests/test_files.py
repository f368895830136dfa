"""File intake: PDFs are checked in a child process, stored once by SHA-256, and bad input is refused."""
from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from flask import current_app
from flask_babel import force_locale
from pypdf import PdfWriter
from pypdf.annotations import Link
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject, TextStringObject
from sqlalchemy import func, select

from ppt_web.errors import Invalid
from ppt_web.extensions import db
from ppt_web.files import pdfcheck, pdfchild
from ppt_web.files.pdfcheck import inspect_pdf
from ppt_web.files.storage import UploadRejected, file_path, safe_filename, store_upload
from ppt_web.models.files import StoredFile

from .helpers import REFUSED, pdf_bytes


class Endless:
    """An upload that never ends: the size limit must stop reading, not just refuse afterwards."""

    def read(self, size: int = -1, /) -> bytes:
        return bytes(size if size > 0 else 65536)

# These tests are about the per-file child that a web upload uses: its limits, timeout and kill.
pytestmark = [pytest.mark.pdf_child_per_file, pytest.mark.one_database]



@pytest.fixture
def files(ctx):
    """Service-level file tests need only the app context (migration 0002 made stored_file)."""


def store(data: bytes, name: str = "brev.pdf"):
    return store_upload(io.BytesIO(data), name)


def stored_rows() -> int:
    """Rows this session sees: committed ones and ones added (autoflushed) but not yet committed."""
    return db.session.scalar(select(func.count()).select_from(StoredFile))


def committed_rows() -> int:
    """Rows another connection sees."""
    with db.engine.connect() as other:
        return other.scalar(select(func.count()).select_from(StoredFile))


def files_on_disk() -> list[Path]:
    instance = Path(current_app.instance_path)
    return [p for folder in ("files", "tmp") for p in (instance / folder).rglob("*") if p.is_file()]


def english(message) -> str:
    with force_locale("en"):
        return str(message)


def test_valid_pdfs_are_stored_with_their_page_count(files):
    """One- and three-page PDFs: right page count, bytes under ab/cd/<sha256>, row added but not committed."""
    for pages in (1, 3):
        data = pdf_bytes(pages)
        stored = store(data, "Vedtak om spesialundervisning.pdf")
        assert stored.page_count == pages and stored.size == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert stored.filename == "Vedtak om spesialundervisning.pdf"
        path = file_path(stored.sha256)
        assert path.read_bytes() == data
        assert path.parts[-3:] == (stored.sha256[:2], stored.sha256[2:4], stored.sha256)
    assert stored_rows() == 2 and committed_rows() == 0
    db.session.commit()
    assert committed_rows() == 2
    assert list((Path(current_app.instance_path) / "tmp").iterdir()) == []


def test_same_bytes_are_stored_once_and_not_checked_again(files, monkeypatch):
    """A second upload of the same bytes reuses the row and the file, committed or still pending."""
    data = pdf_bytes(3)
    first = store(data, "a.pdf")
    again_pending = store(data, "b.pdf")
    assert stored_rows() == 1
    db.session.commit()
    inode = file_path(first.sha256).stat().st_ino

    def must_not_run(path, timeout=20.0):
        raise AssertionError("a known file was checked again")

    monkeypatch.setattr("ppt_web.files.storage.inspect_pdf", must_not_run)
    again = store(data, "c.pdf")
    assert (again_pending.page_count, again.page_count) == (3, 3)
    assert again.sha256 == first.sha256 and again.filename == "c.pdf"
    assert not db.session.new and stored_rows() == 1
    assert file_path(first.sha256).stat().st_ino == inode
    assert len(files_on_disk()) == 1


def test_a_known_file_missing_from_disk_is_put_back(files):
    """The row promises the bytes exist; an upload of the same bytes restores a lost file."""
    data = pdf_bytes(1)
    stored = store(data)
    db.session.commit()
    file_path(stored.sha256).unlink()
    store(data)
    assert file_path(stored.sha256).read_bytes() == data



@pytest.mark.parametrize("data, message", REFUSED.values(), ids=REFUSED.keys())
def test_bad_uploads_are_refused_and_leave_nothing_behind(files, data, message):
    """Each refusal names the problem in words the user can act on; no row, no file, no temp file."""
    with pytest.raises(UploadRejected) as refused:
        store(data)
    assert isinstance(refused.value, Invalid) and refused.value.status == 422
    assert english(refused.value.message) == message
    assert not db.session.new and stored_rows() == 0
    assert files_on_disk() == []


def test_zero_page_pdf_from_pypdf_really_has_no_pages():
    """pypdf writes a well-formed PDF with an empty page tree, so "no pages" (not "damaged") is right."""
    data = pdf_bytes(0)
    assert data.startswith(b"%PDF-") and b"/Count 0" in data and data.rstrip().endswith(b"%%EOF")


def test_oversize_upload_is_refused_while_reading(app, files):
    """Reading stops past PPT_MAX_UPLOAD_BYTES, even from an endless stream; exactly the limit passes."""
    app.config["PPT_MAX_UPLOAD_BYTES"] = 2**20
    with pytest.raises(UploadRejected) as refused:
        store_upload(Endless(), "stor.pdf")
    assert english(refused.value.message) == "The file is larger than 1 MB."
    assert not db.session.new and stored_rows() == 0 and files_on_disk() == []

    data = pdf_bytes(1)
    app.config["PPT_MAX_UPLOAD_BYTES"] = len(data)
    assert store(data).size == len(data)


def test_a_check_that_times_out_or_dies_means_damaged(files, monkeypatch, tmp_path):
    """A parser stuck in a loop or killed by the memory limit gives no verdict: the file counts as damaged."""
    path = tmp_path / "ok.pdf"
    path.write_bytes(pdf_bytes(1))
    with pytest.raises(UploadRejected) as refused:
        inspect_pdf(path, timeout=0.001)
    assert refused.value.reason == "damaged"

    killed = subprocess.CompletedProcess(args=[], returncode=-9, stdout=b"", stderr=b"MemoryError")
    monkeypatch.setattr(pdfcheck.subprocess, "run", lambda *args, **kwargs: killed)
    with pytest.raises(UploadRejected) as refused:
        inspect_pdf(path)
    assert refused.value.reason == "damaged"


def test_child_runs_under_memory_and_cpu_limits(tmp_path):
    """The child lowers its own limits before it parses anything (DESIGN.md §4)."""
    probe = ("import resource; from ppt_web.files import pdfchild; pdfchild.check = lambda path: {"
             "'as': resource.getrlimit(resource.RLIMIT_AS)[0], "
             "'cpu': resource.getrlimit(resource.RLIMIT_CPU)[0]}; pdfchild.main(['', 'x'])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=pdfcheck.PROJECT_ROOT,
                         capture_output=True, check=True, text=True).stdout
    assert out.strip() == f'{{"as": {2**30}, "cpu": {pdfchild.CPU_SECONDS}}}'


@pytest.mark.parametrize("name, expected", [
    ("../../x.pdf", "x.pdf"),
    ("a\x00b.pdf", "ab.pdf"),
    ("\u202eexe.pdf", "exe.pdf"),
    ("fil\u2066gpj\u2069.pdf", "filgpj.pdf"),
    ("C:\\Users\\x\\y.pdf", "y.pdf"),
    (".hidden.pdf", "hidden.pdf"),
    ("  mange \t\n  mellomrom  .pdf", "mange mellomrom.pdf"),
    ("Rapport.PDF", "Rapport.pdf"),
    ("bilete.png", "bilete.png.pdf"),
    ("", "dokument.pdf"),
    ("../", "dokument.pdf"),
    ("...", "dokument.pdf"),
    (".pdf", "dokument.pdf"),
    ("\u202e\u200f", "dokument.pdf"),
])
def test_safe_filename_neutralises_hostile_names(name, expected):
    """No folders, no control or bidi characters, no hidden dot-files; always a .pdf name."""
    assert safe_filename(name) == expected


def test_safe_filename_caps_long_names_and_keeps_the_extension():
    """A 300-character name is cut to 120 characters without losing .pdf."""
    result = safe_filename("å" * 296 + ".pdf")
    assert len(result) == 120 and result == "å" * 116 + ".pdf"
    assert safe_filename("x" * 300) == "x" * 116 + ".pdf"


def test_stored_upload_carries_the_safe_name(files):
    """The name returned for display and download is the sanitised one."""
    assert store(pdf_bytes(1), "..\\..\\\u202eevil\x07.pdf").filename == "evil.pdf"


@pytest.mark.parametrize("bad", ["A" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "g" * 64, "a" * 64 + "\n"])
def test_file_path_accepts_only_lowercase_sha256(ctx, bad):
    """A digest from a URL or a row can never point outside instance/files."""
    with pytest.raises(ValueError):
        file_path(bad)


def test_a_rolled_back_upload_may_leave_a_file_but_never_a_row(files):
    """The file is on disk before its row commits: a rollback leaves a file no row names, never the reverse."""
    kept = store(pdf_bytes(1))
    db.session.commit()
    lost = store(pdf_bytes(3))
    db.session.rollback()
    on_disk = {p.name for p in (Path(current_app.instance_path) / "files").glob("??/??/*")}
    rows = set(db.session.scalars(select(StoredFile.sha256)))
    assert on_disk - rows <= {lost.sha256} and kept.sha256 in rows and lost.sha256 not in rows


def test_a_failed_upload_leaves_the_bytes_of_a_concurrent_upload_of_the_same_letter(app, files, monkeypatch):
    """Two people upload one letter at once; the first action fails after its upload, the second is
    saved. The first one's clean-up looked for a row while the second's was not yet committed and
    removed the file: the second post's row then named bytes that were gone. The clean-up now waits
    for the second upload's transaction and keeps the file it commits."""
    import threading
    import time

    from ppt_web import transaction as transaction_module
    from ppt_web.transaction import transaction

    pdf = pdf_bytes(2)
    second_stored, results = threading.Event(), {}

    def second_upload():
        with app.app_context():
            try:
                with transaction() as new_files:
                    stored = store(pdf, "same.pdf")
                    if stored.new:
                        new_files.append(stored.sha256)
                    second_stored.set()
                    time.sleep(0.5)  # the first action's clean-up runs now
                results["second"] = stored.sha256
            except Exception as exc:  # noqa: BLE001 - the test reports it
                results["second"] = exc
            finally:
                second_stored.set()
                db.session.remove()

    real_discard = transaction_module.discard_unreferenced

    def discard_while_the_second_is_open(hashes):
        other = threading.Thread(target=second_upload)
        other.start()
        assert second_stored.wait(10)
        real_discard(hashes)
        other.join(30)

    monkeypatch.setattr(transaction_module, "discard_unreferenced", discard_while_the_second_is_open)
    with pytest.raises(RuntimeError):
        with transaction() as new_files:
            stored = store(pdf, "same.pdf")
            assert stored.new
            new_files.append(stored.sha256)
            raise RuntimeError("the action fails after its upload")
    assert results["second"] == stored.sha256, results
    assert committed_rows() == 1
    assert file_path(stored.sha256).read_bytes() == pdf


def test_a_process_forked_during_an_upload_does_not_keep_its_folder_locked(files, monkeypatch):
    """A worker thread's upload is open when RQ forks a work horse (which may live for minutes). The folder
    lock belongs to the open file, which the child shared: after the upload's transaction ended, a failed
    action's clean-up in that folder waited its whole limit and left the file behind. The child now closes
    its copies at once."""
    import os
    import time

    from ppt_web.files import storage

    stored = store(pdf_bytes(1), "a.pdf")
    assert stored.new
    child = os.fork()
    if child == 0:  # the work horse: lives on, does nothing with the lock
        time.sleep(3)
        os._exit(0)
    try:
        db.session.rollback()  # the upload's transaction ends: its lock goes
        monkeypatch.setattr(storage, "DISCARD_WAIT", 1.5)
        started = time.monotonic()
        storage.discard_unreferenced([stored.sha256])
        assert time.monotonic() - started < 1.0
        assert not file_path(stored.sha256).exists()
    finally:
        os.waitpid(child, 0)


def _with_catalog(entries: dict, attach: bytes | None = None, content: bytes | None = None) -> bytes:
    """A one-page PDF with extra catalog entries, an attachment, or a raw Flate content stream."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for key, value in entries.items():
        writer._root_object[NameObject(key)] = value
    if attach is not None:
        writer.add_attachment("vedlegg.exe", attach)
    if content is not None:
        body = StreamObject()
        body._data = content
        body[NameObject("/Filter")] = NameObject("/FlateDecode")
        writer.pages[0][NameObject("/Contents")] = writer._add_object(body)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _deflated_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9)
    return b"".join(packer.compress(bytes(2**20)) for _ in range(megabytes)) + packer.flush()


JAVASCRIPT = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("app.alert('hei')")})


def test_a_decompression_bomb_is_refused_by_the_journal_post_upload_too(files):
    """A small PDF whose content stream inflates past the cap: the upload without previews decodes it too."""
    bomb = _with_catalog({}, content=_deflated_zeros(300))
    assert len(bomb) < 400_000
    with pytest.raises(UploadRejected) as refused:
        store(bomb)
    assert refused.value.reason == "bomb" and "decompression bomb" in english(refused.value.message)
    assert not db.session.new and stored_rows() == 0 and files_on_disk() == []


@pytest.mark.parametrize("entries, attach, reason, words", [
    ({"/OpenAction": JAVASCRIPT}, None, "javascript", "JavaScript"),
    ({"/OpenAction": DictionaryObject({NameObject("/S"): NameObject("/Launch"),
                                       NameObject("/F"): TextStringObject("cmd.exe")})}, None, "launch", "Launch"),
    ({}, b"MZ", "embedded_file", "embedded or attached files"),
    ({"/AcroForm": DictionaryObject({NameObject("/Fields"): ArrayObject(),
                                     NameObject("/XFA"): TextStringObject("<xdp/>")})}, None, "xfa", "XFA form"),
    ({"/OpenAction": DictionaryObject({NameObject("/S"): NameObject("/URI"),
                                       NameObject("/URI"): TextStringObject("https://example.invalid")})},
     None, "external_action", "open a web address by themselves"),
], ids=["javascript", "launch", "embedded file", "xfa", "web address on open"])
def test_active_content_is_refused_and_named(files, entries, attach, reason, words):
    with pytest.raises(UploadRejected) as refused:
        store(_with_catalog(entries, attach))
    assert refused.value.reason == reason and words in english(refused.value.message)
    assert stored_rows() == 0 and files_on_disk() == []


def test_every_kind_of_active_content_found_is_named(files):
    with pytest.raises(UploadRejected) as refused:
        store(_with_catalog({"/OpenAction": JAVASCRIPT}, attach=b"MZ"))
    assert refused.value.found == ("javascript", "embedded_file")
    message = english(refused.value.message)
    assert "JavaScript" in message and "embedded or attached files" in message


def test_a_link_to_a_web_site_is_accepted(files):
    """A web address the reader clicks is an ordinary link (letters carry them); only one opened by itself is not."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_annotation(0, Link(rect=(50, 50, 200, 80), url="https://www.udir.no"))
    out = io.BytesIO()
    writer.write(out)
    assert store(out.getvalue()).page_count == 1


@pytest.mark.parametrize("data", [b"<html><script>alert(1)</script>" + pdf_bytes(1), pdf_bytes(1) + b"PK\x05\x06" + bytes(18)],
                         ids=["HTML before the header", "ZIP after the end"])
def test_a_polyglot_is_refused(files, data):
    with pytest.raises(UploadRejected) as refused:
        store(data)
    assert refused.value.reason == "extra_data"
