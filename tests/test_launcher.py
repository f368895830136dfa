"""The README's run command: one process starts Redis, migrates, seeds, runs web and worker,
starts a dead worker again, and Ctrl-C leaves nothing behind."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(process: psutil.Process) -> str:
    """A child's command line; "" for one that has exited (a zombie until the launcher reaps it)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def left_in_group(pgid: int) -> list[psutil.Process]:
    """The live processes of a process group (a zombie no longer counts)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_run_command_starts_everything_and_ctrl_c_stops_it(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPT_")}
    env["PPT_INSTANCE_PATH"] = str(tmp_path / "instance")
    launcher = subprocess.Popen([sys.executable, "-m", "ppt_web.launcher", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200 and "Logg inn" in r.read().decode()
                break
            except OSError:
                assert launcher.poll() is None, launcher.stdout.read()
                assert time.monotonic() < deadline, "app did not come up in 60 s"
                time.sleep(0.3)
        children = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(command(c) for c in children)
        assert "redis-server" in names and "worker.py" in names and "flask" in names
        assert (tmp_path / "instance" / "ppt.sqlite").exists()
        # The CLI run beside it on the same folder (no PPT_REDIS_URL) reaches the same Redis.
        beside = subprocess.run([sys.executable, "-c", "from ppt_web import create_app, queue; app = create_app(); "
                                 "print(app.config['PPT_REDIS_URL'], queue.connection(app).ping())"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        url = (tmp_path / "instance" / "redis" / "url").read_text().strip()
        assert url.startswith("unix://") and beside.stdout.split()[-2:] == [url, "True"], beside.stdout + beside.stderr
        # A worker that dies is started again; the web app stays up meanwhile.
        worker = next(c for c in children if "worker.py" in command(c))
        worker.kill()
        deadline = time.monotonic() + 30
        while True:
            assert launcher.poll() is None, launcher.stdout.read()
            again = [c for c in psutil.Process(launcher.pid).children()
                     if "worker.py" in command(c) and c.pid != worker.pid]
            if again:
                break
            assert time.monotonic() < deadline, "the worker was not started again in 30 s"
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert r.status == 200
        # Nothing of the dead worker lives on: its scheduler process would be an orphan no stop reaches.
        deadline = time.monotonic() + 10
        while left_in_group(worker.pid):
            assert time.monotonic() < deadline, [command(p) for p in left_in_group(worker.pid)]
            time.sleep(0.2)
        children = psutil.Process(launcher.pid).children(recursive=True)
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = launcher.communicate(timeout=60)
        assert launcher.returncode == 0, output
        assert "demo users" in output and "worker.py exited with -9; starting it again in 1 s" in output
        time.sleep(0.5)
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert alive == [], [c.cmdline() for c in alive]
        assert not (tmp_path / "instance" / "redis" / "url").exists()  # no Redis to find any more
    finally:
        if launcher.poll() is None:  # the test failed: its Redis, web app and worker must not outlive it
            try:
                left = psutil.Process(launcher.pid).children(recursive=True)
            except psutil.Error:
                left = []
            launcher.kill()
            for child in left:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            launcher.wait(timeout=10)
