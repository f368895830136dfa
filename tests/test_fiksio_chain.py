"""The whole Fiks IO chain with real processes: a worker.py sends over the strict Fiks IO test server and a
real RabbitMQ to the reference archive, which answers on the app's queue; and the faults around it, each
ending with every job Arkivert once and each object in the archive once.

Shortened settings keep it quick: the sweep every 2 s and a back-off of 1 s. Each test prints its figures
(run with -s to see them).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ppt_web.archive import fiksio, sending
from ppt_web.archive.reference.rules import OPPRETT
from ppt_web.cases import posts
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.fiksio.amqp import Consumer, Received
from ppt_web.fiksio.settings import from_config
from ppt_web.generate import generate
from ppt_web.models import ArchiveJob, ArchiveStatus, Case, JobStatus, JournalPost
from ppt_web.queue import connection

from . import builders
from .conftest import sign_in
from .fiksio_chain import LOCK_KEY, Chain, archive_counts, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.one_database,
              pytest.mark.app_config(PPT_QUEUE_NAME=f"fiksio-chain-{uuid.uuid4().hex[:8]}", PPT_SWEEP_SECONDS=2,
                                     PPT_ARCHIVE_BACKOFF_SECONDS=1)]

FAST = {"PPT_SWEEP_SECONDS": 2, "PPT_ARCHIVE_BACKOFF_SECONDS": 1}
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def chain(rabbitmq_node):
    """Keys, accounts, the test server and the RabbitMQ logins, shared by the module's tests."""
    folder = Path(tempfile.mkdtemp(prefix="ppt-fiksio-chain-"))
    made = Chain(rabbitmq_node, folder)
    yield made
    made.close()
    shutil.rmtree(folder, ignore_errors=True)
    if TIMINGS:
        print("\n[fiksio chain] " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in TIMINGS.items()))


class Run:
    """One test's share of the chain: the app configured for it, its archive folder, its workers."""

    def __init__(self, chain: Chain, app, folder: Path):
        self.chain, self.app, self.folder = chain, app, folder
        self.archive_root = folder / "arkiv"
        self.workers: list = []
        self.log = folder / "worker.log"
        app.config.update(chain.app_config())
        with app.app_context():  # a worker killed by an earlier test would hold the consumer lock a while
            connection().delete(LOCK_KEY + chain.app_party.account_id)

    def env(self, **extra) -> dict:
        return self.chain.worker_env(self.app, **FAST, **extra)

    def worker(self, **extra):
        worker = self.chain.start_worker(self.env(**extra), self.log)
        self.workers.append(worker)
        return worker

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        for worker in self.workers:
            self.chain.stop_worker(worker)
        self.chain.stop_participant()


@pytest.fixture
def run(chain, app, tmp_path, request):
    chain.reset()
    began = time.monotonic()
    current = Run(chain, app, tmp_path)
    yield current
    current.close()
    TIMINGS[request.node.name.removeprefix("test_")[:40]] = time.monotonic() - began


def jobs() -> list[ArchiveJob]:
    db.session.rollback()
    db.session.expire_all()
    return list(db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id)))


def all_archived(expected: int | None = None) -> bool:
    found = jobs()
    return bool(found) and (expected is None or len(found) == expected) and all(
        (j.job_status, j.archive_status) == (JobStatus.DONE, ArchiveStatus.ARCHIVED) for j in found)


def states(run: Run) -> str:
    rows = [(j.id, j.event, j.job_status, j.archive_status, (j.message or "")[:120]) for j in jobs()
            if j.archive_status != ArchiveStatus.ARCHIVED]
    return f"not archived: {rows[:8]}\nserver failures: {run.chain.server.failures[:3]}\nworker log:\n" \
           f"{run.log_text()[-3000:]}\nRabbitMQ's log:\n{run.chain.node.log_tail(15)}"


def job_of(event: str) -> ArchiveJob:
    return next(j for j in jobs() if j.event == event)


def assert_each_once_in_the_archive(run: Run, found: list[ArchiveJob]) -> dict:
    """The archive took one message per job (a resend has the same klientMeldingId) and holds each folder and
    post once."""
    held = archive_counts(run.archive_root)
    assert held["messages"] == len(found), (held["messages"], len(found))
    assert all(f["n"] == 1 for f in held["folders"].values()), held["folders"]
    assert all(p["n"] == 1 for p in held["posts"].values()), held["posts"]
    return held


