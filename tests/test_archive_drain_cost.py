"""What a drain of the archive backlog costs per job, beyond its statements (tests/test_archive_batch_cost.py):
the http transport keeps one connection open between messages, never across a fork, and a job's outcome
is written without the unit of work's flush while the loaded case and post still show what was written."""
from __future__ import annotations

import os
import sys
import threading

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ppt_web.archive import sending
from ppt_web.archive.message import Message
from ppt_web.archive.transports import http
from ppt_web.archive.transports.http import HttpTransport
from ppt_web.cases import posts
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Case, JournalPost

from . import builders
from .archive_server import ArchiveServer
from .conftest import user


@pytest.fixture
def http_archive(app):
    with ArchiveServer() as server:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=server.url, PPT_ARCHIVE_HTTP_TIMEOUT=5)
        yield server


def test_a_batch_over_http_takes_one_connection_for_all_its_messages(ctx, http_archive):
    for n in range(4):
        builders.case(title=f"Sak {n}")
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))

    assert sending.process_many(ids, "w1") == {"archived": 4}

    assert http_archive.requests == 4 and len(http_archive.stored) == 4
    assert http_archive.connections == 1


def test_a_forked_process_makes_its_own_http_session():
    """A work horse must not write on its parent's socket (two processes on one connection mix their bytes)."""
    parent = http.session()
    assert http.session() is parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a session of its own, and leave at once
        try:
            os.write(write, b"own" if http.session() is not parent else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"own"


def test_a_batch_writes_the_receipts_ids_without_a_flush_and_the_loaded_rows_show_them(app, ctx):
    case = builders.case()
    for n in range(2):
        posts.finalize(user("radgjevar1"), builders.post(case, title=f"Dokument {n}").id)
    ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
    case_id = case.id
    flushes: list[int] = []
    listener = lambda session, context: flushes.append(len(session.dirty))  # noqa: E731
    event.listen(Session, "after_flush", listener)
    try:
        assert sending.process_many(ids, "w1") == {"archived": 3}
    finally:
        event.remove(Session, "after_flush", listener)

    assert flushes == []
    loaded = db.session.get_one(Case, case_id)  # still in the session: it shows what was written
    assert loaded.archive_system_id and loaded.archive_year and loaded.archive_seq
    assert all(p.archive_system_id and p.archive_journal_seq for p in loaded.posts)
    assert not db.session.dirty  # nothing left for a later flush to write again
    db.session.expire_all()
    fresh = db.session.get_one(Case, case_id)
    assert (fresh.archive_system_id, fresh.archive_year, fresh.archive_seq) == (
        loaded.archive_system_id, loaded.archive_year, loaded.archive_seq)
    posts_ids = [p.archive_system_id for p in db.session.scalars(
        select(JournalPost).where(JournalPost.case_id == case_id))]
    assert len(posts_ids) == 2 and all(posts_ids)


def test_an_archive_id_with_a_control_character_is_stored_cleaned_as_the_flush_cleaned_it(app, ctx):
    case = builders.case()
    job = db.session.scalars(select(ArchiveJob)).one()
    sending.record_archive_ids(job, {"mappe": {"systemID": "mappe\x1b-7\x07", "saksaar": "2026",
                                               "sakssekvensnummer": "12", "referanseEksternNoekkel": f"case:{case.id}"}})
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get_one(Case, case.id)
    assert (stored.archive_system_id, stored.archive_year, stored.archive_seq) == ("mappe-7", 2026, 12)


def _in_new_thread(fn):
    """fn's result from a thread of its own: its own connection pools, as a new worker thread would have."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(30)
    return result[0]


def test_the_http_transport_reads_the_proxy_settings_once_not_per_message(app, http_archive):
    """requests looked the proxy settings up in the environment on every message: most of a send's CPU."""
    transport = HttpTransport(http_archive.url, timeout=5)
    message = Message("no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett", "arkivmelding.xml", b"<a/>", ())
    lookups = []

    def sends():
        def count(frame, event, arg):
            if event == "call" and frame.f_code.co_name == "getproxies_environment":
                lookups.append(1)
        sys.setprofile(count)
        try:
            return [transport.send(message, f"id-{n}").kind for n in range(5)]
        finally:
            sys.setprofile(None)

    assert _in_new_thread(sends) == ["ok"] * 5
    assert len(lookups) <= 2  # one look-up for the pool (it reads the environment twice), none per message
    assert http_archive.requests == 5 and http_archive.connections == 1


def test_the_http_transport_goes_through_the_environments_proxy(app, http_archive, monkeypatch):
    proxy = http_archive.url.removesuffix("/arkiv")  # the test archive answers whatever path it is asked for
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    transport = HttpTransport("http://arkiv.invalid/arkiv", timeout=5)
    message = Message("no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett", "arkivmelding.xml", b"<a/>", ())

    assert _in_new_thread(lambda: transport.send(message, "via-proxy").kind) == "ok"
    assert http_archive.stored["via-proxy"]["parts"] == {"arkivmelding.xml": b"<a/>"}
