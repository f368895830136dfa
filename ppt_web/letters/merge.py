"""Merge fields: what a template may say ({{ klient.namn }}), checked when it is saved, filled in a sandbox.

A template body is HTML with Jinja placeholders. Only the fields in FIELDS exist; `check` refuses a
body that names any other, or uses anything beyond output, `if`, `for` and a few harmless filters,
so a mistake is found when the template is saved, not when a letter is made. `merge` fills the body
in Jinja's sandbox with autoescaping, from plain dicts made here (never database objects): a
template can reach nothing but the fields offered, and whatever a field holds (a client named
`<script>` or `{{ 7*7 }}`) comes out as text. The result is sanitized again by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

from ..errors import Invalid

# Field tree: name -> description (a leaf), a dict (an object), or a one-element list [dict] (a list
# of objects, used with {% for x in ... %}). The descriptions are shown beside the template editor.
PERSON_ADDRESS = {
    "namn": _l("Name"),
    "adresse": _l("Street address (one line per line)"),
    "postnummer": _l("Postal code"),
    "stad": _l("Place"),
}
FIELDS: dict = {
    "klient": {
        "namn": _l("The client's full name"),
        "fornamn": _l("Given name"),
        "etternamn": _l("Family name"),
        "fodselsdato": _l("Birth date (dd.mm.yyyy)"),
        "fodselsnummer": _l("Full national id: only in templates that allow it, for users who may see it"),
        "adresse": _l("Street address"),
        "postnummer": _l("Postal code"),
        "stad": _l("Place"),
    },
    "foresette": [dict(PERSON_ADDRESS)],
    "mottakarar": [dict(PERSON_ADDRESS)],
    "mottakar": dict(PERSON_ADDRESS),
    "eining": {
        "namn": _l("The client's school or kindergarten"),
        "adresse": _l("Its address"),
        "orgnr": _l("Its organisation number"),
    },
    "sak": {
        "nummer": _l("Case number"),
        "tittel": _l("Case title"),
        "opna": _l("Date the case was opened"),
        "arkivnummer": _l("The case's number in the archive, once known"),
    },
    "saksbehandlar": {"namn": _l("Handler's name"), "epost": _l("Handler's e-mail")},
    "godkjennar": {"namn": _l("Approver's name, when known")},
    "dato": _l("Today's date (6. desember 2026)"),
    "kontor": {
        "namn": _l("The service's name"),
        "adresse": _l("The service's address"),
        "orgnr": _l("Organisation number"),
        "telefon": _l("Phone"),
        "epost": _l("E-mail"),
    },
}
# Descriptions of the lists' items, shown once under the list's name.
LIST_FIELDS = ("foresette", "mottakarar")

ALLOWED_FILTERS = frozenset({"default", "join", "upper", "lower", "capitalize", "title", "trim", "length",
                             "first", "last"})
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "sameas", "eq", "ne"})
# The nodes a template may contain; anything else (set, macro, call, include, import, extends, block,
# subscripts, method calls) is refused when it is saved.
_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.If,
                  nodes.For, nodes.Filter, nodes.Test, nodes.Const, nodes.Not, nodes.And, nodes.Or,
                  nodes.Compare, nodes.Operand, nodes.CondExpr, nodes.Concat)

# A template is a letter, not a program: loops over the recipients' or guardians' lists nest at most
# twice (a list in a list is already rare), so a template cannot make a merge run for long.
MAX_LOOP_DEPTH = 2
MAX_TEMPLATE_CHARS = 1024 * 1024
MAX_LETTER_CHARS = 2 * 1024 * 1024

MONTHS_NN = ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
             "november", "desember")


class _Env(SandboxedEnvironment):
    """The sandbox, with only the filters and tests a template may use."""

    def __init__(self):
        super().__init__(autoescape=True, trim_blocks=False, lstrip_blocks=False)
        self.filters = {k: v for k, v in self.filters.items() if k in ALLOWED_FILTERS}
        self.tests = {k: v for k, v in self.tests.items() if k in ALLOWED_TESTS}
        self.globals = {}


_env = _Env()


def field_names() -> list[tuple[str, str]]:
    """Every field as ("klient.namn", description), for the template editor's list."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, spec) -> None:
        if isinstance(spec, dict):
            for key, sub in spec.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        elif isinstance(spec, list):
            walk(prefix + "[]", spec[0])
        else:
            out.append((prefix, str(spec)))

    walk("", FIELDS)
    return out


def check(body: str) -> None:
    """Refuse a template body that does not parse, names an unknown field or uses what is not allowed.

    Raises Invalid(field="body") with a message naming the problem (and the line)."""
    if len(body or "") > MAX_TEMPLATE_CHARS:
        raise Invalid(_l("The text is too long."), field="body")
    try:
        tree = _env.parse(body or "")
        _check_node(tree, dict(FIELDS), 0)
        _env.compile(tree)  # what only compiling finds (Python's own limits on nesting)
    except TemplateSyntaxError as exc:
        raise Invalid(_l("The template has an error on line %(line)s: %(error)s", line=exc.lineno,
                         error=exc.message or ""), field="body") from None
    except (RecursionError, SyntaxError, MemoryError):
        raise Invalid(_l("The template nests too deeply."), field="body") from None


