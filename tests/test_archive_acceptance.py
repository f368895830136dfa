"""A generated run, as a municipal archive would receive it.

Forty clients' work is done while the worker is stopped: cases open, posts are finalized and written
off, cases close, some reopen, take a new post, get their title and a post corrected, and close again.
Then the jobs are drained in order into the reference archive, which refuses what a Noark archive
refuses. Nothing may be refused, every folder and post must be there once and in the state the app
has, with the archive's own numbers, and the app must show those numbers.

Run with -s to see the figures.
"""
from __future__ import annotations

import io
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from flask import current_app
from lxml import etree
from sqlalchemy import select, update

from ppt_web.archive import sending
from ppt_web.archive.message import AM
from ppt_web.cases import posts as post_service
from ppt_web.cases import service as case_service
from ppt_web.extensions import db
from ppt_web.generate import generate, text_pdf
from ppt_web.models import ArchiveJob, ArchiveStatus, Case, CaseStatus, JobStatus, JournalPost, PostStatus

from .conftest import sign_in, user

pytestmark = [pytest.mark.slow, pytest.mark.app_config(PPT_ARCHIVE_IMMEDIATE=False)]
OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"


def drain() -> Counter:
    """What the worker does after the outage, in order: every due job, oldest first, until none is left."""
    outcomes: Counter = Counter()
    for _ in range(10):
        db.session.execute(update(ArchiveJob).where(ArchiveJob.job_status == JobStatus.NEW)
                           .values(next_attempt_at=None))
        db.session.commit()
        due = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.job_status == JobStatus.NEW,
                                                                 ArchiveJob.deleted_at.is_(None))
                                      .order_by(ArchiveJob.id)))
        if not due:
            break
        for job_id in due:
            outcomes[sending.process(job_id, "acceptance")] += 1
        db.session.expire_all()
    return outcomes


def work_while_stopped() -> dict:
    """Closed cases reopened, given a post, corrected and closed again: all before anything is sent."""
    handler = {u: user(u) for u in ("radgjevar1", "radgjevar2")}
    konsulent = user("konsulent")
    closed = list(db.session.scalars(select(Case).where(Case.status == CaseStatus.CLOSED).order_by(Case.id).limit(6)))
    assert len(closed) >= 4, "the generated run closes cases"
    for case in closed:
        actor = handler[case.handler.username]
        case_service.reopen_case(actor, case.id)
        post = post_service.create_post(actor, case.id, post_service.PostData(
            post_type="I", title="Nytt brev etter avslutting", document_date=case.opened_on,
            received_on=case.opened_on, correspondents=[post_service.CorrespondentData(
                name="Ola Nordmann", address="Heimvegen 3", postal_code="6065", city="Ulsteinvik")]),
            post_service.Upload(io.BytesIO(text_pdf("Brev")), "brev.pdf"))
        post_service.finalize(actor, post.id)
        case_service.correct_case(konsulent, case.id, "Skrivefeil i tittelen", case.title + " (retta)")
        finalized = db.session.scalar(select(JournalPost).where(JournalPost.case_id == case.id,
                                                                JournalPost.status == PostStatus.FINALIZED,
                                                                JournalPost.id != post.id).limit(1))
        if finalized is not None:  # a corrected post, and its correspondent moved
            moved = [post_service.CorrespondentData(name=c.name, organisation_id=c.organisation_id,
                                                    address="Nyvegen 1", postal_code="6070", city="Tjørvåg")
                     for c in finalized.correspondents]
            post_service.correct_metadata(konsulent, finalized.id, "Feil tittel", post_service.PostData(
                post_type=finalized.post_type.value, title=finalized.title + " (retta)",
                document_date=finalized.document_date, received_on=finalized.received_on,
                sent_on=finalized.sent_on, correspondents=moved))
        case_service.close_case(actor, case.id, write_off_method="TE")
    return {"reopened": len(closed)}


def archive_db() -> sqlite3.Connection:
    conn = sqlite3.connect(Path(current_app.config["PPT_LOCAL_ARCHIVE_DIR"]) / "arkiv.sqlite3")
    conn.row_factory = sqlite3.Row
    return conn