def rows_by_job(html: str) -> dict[int, str]:
    """The archive log fragment's rows, by job id."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r'<tr id="job-(\d+)"(.*?)</tr>', html, re.S)}


# -- end to end ------------------------------------------------------------------------------------

def test_generated_data_reaches_the_reference_archive_and_the_log_shows_mottatt_then_arkivert(run, ctx, client):
    """Generated work goes over Fiks IO into the reference archive: every job Utført / Arkivert with the
    archive's numbers on the case and the post, nothing the test server would refuse, each object once;
    and a consultant watching the archive log sees a job "Mottatt av arkivet" before it is "Arkivert"."""
    chain = run.chain
    stats = generate(3, seed=16, echo=lambda *a: None)
    total = len(jobs())
    assert total >= 10
    chain.server.kvittering_delay = 1.5  # the first job's kvittering comes a while after its mottatt
    chain.start_participant(run.archive_root)
    sign_in(client, "konsulent")
    began = time.monotonic()
    run.worker()
    seen: dict[int, list[str]] = {}  # job -> what its row showed, in order
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        html = client.get("/archive-log/", headers={"HX-Request": "true", "HX-Target": "archive-rows"}).text
        for job_id, row in rows_by_job(html).items():
            shown = "Arkivert" if ">Arkivert<" in row else "Mottatt" if "Mottatt av arkivet" in row else None
            if shown and (not seen.get(job_id) or seen[job_id][-1] != shown):
                seen.setdefault(job_id, []).append(shown)
            if shown == "Mottatt":
                chain.server.kvittering_delay = 0.0  # one seen is enough: the rest at full speed
        if all_archived(total):
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - began
    assert all_archived(total), states(run)
    live = [job_id for job_id, shown in seen.items() if shown == ["Mottatt", "Arkivert"]]
    assert live, f"no job showed Mottatt av arkivet and then Arkivert on the log: {seen}"

    found = jobs()
    assert chain.server.failures == []
    held = assert_each_once_in_the_archive(run, found)
    sends = Counter((s["metadata"]["headere"] or {}).get("klientMeldingId") for s in chain.server.sent
                    if s["metadata"]["avsenderKontoId"] == chain.app_party.account_id)
    assert set(sends) == {j.message_id for j in found} and set(sends.values()) == {1}  # each job sent once
    cases = list(db.session.scalars(select(Case).where(Case.client_id.is_not(None))))
    assert {f"case:{c.id}" for c in cases} == set(held["folders"])
    for case in cases:
        folder = held["folders"][f"case:{case.id}"]
        assert (case.archive_year, case.archive_seq) == (folder["y"], folder["q"]), case.id
    archived_posts = {j.post_id for j in found if j.event == "post_finalized"}
    assert {f"post:{i}" for i in archived_posts} == set(held["posts"])
    for post in db.session.scalars(select(JournalPost).where(JournalPost.id.in_(archived_posts))):
        assert post.archive_post_number == held["posts"][f"post:{post.id}"]["jp"]
        assert post.archive_number == f"{post.case.archive_number}-{post.archive_post_number}"
        assert held["documents"][f"post:{post.id}"] >= 1
    print(f"\n[end to end] generated {stats}; jobs {total} ({dict(Counter(j.event for j in found))}) archived in "
          f"{elapsed:.1f}s; shown live Mottatt -> Arkivert: {len(live)} job(s); sends {sum(sends.values())}, "
          f"published {len(chain.server.published)}")


# -- faults ----------------------------------------------------------------------------------------

def test_worker_killed_between_the_send_and_storing_fiks_ios_message_id(run, ctx):
    """Fiks IO took the message, but the worker (and its work horse) died before it learnt the message id:
    the archive's replies find the job by its correlation id once a new worker consumes them, and the
    message is not sent again."""
    chain = run.chain
    worker = run.worker()
    chain.server.hold_answers()
    builders.case(title="Send, so drep")
    job = job_of("case_created")
    wait_for(chain.server.holding.is_set, 30, "the worker's send reached the test server", explain=lambda: states(run))
    claimed = wait_for(lambda: job_of("case_created").claimed_by, 5, "the job is claimed")
    os.kill(int(claimed.rsplit("#", 1)[1]), signal.SIGKILL)  # the work horse, waiting for the 202
    os.killpg(worker.pid, signal.SIGKILL)  # the worker, its scheduler and its consumer thread
    worker.wait(10)
    killed = time.monotonic()
    chain.server.release_answers()
    assert job_of("case_created").fiksio_message_id is None  # the id never reached the job
    assert chain.depth(chain.archive_party) == 1  # but Fiks IO has the message for the archive
    with run.app.app_context():  # the dead worker's consumer lock would run out by itself in LOCK_SECONDS
        connection().delete(LOCK_KEY + chain.app_party.account_id)
    run.worker()
    chain.start_participant(run.archive_root)  # the archive answers now, to a worker that never saw the 202
    wait_for(lambda: all_archived(1), 30, "the job is archived after the new worker started",
             explain=lambda: states(run))
    recovered = time.monotonic() - killed
    done = job_of("case_created")
    wait_for(lambda: chain.depth(chain.app_party) == 0, 10, "the replies are acknowledged")
    time.sleep(1)
    assert job_of("case_created").done_at == done.done_at
    assert_each_once_in_the_archive(run, [done])
    assert len(chain.server.sends_of(job.message_id)) == 1  # not sent again: the reply found the job
    assert chain.server.failures == []
    assert db.session.get(Case, done.case_id).archive_number  # the archive's numbers, from the kvittering
    print(f"\n[worker killed mid-send] archived {recovered:.1f}s after the kill (a new worker's start included), "
          f"sends {len(chain.server.sends_of(job.message_id))}")


def test_consumer_killed_after_its_commit_before_the_ack_changes_nothing_twice(run, ctx, tmp_path):
    """The kvittering is applied and committed, then the consumer dies before acknowledging it: RabbitMQ
    delivers it again to the next consumer, which finds the job done and changes nothing."""
    chain = run.chain
    chain.start_participant(run.archive_root)
    script_log = tmp_path / "consumer.log"
    script = chain.start_consumer_script(run.env(), script_log)
    run.workers.append(script)  # stopped at the end whatever happens: it must not outlive the test
    wait_for(lambda: chain.consumers(chain.app_party) == 1 or script.poll() is not None, 30,
             "the consumer script consumes the app's queue")
    assert script.poll() is None, script_log.read_text()
    builders.case(title="Kvittert, so drep")
    job = job_of("case_created")
    assert sending.process(job.id, "test") == "handed over"  # the test process sends; no worker runs
    assert script.wait(30) == -9, script_log.read_text()
    assert "applied a kvittering; dying before the ack" in script_log.read_text()
    done = job_of("case_created")
    assert (done.job_status, done.archive_status) == (JobStatus.DONE, ArchiveStatus.ARCHIVED)
    wait_for(lambda: chain.depth(chain.app_party) == 1, 10, "the unacknowledged kvittering is back in the queue")

    seen: list[tuple[str, bool, str]] = []
    app = run.app

    def record(received: Received) -> None:
        with app.app_context():
            try:
                seen.append((received.meldingstype, received.redelivered, fiksio.handle(received)))
            finally:
                db.session.remove()

    stop = threading.Event()
    consumer = Consumer(from_config(app.config), record, name="the next consumer")
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: seen and chain.depth(chain.app_party) == 0, 20, "the next consumer gets the kvittering")
    finally:
        stop.set()
        thread.join(20)
    assert len(seen) == 1 and seen[0][0].endswith(".kvittering") and seen[0][1] is True, seen
    assert seen[0][2] == "already done", seen
    again = job_of("case_created")
    assert again.done_at == done.done_at and again.archive_ref == done.archive_ref
    assert_each_once_in_the_archive(run, [again])
    assert chain.server.failures == []
    print(f"\n[consumer killed before ack] redelivered: {seen}")


def test_rabbitmq_restarted_while_replies_are_in_flight(run, ctx, rabbitmq_node):
    """RabbitMQ goes down and comes back while the archive answers: the consumers come back by themselves,
    a send refused meanwhile is tried again, and every job ends Arkivert once."""
    chain = run.chain
    for n in range(3):
        case = builders.case(title=f"Sak {n}")
        for p in range(2):
            builders.finalized_post(case, title=f"Dokument {p}")
    total = len(jobs())
    chain.server.kvittering_delay = 0.3  # replies still on their way when the broker goes
    chain.start_participant(run.archive_root)
    run.worker()
    wait_for(lambda: any(j.received_at for j in jobs()), 30, "the archive has taken a first message",
             explain=lambda: states(run))
    before = sum(j.archive_status == ArchiveStatus.ARCHIVED for j in jobs())
    began = time.monotonic()
    rabbitmq_node.restart()
    down = time.monotonic() - began
    chain.server.kvittering_delay = 0.0
    wait_for(lambda: all_archived(total), 60, "every job archived after the restart", explain=lambda: states(run))
    recovered = time.monotonic() - began - down
    found = jobs()
    assert_each_once_in_the_archive(run, found)
    assert chain.server.failures == []
    print(f"\n[rabbitmq restarted] jobs {total}, archived before the restart {before}; the node was away "
          f"{down:.1f}s; all archived {recovered:.1f}s after it was back")


def test_a_silent_archive_reaches_feil_at_the_deadline_and_retry_sends_the_same_message(run, ctx, client):
    """Nobody answers: at the deadline the sweep puts the job in Feil (no receipt); Prøv på nytt sends it
    again with the same klientMeldingId, and with the archive back it is archived once."""
    chain = run.chain
    run.worker()
    builders.case(title="Ingen svarar")
    job = job_of("case_created")
    wait_for(lambda: job_of("case_created").message_code == "handed_over", 30, "the job is handed over",
             explain=lambda: states(run))
    first = job_of("case_created").fiksio_message_id
    hours = run.app.config["PPT_ARCHIVE_REPLY_HOURS"]
    sending.sweep(now=utcnow() + timedelta(hours=hours, minutes=1))
    failed = job_of("case_created")
    assert (failed.job_status, failed.archive_status, failed.message_code) == (JobStatus.DONE, ArchiveStatus.FAILED,
                                                                               "no_receipt")
    sign_in(client, "konsulent")
    response = client.post(f"/archive-log/{job.id}/retry", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "job-" in response.text
    wait_for(lambda: len(chain.server.sends_of(job.message_id)) == 2, 30, "the job is sent again",
             explain=lambda: states(run))
    wait_for(lambda: job_of("case_created").fiksio_message_id not in (None, first), 10, "the new message id is kept")
    assert chain.depth(chain.archive_party) == 2  # both sends wait for the archive
    chain.start_participant(run.archive_root)
    wait_for(lambda: all_archived(1), 30, "the job is archived once the archive is back", explain=lambda: states(run))
    wait_for(lambda: chain.depth(chain.app_party) == 0 and chain.depth(chain.archive_party) == 0, 20,
             "every reply handled")
    sends = chain.server.sends_of(job.message_id)
    assert [s["metadata"]["headere"]["klientMeldingId"] for s in sends] == [job.message_id] * 2
    assert len({s["melding_id"] for s in sends}) == 2  # two Fiks IO messages, one message to the archive
    assert_each_once_in_the_archive(run, jobs())
    assert chain.server.failures == []
    print(f"\n[silent archive] sends of {job.message_id}: {len(sends)}; archive messages 1")


def test_a_reply_for_an_unknown_message_is_logged_acknowledged_and_changes_nothing(run, ctx):
    chain = run.chain
    chain.start_participant(run.archive_root)
    worker = run.worker()
    builders.case(title="Arkivert før")
    wait_for(lambda: all_archived(1), 30, "the job is archived", explain=lambda: states(run))
    wait_for(lambda: chain.depth(chain.app_party) == 0, 10, "the replies are handled")
    before = [(j.id, j.job_status, j.archive_status, j.done_at, j.message, j.fiksio_message_id) for j in jobs()]
    strangers = [str(uuid.uuid4()), str(uuid.uuid4())]
    chain.server.publish_notice(chain.app_party.account_id, "no.ks.fiks.kvittering.tidsavbrudd", strangers[0],
                                svar_til_type=OPPRETT)
    chain.server.publish_notice(chain.app_party.account_id, f"{OPPRETT}.kvittering", strangers[1],
                                headers={"avsender-id": chain.archive_party.account_id})
    wait_for(lambda: all(s in run.log_text() for s in strangers), 20, "both replies are logged",
             explain=lambda: run.log_text()[-2000:])
    chain.stop_worker(worker)  # anything not acknowledged would be back in the queue now
    assert chain.depth(chain.app_party) == 0
    after = [(j.id, j.job_status, j.archive_status, j.done_at, j.message, j.fiksio_message_id) for j in jobs()]
    assert after == before
    assert "no job of ours" in run.log_text()


# -- large messages -------------------------------------------------------------------------------

def test_a_message_above_fiks_ios_inline_limit_travels_through_dokumentlager(run, ctx):
    """Fiks IO keeps a message above its inline limit (5 MB; 1 kB here) in Dokumentlager and sends only
    its id: the archive downloads the post with its PDF, and the app downloads the archive's receipt."""
    chain = run.chain
    limit = chain.server.inline_limit
    chain.server.inline_limit = 1000
    try:
        chain.start_participant(run.archive_root)
        run.worker()
        case = builders.case(title="Stort brev")
        draft = builders.post(case, title="Med vedlegg", pdf=builders.make_pdf(pages=3, tag="dokumentlager"))
        posts.finalize(builders.user("radgjevar1"), draft.id)
        wait_for(lambda: all_archived(2), 60, "the folder and the post are archived", explain=lambda: states(run))
    finally:
        chain.server.inline_limit = limit
    kept = [p for p in chain.server.published if p.headers.get("dokumentlager-id")]
    to_archive = [p for p in kept if p.queue == chain.archive_party.queue]
    to_app = [p for p in kept if p.queue == chain.app_party.queue]
    assert len(to_archive) == 2 and all(p.body == b"" for p in kept)  # both messages; no bytes over AMQP
    assert to_app and all(p.headers["type"].endswith(".kvittering") for p in to_app)
    held = assert_each_once_in_the_archive(run, jobs())
    assert held["documents"][f"post:{draft.id}"] == 1
    post = db.session.get(JournalPost, draft.id)
    assert post.archive_number  # the receipt came through Dokumentlager and was read
    assert chain.server.failures == []
