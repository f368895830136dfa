"""Letter templates: list, create, edit (each save a new kept version), copy, retire and reinstate.

CONTRACT (implemented by the templates helper):

@dataclass TemplateData: name, kind (TemplateKind value), post_type ("U" | "N"), default_title,
    legal_basis, show_national_id: bool, body (HTML from the editor)

active() -> list[DocumentTemplate]              not retired, by kind then name (for "Nytt brev frå mal")
listing(actor) -> list[DocumentTemplate]        all, retired last (manage_templates)
get(actor, template_id) -> DocumentTemplate     manage_templates; 404 (NotFound) for an unknown id
create(actor, data, token=None) -> DocumentTemplate        version 1
update(actor, template_id, data, seen_version) -> DocumentTemplate
    a new version when anything changed; seen_version (the version the form showed) older than the
    template's -> Conflict naming who saved meanwhile; nothing changed -> Invalid("Nothing was changed.")
copy(actor, template_id) -> DocumentTemplate    "Kopi av <name>", version 1, not shipped_key
retire(actor, template_id) / reinstate(actor, template_id)
version(actor, template_id, number) -> DocumentTemplateVersion

Every write: manage_templates (require), body = sanitize.clean(body) then merge.check(body)
(Invalid(field="body") names the unknown field), post_type in TEMPLATE_POST_TYPES, an activity row
(template_created / template_changed / template_copied / template_retired / template_reinstated).

A save names the version its form showed. Two administrators editing at once cannot overwrite each
other: the later save meets a newer version and is refused, naming who saved; two saves at the same
moment meet the unique (template, number) of the version row, and the second is refused the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..activity import service as activity
from ..auth.access import require
from ..clock import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..form_tokens import once
from ..models import DocumentTemplate, DocumentTemplateVersion, PostType, TemplateKind, User
from ..models.domain import DEFAULT_LEGAL_BASIS
from ..models.letters import TEMPLATE_POST_TYPES
from ..text import NOT_ARCHIVABLE
from ..transaction import transaction
from . import merge, sanitize

PERMISSION = "manage_templates"
OBJECT_TYPE = "document_template"
COPY_PREFIX = "Kopi av "  # the templates are written in Nynorsk, and so is the name of a copy
# Column lengths (models/letters.py).
LENGTHS = {"name": 200, "default_title": 300, "legal_basis": 200}
MAX_BODY_CHARS = 1_000_000  # a body with inline images stays well below this

KIND_LABELS = {
    TemplateKind.LETTER.value: _l("Letter"),
    TemplateKind.EXPERT_ASSESSMENT.value: _l("Expert assessment"),
    TemplateKind.STATEMENT.value: _l("Statement"),
    TemplateKind.INVITATION.value: _l("Invitation"),
    TemplateKind.NOTE.value: _l("Note"),
}
# The fields a version keeps: what a letter is made from.
FIELDS = ("name", "kind", "post_type", "default_title", "legal_basis", "show_national_id", "body")


@dataclass
class TemplateData:
    name: str
    kind: str
    post_type: str
    default_title: str = ""
    legal_basis: str = DEFAULT_LEGAL_BASIS
    show_national_id: bool = False
    body: str = ""


def _one_line(value: str | None, field: str, required: bool = False) -> str:
    text = (value or "").strip()
    if NOT_ARCHIVABLE.search(text) or any(ch in text for ch in "\t\n\r"):
        raise Invalid(_l("Control characters and line breaks are not allowed here."), field=field)
    text = " ".join(text.split())
    if required and not text:
        raise Invalid(_l("This field is required."), field=field)
    if len(text) > LENGTHS[field]:
        raise Invalid(_l("At most %(n)s characters.", n=LENGTHS[field]), field=field)
    return text


def _checked(data: TemplateData) -> dict:
    """The values to keep, or Invalid naming the first field that is wrong. The body is sanitized as
    every letter is, then checked: an unknown merge field or a sandbox escape is refused here."""
    name = _one_line(data.name, "name", required=True)
    default_title = _one_line(data.default_title, "default_title")
    legal_basis = _one_line(data.legal_basis, "legal_basis")
    try:
        kind = TemplateKind(data.kind)
    except ValueError:
        raise Invalid(_l("Choose a value from the list."), field="kind") from None
    try:
        post_type = PostType(data.post_type)
    except ValueError:
        post_type = None
    if post_type not in TEMPLATE_POST_TYPES:
        raise Invalid(_l("A template makes an outgoing letter (U) or a note (N)."), field="post_type")
    if len(data.body or "") > MAX_BODY_CHARS:
        raise Invalid(_l("The text is too long."), field="body")
    body = sanitize.clean(data.body or "")
    merge.check(body)
    return {
        "name": name,
        "kind": kind,
        "post_type": post_type,
        "default_title": default_title,
        "legal_basis": legal_basis,
        "show_national_id": bool(data.show_national_id),
        "body": body,
    }


def _values(obj: DocumentTemplate | DocumentTemplateVersion) -> dict:
    return {name: getattr(obj, name) for name in FIELDS}


def _logged(values: dict) -> dict:
    """A template's fields for the activity log: the body by its length, not its text."""
    out = {k: (v.value if hasattr(v, "value") else v) for k, v in values.items() if k != "body"}
    out["body_chars"] = len(values.get("body") or "")
    return out