def _unknown(name: str, node: nodes.Node) -> Invalid:
    return Invalid(_l("Unknown merge field %(name)s (line %(line)s). Choose one from the list.", name=name,
                      line=getattr(node, "lineno", "?")), field="body")


def _not_allowed(what: str, node: nodes.Node) -> Invalid:
    return Invalid(_l("Not allowed in a template: %(what)s (line %(line)s).", what=what,
                      line=getattr(node, "lineno", "?")), field="body")


def _resolve(node: nodes.Node, scope: dict):
    """The field spec a Name/Getattr chain points at, or an Invalid naming it."""
    if isinstance(node, nodes.Name):
        if node.name not in scope:
            raise _unknown(node.name, node)
        return node.name, scope[node.name]
    if isinstance(node, nodes.Getattr):
        path, spec = _resolve(node.node, scope)
        name = f"{path}.{node.attr}"
        if not isinstance(spec, dict) or node.attr not in spec:
            raise _unknown(name, node)
        return name, spec[node.attr]
    raise _not_allowed(type(node).__name__, node)


def _check_node(node: nodes.Node, scope: dict, loops: int) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        raise _not_allowed(_node_label(node), node)
    if isinstance(node, nodes.Name | nodes.Getattr):
        _resolve(node, scope)
        return
    if isinstance(node, nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            raise _not_allowed(f"|{node.name}", node)
    if isinstance(node, nodes.Test):
        if node.name not in ALLOWED_TESTS:
            raise _not_allowed(f"is {node.name}", node)
    if isinstance(node, nodes.For):
        if not isinstance(node.target, nodes.Name):
            raise _not_allowed("for a, b in ...", node)
        if node.recursive or node.test is not None:
            raise _not_allowed("for ... if / recursive", node)
        _, spec = _resolve(node.iter, scope) if isinstance(node.iter, nodes.Name | nodes.Getattr) \
            else (None, None)
        if not isinstance(spec, list):
            raise _not_allowed(_l("a loop over something that is not a list"), node)
        if loops >= MAX_LOOP_DEPTH:
            raise _not_allowed(_l("a loop inside a loop inside a loop"), node)
        inner = {**scope, node.target.name: spec[0], "loop": {"index": "", "first": "", "last": ""}}
        for child in node.body:
            _check_node(child, inner, loops + 1)
        for child in node.else_:
            _check_node(child, scope, loops)
        return
    for child in node.iter_child_nodes():
        _check_node(child, scope, loops)


def _node_label(node: nodes.Node) -> str:
    labels = {nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}", nodes.Macro: "{% macro %}",
              nodes.CallBlock: "{% call %}", nodes.Include: "{% include %}", nodes.Import: "{% import %}",
              nodes.FromImport: "{% from %}", nodes.Extends: "{% extends %}", nodes.Block: "{% block %}",
              nodes.Call: "()", nodes.Getitem: "[...]", nodes.FilterBlock: "{% filter %}",
              nodes.With: "{% with %}", nodes.Scope: "{% with %}"}
    return labels.get(type(node), type(node).__name__)


def merge(body: str, context: dict) -> str:
    """The template body with its fields filled in (HTML, to be sanitized by the caller).

    Raises Invalid for a body that check() would refuse, or that fails in the sandbox."""
    check(body)
    try:
        out = _env.from_string(body or "").render(**context)
    except SecurityError:
        raise Invalid(_l("The template tried something that is not allowed."), field="body") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a user's template is the template's error
        raise Invalid(_l("The template could not be filled in: %(error)s", error=type(exc).__name__),
                      field="body") from None
    if len(out) > MAX_LETTER_CHARS:
        raise Invalid(_l("The letter made from this template would be too long."), field="body")
    return out


# ----------------------------------------------------------------------------- the values

def date_text(day: date | None) -> str:
    """dd.mm.yyyy, as Norwegian letters write dates in lists."""
    return day.strftime("%d.%m.%Y") if day else ""


def long_date(day: date) -> str:
    """6. desember 2026: a letter's date line."""
    return f"{day.day}. {MONTHS_NN[day.month - 1]} {day.year}"


def lines(text: str) -> Markup:
    """Multi-line text as escaped lines joined by <br>: an address in a letter keeps its lines."""
    return Markup("<br>").join(escape(line.strip()) for line in (text or "").splitlines() if line.strip())


@dataclass
class Party:
    """A person or organisation a letter is addressed to or names: name and postal address."""

    name: str
    address: str = ""  # street lines, one per line
    postal_code: str = ""
    city: str = ""

    def fields(self) -> dict:
        return {"namn": self.name, "adresse": lines(self.address), "postnummer": self.postal_code,
                "stad": self.city}


def empty_context() -> dict:
    """Every field, empty: what a template is checked against in previews of the template itself."""
    def blank(spec):
        if isinstance(spec, dict):
            return {k: blank(v) for k, v in spec.items()}
        if isinstance(spec, list):
            return []
        return ""
    return blank(FIELDS)
