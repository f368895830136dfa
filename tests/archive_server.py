"""A test archive on 127.0.0.1 speaking the http transport's contract, with switchable faults
(docs/integrations.md, "Fiks Arkiv messages and transports")."""
from __future__ import annotations

import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A threaded HTTP server on a free loopback port for a test, its URL ending in /arkiv; a context
    manager that serves while inside."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/arkiv"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.thread.join(5)


class Arrived(dict):
    """What arrived with one message: its meldingstype, and its multipart "parts" (name -> bytes), parsed
    only when a test looks at them, so the server answers at once (a fast receiver for benches)."""

    def __init__(self, meldingstype: str, content_type: str, body: bytes):
        super().__init__(meldingstype=meldingstype)
        self._raw = (content_type, body)

    def __missing__(self, key):
        if key != "parts":
            raise KeyError(key)
        content_type, body = self._raw
        parts = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        self["parts"] = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                         for p in parts.iter_parts()}
        return self["parts"]


class ArchiveServer(LocalServer):
    """mode: ok | invalid | not_found | server_error | slow | store_then_fail. Threaded, HTTP/1.1 with
    keep-alive (the http transport keeps its connection open between messages)."""

    def __init__(self):
        self.mode = "ok"
        self.stored: dict[str, Arrived] = {}  # klientmelding id -> what arrived
        self.requests = 0
        self.connections = 0  # TCP connections taken (one per sender process and thread with keep-alive)
        self.lock = threading.Lock()
        server = self

        from ppt_web.archive import replies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer has its Content-Length

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections += 1

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                message_id = self.headers.get("X-Klientmelding-Id", "")
                meldingstype = self.headers.get("X-Meldingstype", "")
                with server.lock:
                    server.requests += 1
                    mode = server.mode
                if mode == "slow":
                    time.sleep(3)
                if mode in ("invalid", "not_found", "server_error"):
                    status, meldingstype, text = {
                        "invalid": (400, replies.UGYLDIGFORESPOERSEL, "Manglar tittel"),
                        "not_found": (404, replies.IKKEFUNNET, "Fann ikkje saksmappa"),
                        "server_error": (500, replies.SERVERFEIL, "Databasen er nede")}[mode]
                    payload = replies.feilmelding(meldingstype, text)
                    return self._answer(status, payload)
                with server.lock:
                    if message_id not in server.stored:  # the same id twice: stored once
                        server.stored[message_id] = Arrived(meldingstype, self.headers["Content-Type"], body)
                if mode == "store_then_fail":
                    return self._answer(500, b"")
                self._answer(200, b"")

            def _answer(self, status: int, payload: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.serve(Handler)


class ReferenceServer(LocalServer):
    """The reference archive (ppt_web.archive.reference) served over HTTP from one folder."""

    def __init__(self, root):
        from ppt_web.archive.reference.server import server

        self.httpd = server(root, "127.0.0.1", 0)  # type: ignore[assignment]
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/arkiv"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
