"""python -m ppt_web.archive.reference --dir DIR [--host 127.0.0.1] [--port 8765]
python -m ppt_web.archive.reference --dir DIR --fiksio   (a Fiks IO participant; settings below)

In Fiks IO mode the archive's own account comes from the environment:
PPT_REFERENCE_FIKSIO_API_URL, _AMQP_URL, _ACCOUNT_ID, _PRIVATE_KEY (path), _CERTIFICATE (path),
_INTEGRATION_ID, _INTEGRATION_PASSWORD and _TOKEN_PROVIDER ("module:attribute", as PPT_SVARUT_TOKEN_PROVIDER).
"""
from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping

from ...fiksio.settings import Settings, SettingsError, from_config
from .fiksio import serve
from .server import serve_forever

PREFIX = "PPT_REFERENCE_FIKSIO_"
FIELDS = ("API_URL", "AMQP_URL", "ACCOUNT_ID", "PRIVATE_KEY", "CERTIFICATE", "INTEGRATION_ID",
          "INTEGRATION_PASSWORD", "TOKEN_PROVIDER")


def fiksio_settings(environ: Mapping[str, str]) -> Settings:
    """The archive account's settings from PPT_REFERENCE_FIKSIO_*; SettingsError naming each one missing or wrong.
    They are checked as the app checks its own PPT_FIKSIO_* settings."""
    config = {f"PPT_FIKSIO_{name}": environ.get(PREFIX + name) for name in FIELDS}
    try:
        return from_config(config)
    except SettingsError as exc:
        found = []
        for problem in exc.problems:
            if problem.startswith("PPT_FIKSIO_TOKEN_PROVIDER is not set"):
                problem = (f"{PREFIX}TOKEN_PROVIDER is not set: Fiks IO needs a Maskinporten token provider "
                           f"(\"module:attribute\")")
            found.append(problem.replace("PPT_FIKSIO_", PREFIX))
        raise SettingsError(found) from None


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ppt_web.archive.reference",
                                     description="Serve the reference archive (Fiks Arkiv V1 over HTTP, or as a "
                                                 "Fiks IO participant with --fiksio).")
    parser.add_argument("--dir", required=True, help="the archive's folder (its database and files)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fiksio", action="store_true",
                        help=f"consume the archive's Fiks IO queue instead of serving HTTP (settings: {PREFIX}*)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    echo = lambda line: print(line, flush=True)  # noqa: E731 - one line, as before
    if not args.fiksio:
        serve_forever(args.dir, args.host, args.port, echo=echo)
        return
    try:
        settings = fiksio_settings(os.environ if environ is None else environ)
    except SettingsError as exc:
        parser.error("the Fiks IO settings cannot work:\n  " + "\n  ".join(exc.problems))
    serve(args.dir, settings, echo=echo)


if __name__ == "__main__":
    main()