def created_closed(conn: sqlite3.Connection) -> int:
    """Folders whose creating message already said closed (saksstatus A or avsluttetDato)."""
    count = 0
    for row in conn.execute("SELECT payload FROM message WHERE meldingstype = ?", (OPPRETT,)):
        root = etree.fromstring(bytes(row["payload"]))
        for mappe in root.iter(f"{{{AM}}}mappe"):
            status = mappe.findtext(f"{{{AM}}}saksstatus/{{*}}kode")
            if status == "A" or mappe.find(f"{{{AM}}}avsluttetDato") is not None:
                count += 1
    return count


def test_a_generated_run_with_closings_during_an_outage_is_accepted_whole(app, ctx, client):
    stats = generate(40, seed=15, echo=lambda *a: None)
    extra = work_while_stopped()
    waiting = db.session.scalar(select(db.func.count()).select_from(ArchiveJob)
                                .where(ArchiveJob.job_status == JobStatus.NEW))
    assert waiting > 0  # nothing went while the worker was stopped

    outcomes = drain()

    jobs = list(db.session.scalars(select(ArchiveJob)))
    by_status = Counter(j.archive_status for j in jobs)
    refused = [(j.id, j.event, j.message) for j in jobs if j.archive_status != ArchiveStatus.ARCHIVED]
    assert refused == [], refused[:5]
    conn = archive_db()
    folders = conn.execute("SELECT noekkel, count(*) n, max(saksstatus) s, max(saksaar) y, max(sakssekvensnummer) q "
                           "FROM folder GROUP BY noekkel").fetchall()
    posts = conn.execute("SELECT noekkel, count(*) n, max(journalpostnummer) jp FROM post GROUP BY noekkel").fetchall()
    assert all(f["n"] == 1 for f in folders) and all(p["n"] == 1 for p in posts)  # each once
    folder = {f["noekkel"]: f for f in folders}
    post = {p["noekkel"]: p for p in posts}

    cases = list(db.session.scalars(select(Case).where(Case.client_id.is_not(None))))
    assert {f"case:{c.id}" for c in cases} == set(folder)
    for case in cases:  # the archive's state is the app's, with the archive's own numbers, kept by the app
        held = folder[f"case:{case.id}"]
        assert held["s"] == ("A" if case.status == CaseStatus.CLOSED else "B"), case.id
        assert (case.archive_year, case.archive_seq) == (held["y"], held["q"])
    archived_posts = {j.post_id for j in jobs if j.event == "post_finalized"}
    assert {f"post:{i}" for i in archived_posts} == set(post)
    for p in db.session.scalars(select(JournalPost).where(JournalPost.id.in_(archived_posts))):
        assert p.archive_post_number == post[f"post:{p.id}"]["jp"]
        assert p.archive_number == f"{p.case.archive_number}-{p.archive_post_number}"
    # What the archive holds after closing: no I or N post of a closed folder left open.
    open_items = conn.execute(
        "SELECT count(*) FROM post p JOIN folder f ON f.id = p.folder_id WHERE f.saksstatus = 'A' "
        "AND p.journalposttype IN ('I', 'N') AND NOT EXISTS (SELECT 1 FROM write_off w WHERE w.post_id = p.id)"
    ).fetchone()[0]
    closed_at_creation = created_closed(conn)
    assert open_items == 0 and closed_at_creation == 0

    # The app shows the archive's numbers.
    sample = next(c for c in cases if c.status == CaseStatus.CLOSED)
    sample_post = next(p for p in sample.posts if p.id in archived_posts)
    sign_in(client, sample.handler.username)
    assert f'class="archive-number">{sample.archive_number}<' in client.get(f"/cases/{sample.id}").text
    assert f'class="archive-number">{sample_post.archive_number}<' in client.get(f"/posts/{sample_post.id}").text

    print(f"\ngenerated: {stats}; reopened, given a post, corrected and closed again: {extra['reopened']}")
    print(f"jobs: {len(jobs)} ({dict(Counter(j.event for j in jobs))}); worker outcomes: {dict(outcomes)}")
    print(f"archived: {by_status[ArchiveStatus.ARCHIVED]}, refused: {len(refused)}; folders: {len(folders)} "
          f"(created closed: {closed_at_creation}), posts: {len(posts)}, posts into closed folders refused: 0, "
          f"closed folders with open I/N posts: {open_items}")
    print(f"on screen: case {sample.number} -> I arkivet {sample.archive_number}; post {sample_post.number} -> "
          f"{sample_post.archive_number}")
