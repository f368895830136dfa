"""The Fiks Arkiv V1 standard as data: where its files are, and cached XSDs, code lists and message types.

Code values are not restricted by the XSDs (`kode` is any string), so a payload is checked twice:
against the XSD of its message type, and every coded element against its JSON code list.
"""
from __future__ import annotations

import json
import os
import re
import threading
from functools import lru_cache
from pathlib import Path

from flask import current_app, has_app_context
from lxml import etree

FIKS = "fiks-arkiv-v1"
MDK = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv/metadatakatalog/v1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_PROBLEMS = 5

_lock = threading.Lock()  # an XMLSchema keeps its error log on itself: one validation at a time


VENDORED = Path(__file__).resolve().parent / "standards"


def _configured() -> str | None:
    configured = current_app.config.get("PPT_STANDARDS_DIR") if has_app_context() else None
    return configured or os.environ.get("PPT_STANDARDS_DIR")


def standards_dir() -> Path:
    """PPT_STANDARDS_DIR (config, then environment), else the copy shipped with the package."""
    return _folder(_configured())


# The files' paths are worked out once per standards folder, not with pathlib on every call: a message is
# checked several times on its way (built, received, its receipt made and read), each asking for its XSD,
# code lists and message type (about 10 % of a job's CPU time in the worker's profile).
@lru_cache(maxsize=8)
def _folder(configured: str | None) -> Path:
    return Path(configured) if configured else VENDORED


def canonical(meldingstype: str) -> str:
    """Upstream misspells some reply types as no.ks.fik.arkiv...; both name the same type."""
    return re.sub(r"^no\.ks\.fik\.arkiv\.", "no.ks.fiks.arkiv.", meldingstype)


@lru_cache(maxsize=32)
def _schema(path: str) -> tuple[etree.XMLSchema, str]:
    doc = etree.parse(path)
    return etree.XMLSchema(doc), doc.getroot().get("targetNamespace")


def schema(meldingstype: str) -> tuple[etree.XMLSchema, str]:
    """The XSD of a message type (its file is named after it) and the namespace of its root element."""
    return _schema_in(_configured(), meldingstype)


@lru_cache(maxsize=64)
def _schema_in(configured: str | None, meldingstype: str) -> tuple[etree.XMLSchema, str]:
    path = _folder(configured) / FIKS / f"{canonical(meldingstype)}.xsd"
    if not path.is_file():  # (an exception is not cached: a missing file is looked for again next time)
        raise KeyError(f"no XSD for message type {meldingstype}")
    return _schema(str(path))


@lru_cache(maxsize=16)
def _files(configured: str | None, relative: str) -> str:
    return str(_folder(configured) / FIKS / relative)


@lru_cache(maxsize=4)
def _code_lists(folder: str) -> dict[str, dict[str, str]]:
    lists = {}
    for path in sorted(Path(folder).glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        lists[data["navn"].lower()] = {c["kodeverdi"]: c["kodebeskrivelse"] for c in data["kodeliste"]}
    return lists


def code_lists() -> dict[str, dict[str, str]]:
    """Every Fiks Arkiv code list by lower-case element name: code -> description."""
    return _code_lists(_files(_configured(), "kodelister"))


def code_list(name: str) -> dict[str, str] | None:
    """Code -> description of the Fiks Arkiv code list of that element name, or None if it has none."""
    return code_lists().get(name.lower())


@lru_cache(maxsize=4)
def _meldingstyper(path: str) -> dict[str, dict]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {canonical(m["id"]): m for m in data["meldingstyper"]}


def meldingstype_info(meldingstype: str) -> dict:
    """The meldingstyper.json entry: harPayload, payloadFilnavn, kanSvareMed."""
    types = _meldingstyper(_files(_configured(), "meldingstyper/meldingstyper.json"))
    try:
        return types[canonical(meldingstype)]
    except KeyError:
        raise KeyError(f"unknown message type {meldingstype}") from None


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def element_path(element: etree._Element) -> str:
    """/arkivmelding/registrering/tittel: where in a payload, without namespaces."""
    names = []
    while element is not None:
        names.append(_local(element.tag))
        element = element.getparent()
    return "/" + "/".join(reversed(names))


def _readable(root: etree._Element, entry) -> str:
    """libxml2's text without namespace URIs, placed by element names rather than /*/*[3]."""
    message = re.sub(r"\{[^}]*\}", "", entry.message)
    try:
        found = root.getroottree().xpath(entry.path) if entry.path else []
    except etree.XPathError:
        found = []
    where = element_path(found[0]) if found and isinstance(found[0], etree._Element) else f"line {entry.line}"
    return f"{where}: {message}"


def problems(meldingstype: str, payload: bytes) -> list[str]:
    """Everything wrong with a payload for this message type; empty when it is valid."""
    try:
        xsd, namespace = schema(meldingstype)
    except KeyError as e:
        return [str(e.args[0])]
    try:
        root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError) as e:
        return [f"not well-formed XML: {e}"]
    if etree.QName(root).namespace != namespace:
        return [f"/{_local(root.tag)}: root element is not in the namespace of {canonical(meldingstype)} "
                f"({namespace})"]
    with _lock:
        valid = xsd.validate(root)
        found = [] if valid else [_readable(root, e) for e in xsd.error_log]
    found += _code_problems(root)
    return found


def _code_problems(root: etree._Element) -> list[str]:
    found = []
    lists = code_lists()  # the folder found once per message, not once per coded element
    for kode in root.iter(f"{{{MDK}}}kode"):
        coded = kode.getparent()
        value = kode.text or ""
        if not value.strip():
            found.append(f"{element_path(coded)}: the code is empty")
            continue
        listed = lists.get(_local(coded.tag).lower())
        if listed is not None and value not in listed:
            found.append(f"{element_path(coded)}: code {value!r} is not in the Fiks Arkiv code list "
                         f"{_local(coded.tag).lower()} ({', '.join(listed)})")
    return found


def summary(found: list[str]) -> str:
    """A short text for the archive log: the first few problems."""
    text = "; ".join(found[:MAX_PROBLEMS])
    return text + (f" (and {len(found) - MAX_PROBLEMS} more)" if len(found) > MAX_PROBLEMS else "")
