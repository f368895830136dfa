"""A throwaway RabbitMQ node for the tests: its own data folder, ports, node name and epmd, on loopback.

    node = RabbitNode(folder)      # folder: empty, on a path the rabbitmq user can reach: new_folder()
    url = node.start()             # amqp://guest:guest@127.0.0.1:<port>/%2F once it takes connections
    node.allow(integration_id, "passord token")   # or a check(password) -> None | reason
    node.restart()                 # same port and data: durable queues and persistent messages survive
    node.stop()                    # SIGTERM, then its epmd; nothing left running

Logins: guest/guest (RabbitMQ's own user database, loopback only) for the test code that declares queues
and publishes; every other user name goes to a small HTTP service in this process (RabbitMQ's
rabbitmq_auth_backend_http), which accepts the users allow() named with the password they must give, as
Fiks IO accepts an integration id with "<integration password> <Maskinporten token>". A refused login is
kept in .refusals with the reason, so a test can say why a consumer never connected.

Run as the rabbitmq user when we are root (RabbitMQ refuses nothing as root, but Debian's package owns its
files for that user); the folder is handed to that user.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from urllib.parse import parse_qs

import pika
import pika.exceptions

FOLDER_PREFIX = "ppt-test-rabbitmq-"
OWNER = "owner"  # "<pid of the test process> <epmd port>": lets a later run clean up after a killed one
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_names = count(1)

Check = Callable[[str], str | None]  # password -> None when accepted, else why not


def rabbitmq_server() -> str | None:
    """The rabbitmq-server start script itself (not Debian's wrapper in /usr/sbin, which runs it through
    `su` with a fresh environment and sends its output to /var/log/rabbitmq); None when not installed."""
    debian = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if debian.is_file():
        return str(debian)
    found = shutil.which("rabbitmq-server")
    if not found:
        return None
    real = Path(found).resolve()
    if real.name == "rabbitmq-script-wrapper" and (real.parent / "rabbitmq-server").is_file():
        return str(real.parent / "rabbitmq-server")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_folder() -> Path:
    """A fresh folder for a node in the system's temp folder (pytest's own is closed to the rabbitmq user)."""
    return Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))


class RabbitNodeError(RuntimeError):
    pass


class RabbitNode:
    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.name = f"rabbit-ppt-{os.getpid()}-{next(_names)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.logins: dict[str, Check] = {}
        self.queues: dict[str, str] = {}  # username -> the one queue it may read (allow(queue=...))
        self.refusals: list[tuple[str, str]] = []  # (user name, reason)
        self._auth: ThreadingHTTPServer | None = None
        self._user = _service_user()

    # -- the node --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def log_file(self) -> Path:
        return self.folder / "log" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "rabbit.pid"

    def start(self) -> str:
        """Start the node and wait until it takes AMQP connections; its url."""
        script = rabbitmq_server()
        if script is None:
            raise RabbitNodeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self._start_auth_service()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_config()
        (self.folder / OWNER).write_text(f"{os.getpid()} {self.epmd_port}\n")
        self.pid_file.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.folder),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),  # an epmd of its own: stopping it touches no other node
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),  # .conf is added
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),  # not the machine's /etc one
            "ERL_CRASH_DUMP": str(self.folder / "erl_crash.dump"),
        }
        command = [script, "-detached"]
        if self._user is not None:
            command = ["runuser", "-u", self._user.pw_name, "--", "env", "-i",
                       *(f"{k}={v}" for k, v in env.items()), *command]
            self._chown(self.folder)
        started = subprocess.run(command, env=env, cwd=self.folder, capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise RabbitNodeError(f"rabbitmq-server did not start (exit {started.returncode}): "
                                  f"{started.stderr.strip() or started.stdout.strip()}")
        self._wait_ready()
        return self.url

    def stop(self) -> None:
        """Stop the node (SIGTERM, waiting for it to exit) and its epmd; the data folder stays."""
        pids = self._beam_pids()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        _wait_gone(pids, STOP_TIMEOUT)
        for pid in pids:  # one that did not go in time
            _signal(pid, signal.SIGKILL)
        _wait_gone(pids, 5)
        self._stop_epmd()
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the node, as a crash would (its epmd stays for the next start)."""
        pids = self._beam_pids()
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        _wait_gone(pids, 10)

    def restart(self) -> str:
        """Stop and start again on the same port and data folder."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the node and the login service, and remove the folder."""
        try:
            self.stop()
        finally:
            if self._auth is not None:
                self._auth.shutdown()
                self._auth.server_close()
                self._auth = None
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's log, and why the VM stopped if it crashed."""
        text = []
        try:
            text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = ["(no log)"]
        try:
            with (self.folder / "erl_crash.dump").open(errors="replace") as dump:
                text += [line.rstrip() for line in dump.readlines(4000) if line.startswith("Slogan:")]
        except OSError:
            pass
        return "\n".join(text)

    def _wait_ready(self) -> None:
        params = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2&blocked_connection_timeout=2")
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                pika.BlockingConnection(params).close()
                return
            except pika.exceptions.AMQPError as exc:
                last = exc
            if (self.folder / "erl_crash.dump").exists() or (self.pid_file.exists() and not self._beam_pids()):
                break  # it died
            time.sleep(0.2)
        self.stop()
        raise RabbitNodeError(f"RabbitMQ node {self.name} did not take connections on port {self.port} "
                              f"({last!r}); its log ends:\n{self.log_tail()}")

    def _write_config(self) -> None:
        assert self._auth is not None
        auth = f"http://127.0.0.1:{self._auth.server_address[1]}"
        (self.folder / "enabled_plugins").write_text("[rabbitmq_auth_backend_http].\n")
        (self.folder / "rabbitmq.conf").write_text(
            "auth_backends.1 = internal\n"
            "auth_backends.2 = http\n"
            "auth_http.http_method = post\n"
            f"auth_http.user_path = {auth}/user\n"
            f"auth_http.vhost_path = {auth}/vhost\n"
            f"auth_http.resource_path = {auth}/resource\n"
            f"auth_http.topic_path = {auth}/topic\n"
            "disk_free_limit.absolute = 10MB\n"  # a full CI disk blocks publishers, not this
            "log.console = false\n"
        )
        (self.folder / "advanced.config").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "erl_crash.dump").unlink(missing_ok=True)

    def _beam_pids(self) -> list[int]:
        """The node's Erlang VM: from its pid file, else the process whose command line names our folder."""
        pids = set()
        try:
            pids.add(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError):
            pass
        pids.update(_processes(lambda argv: "beam" in os.path.basename(argv[0]) and str(self.folder) in argv))
        return [pid for pid in pids if _alive(pid)]

    def _stop_epmd(self) -> None:
        pids = _processes(lambda argv: os.path.basename(argv[0]) == "epmd", env=f"ERL_EPMD_PORT={self.epmd_port}")
        subprocess.run(["epmd", "-kill"], env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)},
                       capture_output=True, timeout=10, check=False)
        _wait_gone(pids, 5)
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        _wait_gone(pids, 5)

    def _chown(self, path: Path) -> None:
        assert self._user is not None
        for folder, dirs, files in os.walk(path):
            for name in [folder, *(os.path.join(folder, d) for d in dirs), *(os.path.join(folder, f) for f in files)]:
                os.chown(name, self._user.pw_uid, self._user.pw_gid)

    # -- logins ----------------------------------------------------------------------------------

    def allow(self, username: str, password: str | Check, queue: str | None = None) -> None:
        """Let username log in: with exactly this password, or when check(password) returns None. With
        queue, it may only read that queue, as Fiks IO lets an integration read its account's queue and
        neither declare nor publish anything."""
        if isinstance(password, str):
            expected = password

            def check(given: str) -> str | None:
                return None if given == expected else "wrong password"

            self.logins[username] = check
        else:
            self.logins[username] = password
        if queue is not None:
            self.queues[username] = queue

    def _start_auth_service(self) -> None:
        if self._auth is not None:
            return
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
                answer = node._decide(self.path, form).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self._auth = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._auth.daemon_threads = True
        threading.Thread(target=self._auth.serve_forever, daemon=True, name="rabbitmq-logins").start()

    def _decide(self, path: str, form: dict[str, str]) -> str:
        user = form.get("username", "")
        check = self.logins.get(user)
        if check is None:
            reason = "unknown user"
        elif path == "/user":
            reason = check(form.get("password", "")) or ""
        elif path == "/vhost":
            reason = "" if form.get("vhost") == "/" else f"no access to vhost {form.get('vhost')!r}"
        elif path == "/resource" and user in self.queues:
            wanted = (form.get("resource"), form.get("name"), form.get("permission"))
            reason = "" if wanted == ("queue", self.queues[user], "read") else \
                f"no {wanted[2]} access to {wanted[0]} {wanted[1]!r}"
        else:
            reason = ""  # the queues and exchanges of the vhost
        if reason:
            self.refusals.append((user, reason))
            return "deny"
        return "allow"


