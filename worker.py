"""Run one RQ worker with its scheduler: python worker.py [--burst]."""
from __future__ import annotations

import argparse
import logging
import socket
import uuid

from rq import Worker

from ppt_web import create_app
from ppt_web.jobs import use_app
from ppt_web.queue import connection, get_queue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and a random suffix)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app = create_app()
    use_app(app)
    with app.app_context():
        conn, queue = connection(), get_queue()
    name = args.name or f"{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
    worker = Worker([queue], connection=conn, name=name)
    worker.work(with_scheduler=True, burst=args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
