"""Post registration intake from the sync folder: exactly once, complete, nothing lost (SPEC §5)."""
from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select

from ppt_web.extensions import db
from ppt_web.models import InboxItem, InboxSource, InboxStatus
from ppt_web.postreg import intake, sync_intake
from ppt_web.queue import connection

from .builders import make_pdf, valid_national_id
from .conftest import ROOT, activity_rows, without_post_registration

pytestmark = pytest.mark.app_config(PPT_SYNC_SETTLE_SECONDS=0)


def sync_dir(app) -> Path:
    folder = Path(app.config["PPT_SYNC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scan(passes: int = 2):
    total = {}
    for _ in range(passes):
        for key, value in sync_intake.scan_sync_folder().items():
            total[key] = total.get(key, 0) + value
    return total


def items(**where) -> list[InboxItem]:
    query = select(InboxItem).order_by(InboxItem.id)
    for key, value in where.items():
        query = query.where(getattr(InboxItem, key) == value)
    return list(db.session.scalars(query))


def quarantined_bytes(app, item: InboxItem) -> bytes:
    return (Path(app.instance_path) / "quarantine" / item.quarantine_name).read_bytes()


def test_scans_are_imported_once_with_pages_and_previews_then_removed(app, ctx):
    root = sync_dir(app)
    (root / "2026" / "uke 48").mkdir(parents=True)
    first, second = make_pdf(3), make_pdf(1)
    (root / "skann 001.pdf").write_bytes(first)
    (root / "2026" / "uke 48" / "Brev frå skule (æøå) .PDF").write_bytes(second)
    (root / ".hidden.pdf").write_bytes(make_pdf(1))
    (root / "scan.pdf.part").write_bytes(b"%PDF-1.7 still coming")

    assert scan(passes=1).get("imported", 0) == 0  # first sight only notes the files
    assert scan(passes=1)["imported"] == 2
    got = items()
    assert {i.filename: (i.source, i.status, i.page_count, i.sha256) for i in got} == {
        "skann 001.pdf": (InboxSource.SCAN, InboxStatus.NEW, 3, hashlib.sha256(first).hexdigest()),
        "Brev frå skule (æøå).pdf": (InboxSource.SCAN, InboxStatus.NEW, 1, hashlib.sha256(second).hexdigest())}
    for item in got:
        previews = Path(app.instance_path) / "previews" / item.sha256[:2] / item.sha256
        assert sorted(p.name for p in previews.iterdir()) == [f"{n}.jpg" for n in range(1, item.page_count + 1)]
    assert not (root / "skann 001.pdf").exists()
    assert not (root / "2026" / "uke 48" / "Brev frå skule (æøå) .PDF").exists()
    assert (root / ".hidden.pdf").exists() and (root / "scan.pdf.part").exists()  # not ours to take
    assert scan().get("imported", 0) == 0 and len(items()) == 2
    assert len(activity_rows("inbox_received")) == 2


@pytest.mark.app_config(PPT_SYNC_SETTLE_SECONDS=1)
def test_a_file_written_slowly_is_imported_once_and_complete(app, ctx):
    root = sync_dir(app)
    data = make_pdf(4)
    target = root / "langsam.pdf"
    chunks = [data[i:i + len(data) // 4 + 1] for i in range(0, len(data), len(data) // 4 + 1)]

    def writer():
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
                time.sleep(1.6)  # longer than the settle time: a pause must not be read as "done"

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (not thread.is_alive() and not target.exists()):
        sync_intake.scan_sync_folder()
        time.sleep(0.3)
    thread.join()
    got = items()
    assert len(got) == 1
    assert got[0].status == InboxStatus.NEW and got[0].page_count == 4
    assert got[0].sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.app_config(PPT_SYNC_INCOMPLETE_SECONDS=0)
def test_a_file_that_never_completes_is_reported_and_kept(app, ctx):
    root = sync_dir(app)
    data = make_pdf(2)
    (root / "avbroten.pdf").write_bytes(data[: len(data) // 2])
    scan()
    (item,) = items()
    assert item.status == InboxStatus.SYSTEM_REJECTED and item.reject_code == "incomplete"
    assert quarantined_bytes(app, item) == data[: len(data) // 2]
    assert not (root / "avbroten.pdf").exists()


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("hemmeleg")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _no_pages_pdf() -> bytes:
    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()


@pytest.mark.app_config(PPT_MAX_UPLOAD_BYTES=200_000)
def test_broken_input_is_refused_with_a_reason_and_kept_in_quarantine(app, ctx):
    root = sync_dir(app)
    known = make_pdf(1)
    (root / "forst.pdf").write_bytes(known)
    scan()
    files = {
        "tekst.pdf": (b"Dette er ikkje ein PDF\n" * 100, "not_pdf"),
        "laast.pdf": (_encrypted_pdf(), "encrypted"),
        "tom.pdf": (_no_pages_pdf(), "no_pages"),
        "stor.pdf": (make_pdf(1) + b"%" * 250_000 + b"\n%%EOF\n", "too_large"),
        "kopi.pdf": (known, "duplicate"),
    }
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    counts = scan()
    assert counts["refused"] == 5
    refused = {i.filename: i for i in items(status=InboxStatus.SYSTEM_REJECTED)}
    for name, (data, reason) in files.items():
        item = refused[name]
        assert item.reject_code == reason, name
        assert item.reject_reason  # a readable reason for the inbox
        assert quarantined_bytes(app, item) == data
        assert not (root / name).exists()
    assert "forst.pdf" not in refused  # the first copy is fine; only the second is a duplicate
    assert len(activity_rows("inbox_refused")) == 5


def test_five_hundred_files_at_once_are_each_imported_once(app, ctx):
    root = sync_dir(app)
    expected = set()
    for n in range(500):
        data = make_pdf(1 + n % 3, tag=f"burst-{n}")
        expected.add(hashlib.sha256(data).hexdigest())
        (root / f"batch-{n // 100}" / f"skann {n:04d}.pdf").parent.mkdir(exist_ok=True)
        (root / f"batch-{n // 100}" / f"skann {n:04d}.pdf").write_bytes(data)
    for _ in range(5):
        scan(passes=1)
        if not any(root.rglob("*.pdf")):
            break
    assert db.session.scalar(select(func.count(InboxItem.id))) == 500
    assert {i.sha256 for i in items()} == expected
    assert not any(root.rglob("*.pdf"))


@pytest.mark.slow
def test_an_intake_killed_mid_import_and_restarted_imports_every_file_once(app, ctx, tmp_path):
    root = sync_dir(app)
    expected = set()
    for n in range(60):
        data = make_pdf(1, tag=f"kill-{n}")
        expected.add(hashlib.sha256(data).hexdigest())
        (root / f"skann {n:03d}.pdf").write_bytes(data)
    env = {**os.environ, "PPT_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "PPT_REDIS_URL": app.config["PPT_REDIS_URL"], "PPT_INSTANCE_PATH": app.instance_path,
           "PPT_SYNC_DIR": str(root), "PPT_SYNC_SETTLE_SECONDS": "0", "PPT_SECRET_KEY": "test"}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "ppt_web", "intake", "--passes", "3"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        db.session.remove()
        if (db.session.scalar(select(func.count(InboxItem.id))) or 0) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db.session.remove()
    assert 10 <= db.session.scalar(select(func.count(InboxItem.id))) < 60, "killed before it was done"
    connection().delete(intake.redis_key(intake.SCAN_LOCK))  # the killed scanner's lock would run out by itself after a minute
    for _ in range(4):
        scan(passes=1)
    got = items()
    assert len(got) == 60 and {i.sha256 for i in got} == expected
    assert all(i.status == InboxStatus.NEW for i in got)
    assert not any(root.glob("*.pdf"))


def test_one_scanner_at_a_time(app, ctx):
    conn = connection()
    conn.set(intake.redis_key(intake.SCAN_LOCK), "someone-else", ex=30)
    (sync_dir(app) / "a.pdf").write_bytes(make_pdf(1))
    assert scan() == {"busy": 2}
    assert items() == []
    conn.delete(intake.redis_key(intake.SCAN_LOCK))


def test_odd_names_do_not_stop_the_intake(app, ctx):
    root = sync_dir(app)
    good = make_pdf(1)
    latin1 = os.path.join(os.fsencode(root), b"Brev fr\xe5 skule.pdf")  # not UTF-8, as old scanners write
    with open(latin1, "wb") as out:
        out.write(make_pdf(2))
    (root / ("长" * 83 + ".pdf")).write_bytes(b"not a pdf\n" * 200)  # 253 bytes: no room for a prefix
    (root / "desktop.ini").write_bytes(b"[.ShellClassInfo]")
    (root / "ok.pdf").write_bytes(good)
    scan()
    by_status = {}
    for item in items():
        by_status.setdefault(item.status, []).append(item)
    assert len(by_status[InboxStatus.NEW]) == 2
    (refused,) = by_status[InboxStatus.SYSTEM_REJECTED]
    assert refused.reject_code == "not_pdf" and quarantined_bytes(app, refused) == b"not a pdf\n" * 200
    assert not os.path.exists(latin1) and (root / "desktop.ini").exists()


def test_a_shutting_down_worker_leaves_the_rest_of_a_burst_for_the_next_pass(app, ctx):
    root = sync_dir(app)
    for n in range(6):
        (root / f"skann {n}.pdf").write_bytes(make_pdf(1, tag=f"stop-{n}"))
    scan(passes=1)
    intake.STOPPING.set()
    try:
        assert scan(passes=1)["deferred"] == 6
    finally:
        intake.STOPPING.clear()
    assert items() == [] and len(list(root.glob("*.pdf"))) == 6
    assert scan(passes=1)["imported"] == 6


@pytest.mark.app_config(PPT_SYNC_INCOMPLETE_SECONDS=0)
def test_skipped_files_are_reported_once_with_the_reason_and_left_alone(app, ctx, tmp_path, capsys):
    """A hidden file, a temporary file, a hidden folder, a link and a pipe are not read, and the post
    registration sees each one once, with the reason; the log says so without the national id in a name.
    Windows' own files (desktop.ini, Thumbs.db) are not worth a row."""
    root = sync_dir(app)
    number = valid_national_id(3)
    outside = tmp_path / "utanfor.pdf"
    outside.write_bytes(make_pdf(1))
    (root / f".{number[:6]} {number[6:]} brev.pdf").write_bytes(make_pdf(1))
    (root / "skann.pdf.part").write_bytes(b"%PDF-1.7 half")
    (root / "desktop.ini").write_bytes(b"[.ShellClassInfo]")
    (root / "Thumbs.db").write_bytes(b"thumbs")
    (root / ".gammalt").mkdir()
    (root / ".gammalt" / "inni.pdf").write_bytes(make_pdf(1))
    (root / "lenkje.pdf").symlink_to(outside)
    (root / "mappelenkje").symlink_to(tmp_path)
    os.mkfifo(root / "rør.pdf")
    (root / "ok.pdf").write_bytes(make_pdf(2))
    capsys.readouterr()
    for _ in range(3):
        scan()
    refused = items(status=InboxStatus.SYSTEM_REJECTED)
    assert sorted((i.reject_code, i.filename) for i in refused) == sorted([
        ("skipped_hidden", ".gammalt/"), ("skipped_hidden", f".{number[:6]} {number[6:]} brev.pdf"),
        ("skipped_link", "lenkje.pdf"), ("skipped_link", "mappelenkje/"), ("skipped_special", "rør.pdf"),
        ("skipped_temp", "skann.pdf.part")])
    assert all(i.source == InboxSource.SCAN and i.quarantine_name is None and i.reject_reason for i in refused)
    assert [i.filename for i in items(status=InboxStatus.NEW)] == ["ok.pdf"]
    for name in (f".{number[:6]} {number[6:]} brev.pdf", "skann.pdf.part", "desktop.ini", ".gammalt/inni.pdf"):
        assert (root / name).exists()  # left where they were
    assert outside.exists() and (root / "lenkje.pdf").is_symlink()
    err = capsys.readouterr().err
    skipped_lines = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped_lines) == 6 and number not in err and number[6:] not in err
    # Seen and dealt with: a later change, or more passes, add nothing.
    (root / "skann.pdf.part").write_bytes(b"%PDF-1.7 half, and more")
    scan()
    scan()
    assert len(items(status=InboxStatus.SYSTEM_REJECTED)) == 6
    assert "skipped" not in capsys.readouterr().err
    # Taken away and put back: that is news again.
    (root / "skann.pdf.part").unlink()
    scan()
    (root / "skann.pdf.part").write_bytes(b"%PDF-1.7 again")
    scan()
    scan()
    assert [i.filename for i in items(reject_code="skipped_temp")] == ["skann.pdf.part", "skann.pdf.part"]


def test_a_hidden_or_temporary_file_is_reported_only_after_it_stayed_unchanged(app, ctx):
    """By default (PPT_SYNC_INCOMPLETE_SECONDS, 300 s) a .part a scanner is still writing is not news,
    while a link or a pipe, which no scanner writes, is reported once it has settled."""
    root = sync_dir(app)
    (root / "skann.pdf.part").write_bytes(b"%PDF-1.7 half")
    (root / ".skann.pdf").write_bytes(b"%PDF-1.7 half")
    os.mkfifo(root / "rør.pdf")
    scan()
    scan()
    assert [i.reject_code for i in items()] == ["skipped_special"]


def test_the_inbox_shows_a_skipped_file_as_skipped_with_the_reason(app, login_as):
    with app.app_context():
        os.mkfifo(sync_dir(app) / "rør.pdf")
        scan()
        scan()
        (item,) = items()
        item_id = item.id
        db.session.remove()
    web = login_as("sekretaer")
    html = web.get("/post-registration/").get_data(as_text=True)
    assert "rør.pdf" in html and "Hoppa over" in html and "ikkje ei vanleg fil" in html
    page = web.get(f"/post-registration/{item_id}").get_data(as_text=True)
    assert "Hoppa over" in page and "ikkje ei vanleg fil" in page and "liggjande i synkroniseringsmappa" in page
    web.post(f"/post-registration/{item_id}/refusal-seen")
    assert "rør.pdf" not in web.get("/post-registration/").get_data(as_text=True)  # dealt with: off the list


def test_another_letter_under_the_same_name_size_and_time_is_imported_not_removed(app, ctx):
    """A scanner without a clock stamps every file 1980-01-01, and one that reuses its names writes the next
    letter of the same size under the same name: before, the second was taken for the first (seen before a
    crash) and removed unread. A copy of the same bytes put back is still just cleaned up."""
    root = sync_dir(app)
    first, second = make_pdf(1, tag="brev-a"), make_pdf(1, tag="brev-b")
    assert len(first) == len(second) and first != second
    stamp = (315532800, 315532800)  # 1980-01-01
    for data in (first, second, first):
        (root / "skann.pdf").write_bytes(data)
        os.utime(root / "skann.pdf", stamp)
        scan()
        assert not (root / "skann.pdf").exists()
    assert sorted(i.sha256 for i in items()) == sorted(hashlib.sha256(d).hexdigest() for d in (first, second))


def _cannot_read(monkeypatch, names: set[str]) -> None:
    """As if the service may not read these files, or open these folders (the tests run as root, who may)."""
    real_sha, real_scandir = sync_intake._sha256, os.scandir

    def sha256(path):
        if path.name in names:
            raise PermissionError(13, "Permission denied")
        return real_sha(path)

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) in names:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(sync_intake, "_sha256", sha256)
    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("app", [{"PPT_INTAKE_THREADS": 1}, {"PPT_INTAKE_THREADS": 2}], indirect=True)
@pytest.mark.app_config(PPT_QUEUE_NAME=f"unread-{uuid.uuid4().hex[:8]}")
def test_a_scan_that_cannot_be_read_is_shown_in_the_inbox_until_it_is_read(app, login_as, monkeypatch, capsys):
    """Before, a file the intake could see but not read (no permission, an I/O error) stayed in the folder for
    ever with a log line at every pass, and a folder it could not open was passed over without a word. Now
    post registration sees them, with the reason, until they are read; the log says so once, without the
    national id in a name; and someone without post registration sees nothing of it."""
    number = valid_national_id(4)
    locked = {"låst.pdf", f"{number} brev.pdf", "uke 49"}
    _cannot_read(monkeypatch, locked)
    with app.app_context():
        root = sync_dir(app)
        (root / "låst.pdf").write_bytes(make_pdf(1, tag="låst"))
        (root / f"{number} brev.pdf").write_bytes(make_pdf(2, tag="brev"))
        (root / "uke 49").mkdir()
        (root / "uke 49" / "inni.pdf").write_bytes(make_pdf(1, tag="inni"))
        capsys.readouterr()
        for _ in range(4):
            scan()
        assert items() == [] and (root / "låst.pdf").exists() and (root / "uke 49" / "inni.pdf").exists()
        db.session.remove()
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "cannot be taken in" in line]) == 3  # once each, not per pass
    assert number not in err and number[6:] not in err
    web = login_as("sekretaer")
    html = web.get("/post-registration/").get_data(as_text=True)
    assert "3 filer i synkroniseringsmappa kan ikkje lesast." in html
    assert "låst.pdf" in html and f"{number} brev.pdf" in html and "uke 49/" in html
    assert "tenesta har ikkje løyve til å lese henne" in html and "ei mappe tenesta ikkje kan opne" in html

    without_post_registration(app, web, "låst.pdf", "kan ikkje lesast")  # a secretary without post registration

    locked.clear()  # the permissions are put right
    with app.app_context():
        (root / f"{number} brev.pdf").unlink()  # or someone took it away
        scan()
        scan()
        assert sorted(i.filename for i in items(status=InboxStatus.NEW)) == ["inni.pdf", "låst.pdf"]
        db.session.remove()
    html = web.get("/post-registration/").get_data(as_text=True)
    assert "kan ikkje lesast" not in html and "data-unread" not in html
    assert "cannot be taken in" not in capsys.readouterr().err


@pytest.mark.app_config(PPT_QUEUE_NAME=f"unentered-{uuid.uuid4().hex[:8]}")
def test_a_folder_that_can_be_listed_but_not_entered_does_not_stop_the_intake(app, login_as, monkeypatch, capsys):
    """A folder the service may list but not enter (read without execute: r-- for the service's user, as a
    share's odd mode gives): its names are seen, but nothing in it can be looked at. Before, the first
    look (is it a link?) raised out of the pass, and every pass failed the same way: no scan anywhere in
    the sync folder was imported while the folder was there. Now its files wait unread, shown in the inbox
    with the reason, and the rest is imported."""
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # as the kernel answers for a name in such a folder (the tests run as root)
        if os.path.basename(os.path.dirname(os.fspath(path))) == "uke 50":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    real_scandir = os.scandir

    def scandir(path="."):  # nor may a folder in it be opened
        if os.path.basename(os.path.dirname(os.fspath(path))) == "uke 50":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    with app.app_context():
        root = sync_dir(app)
        (root / "uke 50" / "indre").mkdir(parents=True)
        (root / "uke 50" / ".skjult mappe").mkdir()
        (root / "uke 50" / "inni.pdf").write_bytes(make_pdf(1, tag="inni-50"))
        (root / "uke 50" / ".skjult.pdf").write_bytes(make_pdf(1, tag="skjult-50"))
        (root / "open.pdf").write_bytes(make_pdf(1, tag="open-50"))
        with monkeypatch.context() as patched:
            patched.setattr(os, "stat", stat)
            patched.setattr(os, "scandir", scandir)
            counts = scan()
        assert [i.filename for i in items(status=InboxStatus.NEW)] == ["open.pdf"]
        assert counts["unreadable"] >= 2 and (root / "uke 50" / "inni.pdf").exists()
        db.session.remove()
    html = login_as("sekretaer").get("/post-registration/").get_data(as_text=True)
    assert "uke 50/inni.pdf" in html and "uke 50/.skjult.pdf" in html and "uke 50/indre/" in html
    assert "uke 50/.skjult mappe/" in html and "ERROR" not in capsys.readouterr().err
    assert "tenesta har ikkje løyve til å lese henne" in html and "ei mappe tenesta ikkje kan opne" in html
