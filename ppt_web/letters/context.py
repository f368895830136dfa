"""The values a letter's merge fields get: from the case, its client, the post and the letterhead.

Plain dicts and strings only (see merge.py). The client's full national id is merged only when the
template allows it (show_national_id), and the merge is then logged as the id being shown; otherwise
the field holds the masked form (birth date part and five stars).
"""
from __future__ import annotations

from sqlalchemy import select

from .. import addresses
from ..activity import service as activity
from ..clock import today
from ..extensions import db
from ..models import Case, Correspondent, JournalPost, User
from . import letterhead
from .merge import Party, date_text, lines, long_date


def party_of(c: Correspondent) -> Party:
    return Party(c.name, c.address or "", c.postal_code or "", c.city or "")


def correspondents(case: Case) -> list[Correspondent]:
    """Every correspondent on the case's posts, oldest first."""
    return list(db.session.scalars(
        select(Correspondent).join(JournalPost, Correspondent.post_id == JournalPost.id)
        .where(JournalPost.case_id == case.id).order_by(Correspondent.id)))


def guardian_rows(case: Case, rows: list[Correspondent] | None = None) -> list[Correspondent]:
    """The guardians known in the case: correspondents registered with a national id (the form asks for
    a guardian's, for digital post) that is not the client's own, once each by name, oldest first.
    rows: the case's correspondents, when the caller has them already."""
    client_id = case.client.national_id if case.client else None
    seen: dict[str, Correspondent] = {}
    for c in correspondents(case) if rows is None else rows:
        if c.national_id and c.national_id != client_id:
            seen.setdefault(c.name.casefold(), c)
    return list(seen.values())


def guardians(case: Case) -> list[Party]:
    """The guardians known in the case (guardian_rows), as a letter names them."""
    return [party_of(c) for c in guardian_rows(case)]


def context(actor: User, case: Case, recipients: list[Party], *, show_national_id: bool = False,
            approver: User | None = None) -> dict:
    """Every merge field's value for a letter in this case to these recipients, written by actor."""
    client = case.client
    org = (client.organisation if client else None) or case.organisation
    head = letterhead.current()
    national_id = ""
    if client is not None:
        if show_national_id:
            national_id = client.national_id
            activity.record("national_id_shown", actor=actor, object_type="client", object_id=client.id,
                            detail="letter")
        else:
            national_id = client.masked_id
    where = addresses.structured(org.address, "", "") if org is not None and org.address else None
    org_address = "\n".join([*where.lines, " ".join(p for p in (where.postal_code, where.city) if p)]) \
        if where else ""
    return {
        "klient": {
            "namn": client.name if client else "", "fornamn": client.given_name if client else "",
            "etternamn": client.family_name if client else "",
            "fodselsdato": date_text(client.birth_date) if client else "", "fodselsnummer": national_id,
            "adresse": lines(client.address) if client else "", "postnummer": client.postal_code if client else "",
            "stad": client.city if client else "",
        },
        "foresette": [g.fields() for g in guardians(case)],
        "mottakarar": [r.fields() for r in recipients],
        "mottakar": recipients[0].fields() if recipients else Party("").fields(),
        "eining": {"namn": org.name if org else "", "adresse": lines(org_address),
                   "orgnr": (org.org_number or "") if org else ""},
        "sak": {"nummer": case.number, "tittel": case.title, "opna": date_text(case.opened_on),
                "arkivnummer": case.archive_number or ""},
        "saksbehandlar": {"namn": actor.full_name, "epost": actor.email or ""},
        "godkjennar": {"namn": approver.full_name if approver else ""},
        "dato": long_date(today()),
        "kontor": {"namn": head["name"], "adresse": lines(head["address"]), "orgnr": head["org_number"],
                   "telefon": head["phone"], "epost": head["email"]},
    }