def _add_version(template: DocumentTemplate, actor: User) -> DocumentTemplateVersion:
    row = DocumentTemplateVersion(template=template, number=template.version, created_at=template.updated_at,
                                  created_by_id=actor.id, **_values(template))
    db.session.add(row)
    return row


def _load(template_id: int) -> DocumentTemplate:
    template = db.session.get(DocumentTemplate, template_id)
    if template is None:
        raise NotFound(object_type=OBJECT_TYPE, object_id=template_id)
    return template


def active() -> list[DocumentTemplate]:
    """The templates a letter may be made from: not retired, by kind then name."""
    return list(db.session.scalars(select(DocumentTemplate).where(DocumentTemplate.retired_at.is_(None))
                                   .order_by(DocumentTemplate.kind, DocumentTemplate.name, DocumentTemplate.id)))


def listing(actor: User) -> list[DocumentTemplate]:
    """Every template for the administration screen, retired ones last."""
    require(actor, PERMISSION)
    return list(db.session.scalars(select(DocumentTemplate).order_by(
        DocumentTemplate.retired_at.is_not(None), DocumentTemplate.kind, DocumentTemplate.name, DocumentTemplate.id)))


def get(actor: User, template_id: int) -> DocumentTemplate:
    require(actor, PERMISSION)
    return _load(template_id)


def version(actor: User, template_id: int, number: int) -> DocumentTemplateVersion:
    """One kept version of a template, as it was saved."""
    require(actor, PERMISSION)
    template = _load(template_id)
    row = db.session.scalar(select(DocumentTemplateVersion).where(
        DocumentTemplateVersion.template_id == template.id, DocumentTemplateVersion.number == number))
    if row is None:
        raise NotFound(object_type="document_template_version", object_id=f"{template_id}/{number}")
    return row


def create(actor: User, data: TemplateData, token: str | None = None) -> DocumentTemplate:
    """A new template and its version 1 (once per form token)."""
    require(actor, PERMISSION)
    values = _checked(data)

    def make() -> DocumentTemplate:
        template = _new_template(actor, values)
        activity.record("template_created", actor=actor, object_type=OBJECT_TYPE, object_id=template.id,
                        after=_logged(values))
        return template

    with transaction():
        return once(actor, token, OBJECT_TYPE, make)


def _new_template(actor: User, values: dict) -> DocumentTemplate:
    """A template at version 1 with these fields, and its version row, in the caller's transaction."""
    now = utcnow()
    template = DocumentTemplate(version=1, created_at=now, created_by_id=actor.id, updated_at=now,
                                updated_by_id=actor.id, **values)
    db.session.add(template)
    _add_version(template, actor)
    db.session.flush()
    return template


def _saved_meanwhile(template: DocumentTemplate) -> Conflict:
    who = template.updated_by.full_name if template.updated_by else "?"
    return Conflict(_l("%(name)s saved this template meanwhile (version %(version)s). Open it again to see "
                       "their changes; yours were not saved.", name=who, version=template.version))


def update(actor: User, template_id: int, data: TemplateData, seen_version: int) -> DocumentTemplate:
    """Save the form as the template's next version; refused when someone saved since the form was shown."""
    require(actor, PERMISSION)
    try:
        with transaction():
            template = _load(template_id)
            if seen_version != template.version:
                raise _saved_meanwhile(template)
            values = _checked(data)
            before = _values(template)
            if values == before:
                raise Invalid(_l("Nothing was changed."))
            for name, value in values.items():
                setattr(template, name, value)
            template.version += 1
            template.updated_at, template.updated_by_id = utcnow(), actor.id
            _add_version(template, actor)
            changed = sorted(k for k in FIELDS if before[k] != values[k])
            activity.record("template_changed", actor=actor, object_type=OBJECT_TYPE, object_id=template.id,
                            before=_logged(before), after=_logged(values),
                            detail=f"version {template.version}: {', '.join(changed)}")
            db.session.flush()
    except IntegrityError:  # another save made this version number at the same moment
        db.session.expire_all()
        raise _saved_meanwhile(_load(template_id)) from None
    return template


def copy(actor: User, template_id: int) -> DocumentTemplate:
    """A new template with the source's current fields, named "Kopi av ...", at version 1."""
    require(actor, PERMISSION)
    with transaction():
        source = _load(template_id)
        values = _values(source)
        values["name"] = (COPY_PREFIX + source.name)[:LENGTHS["name"]]
        template = _new_template(actor, values)
        activity.record("template_copied", actor=actor, object_type=OBJECT_TYPE, object_id=template.id,
                        after=_logged(values), detail=f"from {source.id} version {source.version}")
    return template


def retire(actor: User, template_id: int) -> DocumentTemplate:
    """No new letters from it; letters made from it keep their text, and it can be reinstated."""
    require(actor, PERMISSION)
    with transaction():
        template = _load(template_id)
        if template.retired:
            raise Invalid(_l("The template is retired already."))
        template.retired_at, template.retired_by_id = utcnow(), actor.id
        activity.record("template_retired", actor=actor, object_type=OBJECT_TYPE, object_id=template.id)
    return template


def reinstate(actor: User, template_id: int) -> DocumentTemplate:
    require(actor, PERMISSION)
    with transaction():
        template = _load(template_id)
        if not template.retired:
            raise Invalid(_l("The template is in use already."))
        template.retired_at, template.retired_by_id = None, None
        activity.record("template_reinstated", actor=actor, object_type=OBJECT_TYPE, object_id=template.id)
    return template
