"""What the benchmarks share: percentiles and the peak-RSS sampler."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class WorkerMemory:
    """The peaks of one process tree, in bytes."""

    main: int = 0  # the worker process itself
    total: int = 0  # worker + its children at one moment
    children: dict = field(default_factory=dict)  # pid -> [peak rss, first seen, last seen]

    def split(self) -> tuple[int, int]:
        """(scheduler, largest work horse): the scheduler is the child seen the longest."""
        if not self.children:
            return 0, 0
        items = sorted(self.children.items(), key=lambda kv: kv[1][2] - kv[1][1], reverse=True)
        scheduler = items[0][1][0] if len(items) > 1 else 0
        horses = [v[0] for _, v in (items[1:] if len(items) > 1 else items)]
        return scheduler, max(horses, default=0)


class RssSampler(threading.Thread):
    """Peak RSS of each process and of its children, every `period` s (an RQ worker and its work horses, a
    gunicorn master and its workers; forked: RSS counts the pages shared with the parent)."""

    def __init__(self, pids: list[int], period: float = 0.1):
        super().__init__(daemon=True, name="rss-sampler")
        self.pids, self.period = pids, period
        self.memory = {pid: WorkerMemory() for pid in pids}
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        import psutil

        procs = {pid: psutil.Process(pid) for pid in self.pids}
        while not self.halt.wait(self.period):
            now = time.monotonic()
            self.samples += 1
            for pid, proc in procs.items():
                mem = self.memory[pid]
                try:
                    rss = proc.memory_info().rss
                    children = proc.children(recursive=True)
                except psutil.Error:
                    continue
                mem.main = max(mem.main, rss)
                total = rss
                for child in children:
                    try:
                        child_rss = child.memory_info().rss
                    except psutil.Error:
                        continue
                    total += child_rss
                    seen = mem.children.setdefault(child.pid, [0, now, now])
                    seen[0], seen[2] = max(seen[0], child_rss), now
                mem.total = max(mem.total, total)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


def statement_timer(engine) -> list[tuple[float, str]]:
    """Every SQL statement the engine runs from now on, with its time inside cursor.execute: (seconds, SQL),
    appended to the list returned (clear it between requests)."""
    from sqlalchemy import event

    statements: list[tuple[float, str]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        statements.append((time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter()), statement))

    return statements