def sweep_stale(where: Path | str | None = None) -> list[Path]:
    """Stop and remove the nodes a test process left behind when it was killed before its cleanup (their
    owner is gone); the folders removed."""
    removed = []
    for folder in Path(where or tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"):
        try:
            owner, epmd_port = (folder / OWNER).read_text().split()
            if _alive(int(owner)):
                continue
        except (OSError, ValueError):
            continue
        beams = _processes(lambda argv, f=str(folder): "beam" in os.path.basename(argv[0]) and f in argv)
        for pid in beams:
            _signal(pid, signal.SIGKILL)
        _wait_gone(beams, 10)
        epmds = _processes(lambda argv: os.path.basename(argv[0]) == "epmd", env=f"ERL_EPMD_PORT={epmd_port}")
        for pid in epmds:
            _signal(pid, signal.SIGTERM)
        _wait_gone(epmds, 5)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _service_user() -> pwd.struct_passwd | None:
    """The rabbitmq user when we are root and it exists; None: run the node as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None


def _processes(match: Callable[[list[str]], bool], env: str | None = None) -> list[int]:
    """Pids of live processes whose argv matches (and whose environment holds env); [] off Linux."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if not argv or not argv[0] or not match(argv):
                continue
            if env is not None and env not in (entry / "environ").read_bytes().decode(errors="replace").split("\0"):
                continue
        except OSError:
            continue
        pid = int(entry.name)
        if _alive(pid):
            found.append(pid)
    return found


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that never reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
