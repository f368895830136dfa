"""Organisations (schools, kindergartens, other services): register, change, list."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import form_tokens, validation
from ..activity import service as activity
from ..auth.access import require
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..models import Organisation, OrgKind, User
from ..transaction import transaction


def register_organisation(actor: User, *, name: str, org_number: str, kind: str, parent_id: int | None = None,
                          address: str = "", token: str | None = None) -> Organisation:
    """Register an organisation, once per form token (form_tokens.once)."""

    def add() -> Organisation:
        require(actor, "manage_orgs")
        org = Organisation()
        _apply_org(org, name, org_number, kind, parent_id, address)
        db.session.add(org)
        _flush_unique(org)
        activity.record("organisation_created", actor=actor, object_type="organisation", object_id=org.id,
                        after=_org_snapshot(org))
        return org

    with transaction():
        return form_tokens.once(actor, token, "organisation", add)


def update_organisation(actor: User, org_id: int, *, name: str, org_number: str, kind: str,
                        parent_id: int | None = None, address: str = "") -> Organisation:
    require(actor, "manage_orgs")
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise NotFound(object_type="organisation", object_id=org_id)
    before = _org_snapshot(org)
    _apply_org(org, name, org_number, kind, parent_id, address)
    _flush_unique(org)
    activity.record("organisation_updated", actor=actor, object_type="organisation", object_id=org.id,
                    before=before, after=_org_snapshot(org))
    db.session.commit()
    return org


def _flush_unique(org: Organisation) -> None:
    """Write the organisation; its number registered by someone else a moment ago (after _apply_org looked) is
    the same refusal as one registered before, not a 500."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(_l("An organisation with this organisation number is registered already."),
                       field="org_number") from None


def _apply_org(org: Organisation, name, org_number, kind, parent_id, address) -> None:
    org.name = validation.required_text(name, "name", 200)
    org.name_lower = org.name.lower()
    number = validation.org_number(org_number) if (org_number or "").strip() else None
    if number:
        clash = select(func.count()).select_from(Organisation).where(Organisation.org_number == number)
        if org.id:
            clash = clash.where(Organisation.id != org.id)
        if db.session.scalar(clash):
            raise Conflict(_l("An organisation with this organisation number is registered already."),
                           field="org_number")
    org.org_number = number
    try:
        org.kind = OrgKind(kind)
    except ValueError:
        raise Invalid(_l("Choose a kind from the list."), field="kind") from None
    parent = get_organisation(parent_id)
    if parent is not None and org.id is not None:
        seen: Organisation | None = parent
        while seen is not None:  # no cycles in the structure
            if seen.id == org.id:
                raise Invalid(_l("An organisation cannot be placed under itself."), field="parent_id")
            seen = seen.parent
    org.parent = parent
    org.address = " ".join((address or "").split())[:300]


def _org_snapshot(org: Organisation) -> dict:
    return {"name": org.name, "org_number": org.org_number, "kind": org.kind.value,
            "parent": org.parent.name if org.parent else None, "address": org.address}


def organisations(kinds: tuple[OrgKind, ...] | None = None) -> list[Organisation]:
    query = select(Organisation).order_by(Organisation.name_lower)
    if kinds:
        query = query.where(Organisation.kind.in_(kinds))
    return list(db.session.scalars(query))


def get_organisation(org_id: int | None) -> Organisation | None:
    if not org_id:
        return None
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise Invalid(_l("Choose an organisation from the list."), field="organisation_id")
    return org
