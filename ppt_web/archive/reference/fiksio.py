"""The reference archive as a Fiks IO participant: it consumes its own account's queue and answers
each message through the send API, as a municipal archive behind Fiks IO does: "mottatt" first, then
the kvittering or the feilmelding, each with svarPaMelding set to the message's melding-id and the
sender's klientKorrelasjonsId copied.

python -m ppt_web.archive.reference --dir DIR --fiksio (settings from PPT_REFERENCE_FIKSIO_*; see __main__.py)
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from ...fiksio.amqp import Consumer, Received, open_payload
from ...fiksio.asice import AsiceError
from ...fiksio.client import FiksIoClient, FiksIoError
from ...fiksio.settings import Settings
from ...inbound.cms import CmsError
from .. import codes, replies
from .archive import QUERIES, RECEIVES, Answer, ReferenceArchive, plain_utf8

log = logging.getLogger(__name__)
NOTICE_PREFIX = "no.ks.fiks.kvittering."  # Fiks IO's own notices (serverfeil after failed deliveries, tidsavbrudd)


def handler(root: str | Path, settings: Settings) -> Callable[[Received], None]:
    """The per-delivery handler: open the payload, let the archive judge it (one message is one
    transaction; the same klientMeldingId again gets the stored answer), send the answers. Returns
    only when the answers are sent, so the delivery is acknowledged after that."""
    archive = ReferenceArchive(root)
    client = FiksIoClient(settings)

    def handle(received: Received) -> None:
        meldingstype = codes.canonical(received.meldingstype)
        if _is_reply(meldingstype):
            # Never answer an answer: a notice or a reply sent here has nobody waiting for a reply to it.
            log.warning("reference archive: %s (melding-id %s, svar-til %s) is not a request; acknowledged "
                        "without an answer", meldingstype[:100], received.melding_id, received.svar_til)
            return
        refusal = _refusal_before_opening(meldingstype, received)
        if refusal is not None:
            _answer(client, received, replies.UGYLDIGFORESPOERSEL, replies.feilmelding(replies.UGYLDIGFORESPOERSEL,
                                                                                       refusal))
            return
        opened = _opened(received, meldingstype, client, settings.private_key_pem)
        if isinstance(opened, str):
            log.info("reference archive: refused melding-id %s (%s) before taking it in", received.melding_id,
                     meldingstype)
            _answer(client, received, replies.UGYLDIGFORESPOERSEL, replies.feilmelding(replies.UGYLDIGFORESPOERSEL,
                                                                                       opened))
            return
        payload, files = opened
        if meldingstype in RECEIVES:
            _answer(client, received, f"{meldingstype}.mottatt", b"")
        answer = _judge(archive, meldingstype, received, payload, files)
        log.info("reference archive: melding-id %s (%s, klientMeldingId %s) answered %s", received.melding_id,
                 meldingstype, received.klient_melding_id, answer.meldingstype)
        _answer(client, received, answer.meldingstype, answer.payload)

    return handle


def serve(root: str | Path, settings: Settings, stop: threading.Event | None = None, echo=print) -> None:
    """Consume the archive account's queue until stop (or Ctrl-C)."""
    stop = stop or threading.Event()
    consumer = Consumer(settings, handler(root, settings), name="reference archive")
    echo(f"reference archive on Fiks IO: account {settings.account_id}, queue {settings.queue} at "
         f"{_without_password(settings.amqp_url)}, folder {root}")
    try:
        consumer.run(stop)
    except KeyboardInterrupt:
        stop.set()


def _is_reply(meldingstype: str) -> bool:
    """Fiks IO's notices and the protocol's own answers (mottatt, kvittering, resultat, feilmelding)."""
    if meldingstype.startswith(NOTICE_PREFIX):
        return True
    try:
        return codes.meldingstype_info(meldingstype).get("kanSvareMed") is None
    except KeyError:
        return False


def _refusal_before_opening(meldingstype: str, received: Received) -> str | None:
    """What makes a message unacceptable whatever its payload holds; None when there is nothing."""
    if meldingstype not in RECEIVES | QUERIES:
        return f"type: meldingstypen «{meldingstype[:100]}» tek dette arkivet ikkje imot"
    if not received.has_payload:
        return f"type: ei melding av typen {meldingstype} må ha innhald, men denne har ikkje noko"
    if meldingstype in RECEIVES and not _is_uuid(received.klient_melding_id):
        return ("egendefinert-header.klientMeldingId: meldinga må ha ein klientMeldingId som er ein UUID, så "
                "arkivet kjenner att ei melding som kjem ein gong til")
    return None


def _opened(received: Received, meldingstype: str, client: FiksIoClient,
            private_key_pem: bytes) -> tuple[bytes, dict[str, bytes]] | str:
    """(the payload, the other files) of a message that opens and follows its schema; else what is wrong.
    A payload Dokumentlager cannot give now raises, so the delivery comes again."""
    try:
        files = open_payload(received, client, private_key_pem)
    except FiksIoError as exc:
        if exc.transient:
            raise
        return f"innhaldet kunne ikkje hentast: {exc.text}"
    except CmsError as exc:
        return f"innhaldet kunne ikkje dekrypterast med nøkkelen til arkivet: {exc}"
    except AsiceError as exc:
        return f"ASiC-E-pakken kunne ikkje opnast: {exc}"
    payload_name = codes.meldingstype_info(meldingstype)["payloadFilnavn"]
    if payload_name not in files:
        named = ", ".join(f"«{name[:100]}»" for name in files) or "ingen filer"
        return f"pakken manglar fila «{payload_name}» med innhaldet (han har {named})"
    payload = plain_utf8(files.pop(payload_name))
    found = codes.problems(meldingstype, payload)
    if found:
        return "/: meldinga følgjer ikkje skjemaet eller kodelistene: " + codes.summary(found)
    return payload, files


def _judge(archive: ReferenceArchive, meldingstype: str, received: Received, payload: bytes,
           files: dict[str, bytes]) -> Answer:
    try:
        if meldingstype in QUERIES:
            return archive.query(meldingstype, payload)
        return archive.receive(meldingstype, received.klient_melding_id or "", payload, files)
    except Exception:  # noqa: BLE001 - whatever went wrong is the archive's fault: serverfeil, as over HTTP
        log.exception("the reference archive failed on melding-id %s", received.melding_id)
        return Answer(500, replies.SERVERFEIL, replies.feilmelding(replies.SERVERFEIL, "intern feil i arkivet"))


def _answer(client: FiksIoClient, received: Received, meldingstype: str, payload: bytes) -> None:
    """Send one answer to the message's sender. A transient failure raises (the delivery comes again and
    the archive answers the same); any other is logged, since sending it again would fail alike."""
    info = codes.meldingstype_info(meldingstype)
    files = [(info["payloadFilnavn"], payload, "application/xml")] if info.get("harPayload") and payload else None
    try:
        client.send(received.avsender_id, meldingstype, files, svar_pa=received.melding_id,
                    klient_melding_id=str(uuid.uuid4()), klient_korrelasjons_id=received.klient_korrelasjons_id)
    except FiksIoError as exc:
        if exc.transient:
            raise
        log.error("reference archive: could not send %s to %s in answer to melding-id %s: %s", meldingstype,
                  received.avsender_id, received.melding_id, exc.text)


def _is_uuid(value: str | None) -> bool:
    """As the archive checks it: a UUID in its usual lower-case form."""
    try:
        return value is not None and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
