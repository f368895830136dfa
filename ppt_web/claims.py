"""Claiming a row of work (a SvarUt dispatch) for exactly one process. Archive jobs are claimed the same way,
one or a batch in one statement, by archive/sending.py (claim_many).

The claim is one conditional UPDATE whose row count says who won (docs/decisions.md, "The claim"). On PostgreSQL the
row is first taken with SELECT ... FOR UPDATE SKIP LOCKED: a claimant never queues behind another
process's open transaction on the same row, it moves on at once, and the UPDATE that follows cannot
lose. SQLite has one writer at a time, so the conditional UPDATE alone decides there.
"""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from .extensions import db, on_postgresql

# The outcome of an attempt whose claim no longer holds its row when it comes to write (its lease ran out while
# it worked, and another attempt may hold the row or have finished it): nothing is written.
LOST = "claim lost"


def claim(model, row_id: int, conditions: list, values: dict) -> bool:
    """Set `values` on the row if it still meets `conditions`; commit; True for the one winner."""
    where = [model.id == row_id, *conditions]
    if on_postgresql():
        locked = db.session.scalar(select(model.id).where(*where).with_for_update(skip_locked=True))
        if locked is None:  # claimed already, not due, or another process holds it right now
            db.session.rollback()
            return False
    result = cast(CursorResult[Any], db.session.execute(update(model).where(*where).values(**values)
                                                        .execution_options(synchronize_session=False)))
    db.session.commit()
    return result.rowcount == 1
