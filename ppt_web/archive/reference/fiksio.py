"""The reference archive as a Fiks IO participant: it consumes its own account's queue and answers
each message through the send API, as a municipal archive behind Fiks IO does: "mottatt" first, then
the kvittering or the feilmelding, each with svarPaMelding set to the message's melding-id and the
sender's klientKorrelasjonsId copied.

python -m ppt_web.archive.reference --dir DIR --fiksio (settings from PPT_REFERENCE_FIKSIO_*; see __main__.py)
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ...fiksio.amqp import Received
from ...fiksio.settings import Settings


def handler(root: str | Path, settings: Settings) -> Callable[[Received], None]:
    """The per-delivery handler: open the payload, let the archive judge it (one message is one
    transaction; the same klientMeldingId again gets the stored answer), send the answers. Returns
    only when the answers are sent, so the delivery is acknowledged after that."""
    raise NotImplementedError


def serve(root: str | Path, settings: Settings, stop: threading.Event | None = None, echo=print) -> None:
    """Consume the archive account's queue until stop (or Ctrl-C)."""
    raise NotImplementedError
