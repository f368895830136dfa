"""The asynchronous folder transport, like a link service (docs/decisions.md, "Archive transport contracts").

Out: <root>/ut/<klientmelding-id>/ with melding.json, the payload and the files, written under
a temporary name and renamed when complete. Back: <root>/inn/<klientmelding-id>/<meldingstype>.xml.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ...files.storage import fsync_path
from .. import replies
from ..message import Message
from .base import HANDED_OVER, INVALID, NOT_FOUND, OK, SERVER_ERROR, UNSUPPORTED, Reply
from .files import read_checked


class FolderTransport:
    asynchronous = True

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def send(self, message: Message, message_id: str) -> Reply:
        out = self.root / "ut" / message_id
        if out.exists():  # handed over before (a retry after a crash): never twice
            return Reply(HANDED_OVER, "overlevert til arkivet tidlegare, ventar på kvittering")
        work = self.root / "ut" / f".{message_id}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "melding.json").write_text(json.dumps({"meldingstype": message.meldingstype,
                                                       "klientmelding-id": message_id}))
        (work / message.payload_name).write_bytes(message.payload)
        for f in message.files:
            (work / f.name).write_bytes(read_checked(f))
        for path in work.iterdir():
            fsync_path(path)
        os.replace(work, out)
        return Reply(HANDED_OVER, "overlevert til arkivet, ventar på kvittering")

    def poll(self, message_id: str) -> Reply | None:
        folder = self.root / "inn" / message_id
        if not folder.is_dir():
            return None
        names = {p.name: p for p in folder.iterdir() if p.suffix == ".xml"}
        for name, path in sorted(names.items()):
            body = path.read_bytes()
            try:
                if name.endswith(".kvittering.xml"):
                    return Reply(OK, ids=replies.parse_kvittering(body) if body.strip() else {})
                if name.endswith("ugyldigforespoersel.xml"):
                    return Reply(INVALID, "arkivet avviste meldinga: " + replies.parse_feilmelding(body))
                if name.endswith("ikkefunnet.xml"):
                    return Reply(NOT_FOUND, "arkivet fann ikkje det meldinga viser til: "
                                 + replies.parse_feilmelding(body))
                if name.endswith("serverfeil.xml"):
                    return Reply(SERVER_ERROR, "feil hos arkivet: " + replies.parse_feilmelding(body))
            except replies.ReplyInvalid as exc:
                return Reply(INVALID, f"uforståeleg svar frå arkivet ({name}): {exc}")
        return None  # only "mottatt" so far, or nothing: still waiting

    def query(self, meldingstype: str, payload: bytes) -> Reply:
        """Replies come back hours later through the folder: no way to ask the archive and wait."""
        return Reply(UNSUPPORTED, "mappeoverføringa kan ikkje spørje arkivet")

    def reset(self, message_id: str) -> None:
        """Before a retry by hand: keep the old reply aside and hand the message over again."""
        old = self.root / "inn" / message_id
        if old.exists():
            kept = f".tidlegare-{message_id}-{os.getpid()}-{len(list(old.parent.iterdir()))}"
            os.replace(old, self.root / "inn" / kept)
        shutil.rmtree(self.root / "ut" / message_id, ignore_errors=True)
