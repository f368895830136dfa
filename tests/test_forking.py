"""The worker forks a work horse only while none of its threads is inside a database transaction: a
horse forked while a thread held SQLite's write lock could never write (ppt_web/forking.py)."""
from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import create_engine, event, text

from ppt_web.forking import ForkGate

pytestmark = pytest.mark.one_database  # SQLite's own lock bookkeeping; the gate itself is engine-blind


def _engine(path):
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 2})

    @event.listens_for(engine, "connect")
    def wal(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    return engine


def _child_writes(engine) -> int:
    """Fork; the child disposes the parent's pool (as the worker's jobs do) and writes one row."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            engine.dispose(close=False)
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _holding_the_write_lock(engine, inside: threading.Event, seconds: float) -> threading.Thread:
    def hold():
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            inside.set()
            time.sleep(seconds)
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_without_the_gate_a_child_forked_mid_transaction_cannot_write(tmp_path):
    engine = _engine(tmp_path / "a.sqlite")
    inside = threading.Event()
    thread = _holding_the_write_lock(engine, inside, 0.5)
    inside.wait(5)
    assert _child_writes(engine) == 1  # "database is locked" in the child, long after the parent committed
    thread.join()


def test_with_the_gate_the_fork_waits_for_the_transaction_and_the_child_writes(tmp_path):
    engine = _engine(tmp_path / "b.sqlite")
    gate = ForkGate()
    gate.install(engine)
    inside = threading.Event()
    thread = _holding_the_write_lock(engine, inside, 0.5)
    inside.wait(5)
    started = time.monotonic()
    with gate.forking():
        waited = time.monotonic() - started
        code = _child_writes(engine)
    thread.join()
    assert code == 0 and waited >= 0.3
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 2]


def test_a_thread_inside_busy_work_may_take_a_connection_while_a_fork_waits(tmp_path):
    """The Fiks IO handler holds the gate for its whole delivery and opens a transaction inside it: a
    fork pending meanwhile must not block that nested checkout (it would wait for itself)."""
    engine = _engine(tmp_path / "c.sqlite")
    gate = ForkGate()
    gate.install(engine)
    entered, done = threading.Event(), threading.Event()

    def handler():
        with gate.busy():
            entered.set()
            time.sleep(0.3)  # the fork is pending by now
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (3)"))
        done.set()
    thread = threading.Thread(target=handler)
    thread.start()
    entered.wait(5)
    started = time.monotonic()
    with gate.forking():
        waited = time.monotonic() - started
    thread.join()
    assert done.is_set() and waited < 5
