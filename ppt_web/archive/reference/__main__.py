"""python -m ppt_web.archive.reference --dir DIR [--host 127.0.0.1] [--port 8765]"""
from __future__ import annotations

import argparse
import logging

from .server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ppt_web.archive.reference",
                                     description="Serve the reference archive (Fiks Arkiv V1 over HTTP).")
    parser.add_argument("--dir", required=True, help="the archive's folder (its database and files)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    serve_forever(args.dir, args.host, args.port, echo=lambda line: print(line, flush=True))

if __name__ == "__main__":
    main()
