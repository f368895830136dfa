"""Text the archive can carry.

XML 1.0 has no way to write most control characters (NUL, U+0001 to U+0008, ESC ...), nor U+FFFE,
U+FFFF or a lone surrogate. Such a character pasted into a case title or a correspondent's name used
to reach the database, and every archive message built from it then failed for good. They are
removed at the door, in one place for every text column of every model: a `before_flush` hook
cleans each text value a flush is about to write, whichever route, service, intake or command set
it. The C1 controls (U+0080 to U+009F) go too: XML allows them, but they mean nothing in a name or
a title and some archive cores refuse them. Tab, line feed and carriage return stay.

Rows written before the hook existed are found by `flask unarchivable-text`, and an archive job
that meets one fails with a message that names the object to correct (archive/sending.py).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from sqlalchemy import String, Text, event, inspect
from sqlalchemy.orm import Mapper, Session

NOT_ARCHIVABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def clean(value: str) -> str:
    """The text without the characters the archive cannot carry. A one-line value (no line feed)
    gets its spaces tidied too, as the forms tidy them, so a removed character leaves no gap."""
    cleaned = NOT_ARCHIVABLE.sub("", value)
    if cleaned != value and "\n" not in cleaned:
        cleaned = " ".join(cleaned.split())
    return cleaned


def archivable(value: str | None) -> bool:
    return value is None or NOT_ARCHIVABLE.search(value) is None


@cache
def text_attributes(mapper: Mapper) -> tuple[str, ...]:
    """The attribute keys of a model's String and Text columns."""
    return tuple(prop.key for prop in mapper.column_attrs
                 if any(isinstance(column.type, String | Text) for column in prop.columns))


def _clean_before_flush(session: Session, _context, _instances) -> None:
    for obj in [*session.new, *session.dirty]:
        state = inspect(obj)
        keys: Iterable[str] = text_attributes(state.mapper)
        if obj not in session.new:
            # Only values this flush writes: cleaning an untouched old value would rewrite it, and a
            # finalized post's database triggers rightly refuse that.
            keys = [key for key in keys if key in state.committed_state]
        for key in keys:
            value = state.dict.get(key)
            if isinstance(value, str) and NOT_ARCHIVABLE.search(value):
                setattr(obj, key, clean(value))


def install() -> None:
    """Clean text on every flush of every session (once per process)."""
    if not event.contains(Session, "before_flush", _clean_before_flush):
        event.listen(Session, "before_flush", _clean_before_flush)


def unarchivable(rows: Iterable[object]) -> list[tuple[object, str]]:
    """(row, attribute) for each text value in `rows` the archive cannot carry."""
    found = []
    for row in rows:
        for key in text_attributes(inspect(row).mapper):
            if not archivable(getattr(row, key)):
                found.append((row, key))
    return found
