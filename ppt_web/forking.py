"""Forking the worker's work horses only while no thread of the worker holds a database connection.

The worker's threads (the Fiks IO consumer, intake, dispatch, the lease check) use the database while
RQ forks a work horse per job. SQLite keeps, per process, which of its connections hold which lock of
the shared WAL index; a horse forked while a thread held the write lock starts with a copy saying "a
connection of this process holds it", no connection to release it, and every write it tries waits out
the busy timeout and fails with "database is locked" (seen in bench/archive.py over Fiks IO: claims
failing for a minute). So the worker counts the connections its threads have checked out of the pool,
and a fork waits, at most FORK_WAIT seconds, until none is; meanwhile no thread takes a new one.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
FORK_WAIT = 30.0


class ForkGate:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A new process starts with no connection out and no fork pending (its threads did not come along)."""
        self._cond = threading.Condition()
        self._out = 0
        self._holders: dict[int, int] = {}  # thread id -> connections out
        self._forking = False

    def install(self, engine: Engine) -> None:
        event.listen(engine, "checkout", lambda *_: self._checkout())
        event.listen(engine, "checkin", lambda *_: self._checkin())

    def _checkout(self) -> None:
        name = threading.get_ident()
        with self._cond:
            if not self._holders.get(name):  # a thread already inside goes on: the fork waits for it
                self._cond.wait_for(lambda: not self._forking)
            self._out += 1
            self._holders[name] = self._holders.get(name, 0) + 1

    def _checkin(self) -> None:
        with self._cond:
            self._out = max(0, self._out - 1)
            name = threading.get_ident()
            if self._holders.get(name, 0) > 1:
                self._holders[name] -= 1
            else:
                self._holders.pop(name, None)
            self._cond.notify_all()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """A thread's short piece of work that no fork may cut through (it may take locks of its own)."""
        self._checkout()
        try:
            yield
        finally:
            self._checkin()

    @contextlib.contextmanager
    def forking(self) -> Iterator[None]:
        """Around a fork: wait until no connection is out (at most FORK_WAIT s), and hold new ones back."""
        with self._cond:
            self._forking = True
            if not self._cond.wait_for(lambda: self._out == 0, timeout=FORK_WAIT):
                log.warning("forking a work horse while %s database connection(s) of the worker's threads are "
                            "in use (waited %.0f s)", self._out, FORK_WAIT)
        try:
            yield
        finally:
            with self._cond:
                self._forking = False
                self._cond.notify_all()


gate = ForkGate()
