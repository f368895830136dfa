"""Links of a list built once per page: url_for per row was a large part of a long list's cost."""
from __future__ import annotations

from flask import url_for

_MARK = 918273645  # an id no route gives another meaning to; found once in the URL it builds


def id_prefix(endpoint: str, key: str, **values) -> str:
    """The URL of endpoint up to its id argument `key`, for rows to append their id to: exactly what
    url_for(endpoint, key=id, **values) gives, for a route whose URL ends with that id."""
    values[key] = _MARK
    url = url_for(endpoint, **values)
    prefix, mark, rest = url.rpartition(str(_MARK))
    if not mark or rest or str(_MARK) in prefix:
        raise ValueError(f"{endpoint}: the id {key} is not the end of its URL ({url})")
    return prefix
