"""Run one RQ worker with its scheduler, and take part in the periodic archive sweep and mail intake.

python worker.py [--burst] [--name NAME]

Several workers may run, on several hosts: a short Redis lock lets one of them enqueue the
sweep each period (PPT_SWEEP_SECONDS), so the load stays flat. The intake of the sync folder
(every PPT_INTAKE_SECONDS), of inbound digital mail (every PPT_INBOUND_SECONDS) and the dispatch
sweep (every PPT_DISPATCH_SECONDS: due SvarUt sends and status follow-up) run in threads of the
worker, not as queued jobs, so a backlog of archive jobs never delays them; a Redis lock lets
only one process do each at a time.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import pkgutil
import random
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable

from flask import Flask
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job as RQJob
from rq.job import JobStatus, Retry, _current_job
from rq.timeouts import JobTimeoutException
from rq.utils import import_attribute, now
from rq.worker import WorkerStatus
from sqlalchemy.exc import SQLAlchemyError

import ppt_web
from ppt_web import create_app, forking
from ppt_web.app import COMMAND_LINE_ONLY, settle_gc
from ppt_web.archive import codes, fiksio, message, sending
from ppt_web.extensions import db
from ppt_web.jobs import archive_sweep, dispatch_sweep, lease_check, use_app
from ppt_web.letters.shipped import ensure_shipped
from ppt_web.logs import configure as configure_logging
from ppt_web.postreg import intake
from ppt_web.postreg.mail_intake import poll_inbound
from ppt_web.postreg.sync_intake import scan_sync_folder
from ppt_web.queue import Job, connection, get_queue, worker_connection

log = logging.getLogger("ppt.worker")
SWEEP_LOCK = "ppt:archive-sweep-lock"
WORKER_TTL = 60
RESTART_FIRST, RESTART_MAX = 1.0, 10.0  # back-off between runs of RQ's loop after Redis or another fault
# RQ beats (the worker key's TTL renewed) several times per job; within this many seconds of the last beat
# another is skipped. The key lives WORKER_TTL + 60 s (at least 90 s during a job) past a beat.
BEAT_EVERY = 5.0
# The RQ jobs the worker's archive sender runs (no fork per job); every other job gets RQ's work horse.
SENT_BY_SENDER = frozenset({Job.SEND_ARCHIVE_JOB, Job.SEND_ARCHIVE_JOBS})


class SenderGone(Exception):
    """The archive sender ended in the middle of a job (killed, out of memory, a crash)."""


class SendFailed(Exception):
    """The job raised in the archive sender; the message is its traceback there."""


@dataclasses.dataclass(frozen=True)
class _SenderJob:
    """What the sender knows of the RQ job it runs: enough for rq.get_current_job() users (the claim's
    worker name in sending.worker_name, the job's id on each log line in ppt_web/logs.py)."""

    id: str
    func_name: str
    worker_name: str


class ArchiveSender:
    """A process forked once from the warmed worker that runs the worker's archive sends one at a time,
    each handed over a pipe (the RQ job's id, function and arguments) and answered over it (the return
    value or the traceback). It runs them as a work horse does: in its own process group, SIGTERM left
    at its default, the job's function with its app context, and the claims it makes carry its pid.
    The worker waits for the answer (PPTWorker._perform_in_sender) and kills it from outside when it
    dies or overruns."""

    def __init__(self, app: Flask, worker_name: str) -> None:
        mine, theirs = multiprocessing.Pipe()
        with forking.gate.forking():  # no thread of ours mid-transaction in the child's copy (ppt_web/forking.py)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    mine.close()
                    code = self._serve(theirs, app, worker_name)
                finally:
                    os._exit(code)
        theirs.close()
        self.pid, self.conn = pid, mine

    @staticmethod
    def _serve(conn, app: Flask, worker_name: str) -> int:
        os.setpgrp()  # as RQ's horse: a signal to the worker's group leaves a send in hand to finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        random.seed()
        worker_pid = os.getppid()
        with app.app_context():
            db.engine.dispose(close=False)  # pooled sockets belong to the worker
        use_app(app)  # jobs.app_job: this process's pool from now on, kept from job to job
        while True:
            try:
                while not conn.poll(1.0):
                    if os.getppid() != worker_pid:
                        return 0  # the worker died (its end of the pipe may live on in a horse for a while)
                rq_job_id, func_name, args = conn.recv()
            except (EOFError, OSError):
                return 0  # the worker closed the pipe: it stops
            token = _current_job.set(_SenderJob(rq_job_id, func_name, worker_name))  # type: ignore[arg-type]
            try:
                reply = ("ok", import_attribute(func_name)(*args))
            except BaseException:  # noqa: BLE001 - the job's failure, handed to the worker as RQ would record it
                reply = ("error", traceback.format_exc())
            finally:
                _current_job.reset(token)
            try:
                conn.send(reply)
            except OSError:
                return 0  # the worker died while we sent: what we did is in the database

    def run(self, job: RQJob, timeout: float, beat: Callable[[], None], interval: float):
        """Run the job here and return its value. Raises SendFailed when it raised, SenderGone when this
        process ended, JobTimeoutException after `timeout` seconds (-1: none); `beat` every `interval`."""
        self.conn.send((job.id, job.func_name, list(job.args)))
        deadline = None if timeout == -1 else time.monotonic() + timeout
        while True:
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            if wait <= 0:
                raise JobTimeoutException(f"Task exceeded maximum timeout value ({timeout} seconds)")
            if self.conn.poll(wait):
                try:
                    status, value = self.conn.recv()
                except (EOFError, OSError) as exc:
                    raise SenderGone(f"archive sender {self.pid} ended in the middle of the job") from exc
                if status == "error":
                    raise SendFailed(value)
                return value
            beat()

    def alive(self) -> bool:
        """Not ended while idle (the OOM killer, a stray SIGKILL); one that ended is reaped here."""
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] == 0
        except ChildProcessError:
            return False

    def kill(self) -> int | None:
        """SIGKILL this process and its group and reap it; its wait status."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        self.conn.close()
        try:
            return os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            return None

    def stop(self, wait: float = 5.0) -> None:
        """Close the pipe, so an idle sender ends; killed if it has not ended within `wait` seconds."""
        self.conn.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            except ChildProcessError:
                return
            time.sleep(0.02)
        self.kill()


class PPTWorker(Worker):
    """RQ's worker, which outlives Redis outages, frees its dead horse's claims at once, and stops
    without hanging for a minute.

    Outages: RQ 3.0 retries a failed BLPOP itself (doubling the wait up to max_connection_wait_time),
    but any other Redis call in its loop that fails (the heartbeat after a job, the job's status when
    a horse exits, the suspension check, maintenance) ends work() with "found an unhandled exception,
    quitting", and the process exited: archive jobs stayed Ny until a person restarted it. work() here
    runs RQ's loop again after such an end, waiting 1, 2, 4 ... up to RESTART_MAX seconds (logged),
    until a stop is asked for. The database is the source of truth, so nothing is lost meanwhile: the
    sweep hands every Ny job to the queue once Redis answers again.

    A horse killed in the middle of a job (OOM, SIGKILL) left its archive jobs Under arbeid until
    their lease ran out. handle_work_horse_killed() sets the jobs that horse had claimed back to Ny
    at once and tells the queue; no other process can be sending them, since the horse is dead.

    Archive sends (SENT_BY_SENDER) get no horse each: a fork per job cost 60-100 ms of CPU, half of it
    the kernel's copy-on-write faults, against ~8 ms for the send itself. execute_job() runs their RQ
    job here as RQ's SimpleWorker does (the bookkeeping in Redis), and the function in the ArchiveSender,
    a process forked once from this warmed worker (at the first archive job) and kept. A horse's
    guarantees hold: the send runs in another process, in its own process group; the worker kills it
    from outside when it overruns the job's timeout (JobTimeoutException, as RQ records it) or on a
    cold stop; when it dies or is killed, the jobs it had claimed (claimed_by: worker#its pid) go back
    to Ny and into the queue at once, as for a dead horse, and the next archive job forks a new one.
    Every other job (letters, dispatch, mail, the sweep) keeps RQ's horse per job.

    RQ's bookkeeping around one archive send was some twenty round trips to Redis, about a third of this
    process's CPU for the job (a millisecond of it saved now): five heartbeats of three commands each,
    the state set idle twice, the job's start in two transactions, its dependents watched before its
    end. Now five: the dequeue, the job's fetch, its start in one transaction (_begin), its end in one
    with the worker's idle state (_succeeded), and RQ's suspension check. A heartbeat is one round trip,
    and the plain one is skipped within BEAT_EVERY seconds of the last; a state Redis already holds is
    not sent again. What RQ records is unchanged (the result, the registries, the worker's counts).

    RQ 3.0 unsubscribes from its command channel, then stops the listening thread, expecting stop()
    to return at once. Since redis-py 8.2, stop() waits for the thread, which, once unsubscribed,
    sleeps 60 s between looks: every worker took a minute to exit after SIGTERM (seen as a systemd
    stop that ran into its timeout, and as tests waiting on a worker). Stopping the thread first and
    then unsubscribing wakes it with the unsubscribe reply, so it ends within a second.
    """

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if not thread:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        try:
            thread.stop(timeout=1)  # redis-py >= 8.2: clears the flag and waits at most a second
        except TypeError:
            thread.stop()  # older redis-py: clears the flag only
        try:
            self.pubsub.unsubscribe()
        except RedisError as exc:  # Redis away: the thread is stopped all the same
            self.log.warning("Worker %s: could not unsubscribe: %s", self.name, exc)
        thread.join(timeout=2)
        self.pubsub.close()
        self.pubsub_thread = None

    max_connection_wait_time = RESTART_MAX  # RQ's own BLPOP retry: 60 s by default, too long after an outage
    app: Flask | None = None  # set by main(): the horse-killed handler writes to the database
    sender: ArchiveSender | None = None  # forked at the first archive job, kept until the worker stops
    stopping = False
    fault: BaseException | None = None
    _last_horse = 0
    _beat_at = 0.0  # time.monotonic() of the last heartbeat sent
    _state_sent: str | None = None  # the worker's state as last sent to Redis

    def request_stop(self, signum, frame):
        self.stopping = True  # before RQ's handler, which may itself fail on a dead Redis
        super().request_stop(signum, frame)

    def work(self, burst: bool = False, **kwargs) -> bool:  # type: ignore[override]
        """RQ's loop, run again with back-off whenever it ends on a fault rather than a stop."""
        worked, delay = False, RESTART_FIRST
        while True:
            self.fault = None
            began = time.monotonic()
            try:
                worked = super().work(burst=burst, **kwargs) or worked
            except StopRequested:
                return worked
            except Exception as exc:  # noqa: BLE001 - bootstrap or teardown on a dead Redis: kept below
                self.fault = exc
                self.teardown()
            if self.fault is None or self.stopping:
                return worked
            if time.monotonic() - began > 60:
                delay = RESTART_FIRST  # a run that lasted: start the back-off over
            log.warning("worker %s: RQ loop ended on %s: %s; working again in %.0f s",
                        self.name, type(self.fault).__name__, self.fault, delay)
            try:
                time.sleep(delay)
            except StopRequested:
                return worked
            if self.stopping:
                return worked
            delay = min(delay * 2, RESTART_MAX)
            try:
                self.register_death()  # the old run's record, if Redis was away at its end: the name is free
            except RedisError:
                pass

    def _noting(self, exc: BaseException) -> None:
        self._beat_at, self._state_sent = 0.0, None  # a pipeline that failed may not have set them: send again
        if not isinstance(exc, StopRequested | SystemExit):
            self.fault = exc

    def check_for_suspension(self, burst: bool):
        try:
            return super().check_for_suspension(burst)
        except BaseException as exc:
            self._noting(exc)
            raise

    def run_maintenance_tasks(self):
        try:
            return super().run_maintenance_tasks()
        except BaseException as exc:
            self._noting(exc)
            raise

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        except BaseException as exc:
            self._noting(exc)
            raise

    def execute_job(self, job, queue):
        try:
            if job.func_name in SENT_BY_SENDER and self.app is not None:
                execution = self._begin(job, queue)  # as RQ's SimpleWorker: in this process, no fork
                self._perform_in_sender(job, queue, execution)
                self.set_state(WorkerStatus.IDLE)  # (already in Redis after a success: not sent again)
                return None
            return super().execute_job(job, queue)
        except BaseException as exc:
            self._noting(exc)
            if self.horse_pid:  # Redis failed while the horse works: let it finish its database work
                self.wait_for_horse()
                self._horse_pid = 0
            raise

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat, in one round trip rather than three. RQ beats five times per job; the worker's
        plain beat (no timeout given: the key's full TTL) is skipped within BEAT_EVERY seconds of the last
        beat. A beat with a timeout (a job's start, the beats during a long job) is always sent."""
        try:
            if timeout is None and time.monotonic() - self._beat_at < BEAT_EVERY:
                return None
            if pipeline is not None:
                super().heartbeat(timeout, pipeline)
            else:
                with self.connection.pipeline(transaction=False) as pipe:
                    super().heartbeat(timeout, pipe)
                    pipe.execute()
            self._beat_at = time.monotonic()
            return None
        except BaseException as exc:
            self._noting(exc)
            raise

    def set_state(self, state, pipeline=None):
        """RQ's, which is not sent again when Redis holds the state already (RQ sets idle twice per job)."""
        if pipeline is None and state == self._state == self._state_sent:
            return
        super().set_state(state, pipeline)
        self._state_sent = state

    def teardown(self):
        """RQ's teardown, which must not fail on a dead Redis (it raised from work()'s finally)."""
        if self.is_horse:
            return
        if self.sender is not None:  # idle between jobs: it ends when its pipe closes
            self.sender.stop()
            self.sender = None
        if self.scheduler:
            self.stop_scheduler()
            self.scheduler = None
        try:
            self.register_death()
        except RedisError as exc:
            self.log.warning("Worker %s: could not register its end: %s", self.name, exc)
        self.unsubscribe()

    def _begin(self, job, queue) -> Execution:
        """RQ's prepare_execution and prepare_job_execution (the execution in the started registry, the
        worker busy, its heartbeat, the job started and out of the intermediate queue) in one transaction,
        one round trip rather than two."""
        ttl = self.get_heartbeat_ttl(job)
        with self.connection.pipeline() as pipe:
            execution = Execution.create(job, ttl, pipeline=pipe, worker_name=self.name)
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)
            self.heartbeat(ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)  # its last_heartbeat too
            pipe.persist(job.key)
            if len(self.queues) == 1:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            self._sending(pipe)
        self.executions[execution.id] = execution
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")
        return execution

    def _sending(self, pipe) -> list:
        """A pipeline with the worker's state or beat in it, executed: if it fails, neither is known to be in
        Redis, so both are sent again next time (RQ's failure path does not pass through _noting)."""
        try:
            return pipe.execute()
        except BaseException:
            self._beat_at, self._state_sent = 0.0, None
            raise

    def _succeeded(self, job, queue, execution, return_value) -> None:
        """RQ's _finalize_success for an archive send, in one transaction with the worker's idle state and
        heartbeat: the worker's counts, the result kept for its result_ttl, the execution out of the
        started registry. What an archive send never has (a Retry returned, a success callback, webhooks,
        repeats, a rate limit) goes RQ's own way. RQ's way also watches the job's dependents (two round
        trips); nothing depends on an archive send, and if something ever does (the dependents key exists,
        looked up in the same transaction), its dependents are enqueued after it as RQ would."""
        if isinstance(return_value, Retry) or job._success_callback_name or job.webhooks or job.has_rate_limit \
                or job.repeats_left:
            self._finalize_success(job, queue, execution, return_value)
            return
        job.ended_at = now()
        job._result, job._status = return_value, JobStatus.FINISHED
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipe:
            self.increment_successful_job_count(pipeline=pipe)
            self.increment_total_working_time(job.ended_at - job.started_at, pipe)
            if result_ttl != 0:
                job._handle_success(result_ttl, pipeline=pipe, worker_name=self.name, execution_id=execution.id,
                                    execution_started_at=execution.created_at, execution_ended_at=job.ended_at)
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            self.set_state(WorkerStatus.IDLE, pipeline=pipe)
            self.heartbeat(pipeline=pipe)
            pipe.exists(job.dependents_key)
            has_dependents = self._sending(pipe)[-1]
        if has_dependents:
            queue.enqueue_dependents(job)
        self.log.info("Worker %s: %s: Job OK (%s)", self.name, job.origin, job.id)

    def _perform_in_sender(self, job, queue, execution) -> bool:
        """RQ's perform_job as SimpleWorker runs it, in this process, with the job's function run in the
        archive sender rather than here, and its timeout kept from here rather than by SIGALRM."""
        try:
            job.started_at = now()
            return_value = self._run_in_sender(job, execution, job.timeout or self.queue_class.DEFAULT_TIMEOUT)
            self._succeeded(job, queue, execution, return_value)
        except BaseException as exc:  # as RQ's perform_job: every failure is the job's, recorded by RQ
            self._finalize_failure(job, queue, execution, sys.exc_info())
            if isinstance(exc, SystemExit):  # a cold stop (RQ's second SIGTERM): the worker goes on stopping
                raise
            return False
        return True

    def _run_in_sender(self, job, execution, timeout):
        if self.sender is not None and not self.sender.alive():
            self.log.warning("Worker %s: archive sender %s ended while idle", self.name, self.sender.pid)
            self.sender.conn.close()
            self.sender = None
        if self.sender is None:
            assert self.app is not None
            self.sender = ArchiveSender(self.app, self.name)
        sender = self.sender

        def beat() -> None:
            try:
                self.maintain_heartbeats(job, execution)
            except RedisError as exc:  # Redis away: the send goes on; the job's end will fail on it
                self.log.warning("Worker %s: heartbeat failed: %s", self.name, exc)

        try:
            return sender.run(job, timeout, beat, self.job_monitoring_interval)
        except SendFailed:
            raise
        except BaseException as exc:
            # The sender died, overran the job's timeout, or this worker is stopping hard (SystemExit)
            # mid-send: killed from here, and then nothing can be sending its jobs, so its claims are
            # set back to Ny at once and queued again, as for a dead horse. A new sender for the next job.
            self.sender = None
            status = sender.kill()
            self.log.warning("Worker %s: archive sender %s ended in job %s (%s, wait status %s)", self.name,
                             sender.pid, job.id, type(exc).__name__, status)
            self._free_claims(job, sender.pid)
            raise

    def kill_horse(self, sig=signal.SIGKILL):
        """RQ's, and for an archive job the sender (its death is then handled in _run_in_sender). RQ's own
        would kill this worker's process group when there is no horse (os.getpgid(0))."""
        if self.horse_pid:
            super().kill_horse(sig)
        elif self.sender is not None and self.get_state() == WorkerStatus.BUSY:
            with contextlib.suppress(OSError):
                os.killpg(self.sender.pid, sig)

    def fork_work_horse(self, job, queue):
        with forking.gate.forking():  # no thread of ours mid-transaction in the horse's copy (ppt_web/forking.py)
            super().fork_work_horse(job, queue)
        self._last_horse = self.horse_pid

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if self._last_horse:
            self._free_claims(job, self._last_horse)

    def _free_claims(self, job, pid: int) -> None:
        """The archive jobs the dead process `pid` (a horse, or the sender) had claimed back to Ny and
        into the queue, with the rest of the job's batch."""
        if self.app is None:
            return
        try:
            # The rest of a batch the horse had not reached yet is told again too (done ones are "not claimed").
            told = job.args[0] if job.func_name == Job.SEND_ARCHIVE_JOBS else [job.args[0]] \
                if job.func_name == Job.SEND_ARCHIVE_JOB else []
            with self.app.app_context():
                released = sending.release_claims(sending.claim_token(self.name, pid))
                if released:
                    log.warning("worker %s: process %s died; archive job(s) %s set back to Ny", self.name,
                                pid, released)
                sending.enqueue_batches(sorted(set(released) | set(told)), at_front=True)
        except Exception:  # noqa: BLE001 - the lease runs out in any case and the sweep takes them
            log.exception("worker %s: could not release the claims of process %s", self.name, pid)


# Seconds after another worker's sweep period ends that a worker asks for the next one.
SWEEP_SLACK = 0.05


def sweep_timer(app, stop: threading.Event) -> None:
    """Enqueue the archive sweep once per period across all workers (a Redis lock per period)."""
    period = max(1, int(app.config["PPT_SWEEP_SECONDS"]))
    key = f"{SWEEP_LOCK}:{app.config['PPT_QUEUE_NAME']}"
    with app.app_context():
        conn, queue = connection(), get_queue()
    while not stop.is_set():
        wait = float(period)
        try:
            if conn.set(key, "1", nx=True, ex=period):
                queue.enqueue(archive_sweep, job_timeout=max(60, period * 5))
            else:
                # Another worker (or this one, a few milliseconds early) holds this period: try again
                # just after it ends, not a whole period later, so sweeps stay one period apart
                # whatever the number of workers.
                left_ms = conn.pttl(key)
                wait = min(float(period), max(left_ms, 0) / 1000 + SWEEP_SLACK)
        except Exception as exc:  # noqa: BLE001 - Redis away: try again next period
            log.warning("sweep not enqueued: %s", exc)
        stop.wait(wait)


def every(app, stop: threading.Event, seconds: str | float, func, what: str) -> None:
    """Call func in an app context every `seconds` (a number, or a PPT_*_SECONDS key) until stop; a
    failure waits for the next turn."""
    period = max(1.0, float(app.config[seconds] if isinstance(seconds, str) else seconds))
    while not stop.wait(period):
        try:
            with app.app_context():
                func()
        except Exception:  # noqa: BLE001 - a full disk or Redis away: try again next period
            log.exception("%s failed; trying again in %s s", what, period)


def warm_up_transport(app: Flask) -> None:
    """Over Fiks IO: read and check the settings and fetch the archive's key once, here, so every work
    horse starts with them (a horse per job would otherwise do it again for each job)."""
    if app.config["PPT_ARCHIVE_BACKEND"] != "fiksio":
        return
    from ppt_web.archive.transports.fiksio import transport_for  # noqa: PLC0415 - only over Fiks IO

    try:
        transport = transport_for(app)
        transport.client.public_key(transport.archive_account)
    except Exception as exc:  # noqa: BLE001 - each job says what is wrong; the worker still runs
        log.error("Fiks IO is not ready: %s", exc)


def warm_up() -> None:
    """Import every module of the app and load the Fiks Arkiv XSDs and code lists now, before any
    thread starts and before RQ forks a work horse per job.

    A fork copies a lock as it is at that moment. A work horse forked while a worker thread was in
    the middle of importing a module (the dispatch thread importing requests, say) inherits that
    module's import lock held, and hangs for good the first time it imports the same module: seen
    in bench/archive.py, a horse stuck in `import` with its job Under arbeid until the lease ran
    out. With everything imported up front, no thread imports anything later. It also spares each
    horse parsing the schemas again.
    """
    for module in pkgutil.walk_packages(ppt_web.__path__, "ppt_web."):
        if module.name not in COMMAND_LINE_ONLY:  # never imported here (Alembic, the generator: ~9 MiB)
            importlib.import_module(module.name)
    for meldingstype in set(message.EVENTS.values()):
        codes.schema(meldingstype)
    codes.code_list("dokumenttype")


def add_shipped_templates() -> None:
    """The letter templates the app ships, added to a database that has never had them (after an
    upgrade that brought them, the first worker to start adds them; run.sh's launcher does too)."""
    try:
        added = ensure_shipped()
    except SQLAlchemyError as exc:  # not migrated yet: the next start adds them
        db.session.rollback()
        logging.getLogger("ppt.worker").warning("shipped letter templates not added: %s", type(exc).__name__)
        return
    if added:
        logging.getLogger("ppt.worker").info("added %s letter templates the app ships", added)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and a random suffix)")
    args = parser.parse_args()
    configure_logging()  # PPT_LOG_FORMAT/PPT_LOG_LEVEL from the environment; create_app() applies the app's
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app = create_app()
    use_app(app)
    with app.app_context():
        forking.gate.install(db.engine)
        add_shipped_templates()
    warm_up()
    warm_up_transport(app)
    settle_gc()  # what start-up made stays out of the collector's view, work horses included (ppt_web/app.py)
    with app.app_context():
        conn = worker_connection()
        queue = get_queue()
    name = args.name or f"{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    consumer: threading.Thread | None = None
    if not args.burst:
        threading.Thread(target=sweep_timer, args=(app, stop), daemon=True, name="sweep-timer").start()
        threading.Thread(target=every, args=(app, stop, "PPT_INTAKE_SECONDS", scan_sync_folder, "sync folder scan"),
                         daemon=True, name="sync-intake").start()
        threading.Thread(target=every, args=(app, stop, "PPT_INBOUND_SECONDS", poll_inbound, "inbound mail poll"),
                         daemon=True, name="inbound-intake").start()

        threading.Thread(target=every, args=(app, stop, "PPT_DISPATCH_SECONDS", dispatch_sweep, "dispatch sweep"),
                         daemon=True, name="dispatch").start()
        if app.config["PPT_ARCHIVE_BACKEND"] == "fiksio":  # the archive's replies, from our Fiks IO queue
            consumer = threading.Thread(target=fiksio.run_consumer, args=(app, stop, name), daemon=True,
                                        name="fiksio-consumer")
            consumer.start()
        lease_period = app.config["PPT_ARCHIVE_LEASE_SECONDS"] / 4
        threading.Thread(target=every, args=(app, stop, lease_period, lease_check, "lease check"),
                         daemon=True, name="lease-check").start()
    # A short TTL: the worker beats every WORKER_TTL - 15 s while idle, and /readyz stops counting a
    # killed one WORKER_TTL + 60 s after its last beat (RQ's default, 420 s, hid a dead worker for 8 min).
    worker = PPTWorker([queue.name], connection=conn, name=name, worker_ttl=WORKER_TTL)
    worker.app = app
    try:
        worker.work(with_scheduler=True, burst=args.burst)
    finally:
        stop.set()
        intake.STOPPING.set()
        if consumer is not None:  # hands the queue (its lock) to another worker at once
            consumer.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
