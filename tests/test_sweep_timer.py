"""The worker's sweep timer asks for the archive sweep once per period, and keeps to the period when
it wakes a moment before the period's Redis key has expired (or another worker holds the period)."""
from __future__ import annotations

import threading
import time

import worker


class SlowExpiryRedis:
    """Just enough of Redis for the timer: SET NX EX and PTTL; a key outlives its EX by `late` seconds,
    as a timer that wakes a few milliseconds before the key expires sees it."""

    def __init__(self, late: float) -> None:
        self.late = late
        self.expires: dict[str, float] = {}
        self.lock = threading.Lock()

    def set(self, key, value, nx=False, ex=None):
        with self.lock:
            now = time.monotonic()
            if nx and self.expires.get(key, 0) > now:
                return None
            self.expires[key] = now + ex + self.late
            return True

    def pttl(self, key):
        with self.lock:
            left = self.expires.get(key, 0) - time.monotonic()
            return int(left * 1000) if left > 0 else -2


class RecordingQueue:
    def __init__(self) -> None:
        self.times: list[float] = []

    def enqueue(self, func, **kwargs):
        self.times.append(time.monotonic())


def run_timers(app, monkeypatch, workers: int, seconds: float) -> list[float]:
    conn, queue = SlowExpiryRedis(late=0.2), RecordingQueue()
    monkeypatch.setattr(worker, "connection", lambda: conn)
    monkeypatch.setattr(worker, "get_queue", lambda: queue)
    app.config["PPT_SWEEP_SECONDS"] = 1
    stop = threading.Event()
    threads = [threading.Thread(target=worker.sweep_timer, args=(app, stop)) for _ in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(5)
    return queue.times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_a_timer_that_wakes_before_the_key_expires_still_sweeps_every_period(app, monkeypatch):
    times = run_timers(app, monkeypatch, workers=1, seconds=3.4)
    assert len(times) >= 3, times
    assert max(gaps(times)) < 1.5, gaps(times)  # the key's life and a little: never a second period


def test_two_workers_sweep_once_per_period_between_them(app, monkeypatch):
    times = run_timers(app, monkeypatch, workers=2, seconds=3.4)
    assert len(times) >= 3, times
    assert min(gaps(times)) >= 1.0, gaps(times)  # one sweep per period, not one per worker
    assert max(gaps(times)) < 1.5, gaps(times)
