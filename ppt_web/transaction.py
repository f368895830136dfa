"""One owner per transaction: the public service function that a route, a job or a command calls.

    with transaction() as new_files:
        ...change rows, store files (append the digests this action stored first to new_files)...

commits at the end of the block. On any error it rolls back and removes the files the action had
stored that no committed row names, so a refused or failed action leaves neither a row nor a file.
Functions a public one composes (add_post, add_case, finalize_post, ...) never commit: they run in
the caller's transaction. Jobs handed over with queue.enqueue_after_commit go to Redis after the commit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .extensions import db
from .files.storage import discard_unreferenced


@contextmanager
def transaction() -> Iterator[list[str]]:
    """Commit the block's work, or roll it back and remove the files it stored (see the module)."""
    new_files: list[str] = []
    try:
        yield new_files
        db.session.commit()
    except BaseException:
        db.session.rollback()
        discard_unreferenced(new_files)
        raise
