"""A small reference archive: keeps folders, journal posts, correspondents, write-offs and documents in
its own database, assigns the archive's numbers, refuses what a Noark archive refuses, and answers the
query messages. The built-in transport (transports/local.py) talks to it in-process; server.py serves it
over HTTP for the http transport; `python -m ppt_web.archive.reference` runs it on its own."""
from .archive import Answer, ReferenceArchive

__all__ = ["Answer", "ReferenceArchive"]
