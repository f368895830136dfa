"""The reference archive over HTTP: the same contract as the http transport (POST multipart, the payload
part named after the message type's payload file, one part per file named by its referanseDokumentfil;
headers X-Meldingstype and X-Klientmelding-Id). 200 with the kvittering or resultat, 400
ugyldigforespoersel, 404 ikkefunnet, 500 serverfeil."""
from __future__ import annotations

import logging
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from werkzeug.wrappers import Request, Response

from .. import codes, replies
from .archive import ReferenceArchive

log = logging.getLogger(__name__)
MAX_BYTES = 512 * 1024 * 1024


def app_for(root: str | Path):
    """A WSGI application serving one archive folder."""
    archive = ReferenceArchive(root)

    def application(environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_BYTES
        try:
            response = _handle(archive, request)
        except Exception:  # noqa: BLE001 - whatever went wrong is the archive's fault: serverfeil, never a hang
            log.exception("the reference archive failed on a message")
            response = Response(replies.feilmelding(replies.SERVERFEIL, "intern feil i arkivet"), status=500,
                                content_type="application/xml")
        return response(environ, start_response)

    return application


def _handle(archive: ReferenceArchive, request: Request) -> Response:
    if request.method != "POST":
        return Response("POST a Fiks Arkiv message here\n", status=405, content_type="text/plain")
    meldingstype = codes.canonical(request.headers.get("X-Meldingstype", ""))
    message_id = request.headers.get("X-Klientmelding-Id", "")
    try:
        payload_name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
    except KeyError:
        payload_name = None
    parts = {name: storage.read() for name, storage in request.files.items(multi=True)}
    parts.update({name: value.encode() for name, value in request.form.items(multi=True)})
    if payload_name is None or payload_name not in parts:
        text = (f"X-Meldingstype: ukjend meldingstype «{meldingstype[:100]}»" if payload_name is None
                else f"/: meldinga manglar delen «{payload_name}» med innhaldet")
        return Response(replies.feilmelding(replies.UGYLDIGFORESPOERSEL, text), status=400,
                        content_type="application/xml")
    payload = parts.pop(payload_name)
    answer = archive.receive(meldingstype, message_id, payload, parts)
    return Response(answer.payload, status=answer.status, content_type="application/xml",
                    headers={"X-Meldingstype": answer.meldingstype})


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        log.debug("%s " + format, self.address_string(), *args)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def server(root: str | Path, host: str = "127.0.0.1", port: int = 8765) -> ThreadingWSGIServer:
    """A threaded server for one archive folder (port 0: any free port); serve_forever() runs it."""
    return make_server(host, port, app_for(root), server_class=ThreadingWSGIServer, handler_class=_Quiet)


def serve_forever(root: str | Path, host: str, port: int, echo=print) -> None:
    """Serve until interrupted: the command line's way to run the archive on its own."""
    httpd = server(root, host, port)
    echo(f"reference archive on http://{host}:{httpd.server_port}/arkiv, folder {root}")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
