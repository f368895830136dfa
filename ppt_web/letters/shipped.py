"""The letter templates the app ships, in Nynorsk, ready to use: added once to a database that lacks them.

Each is a row of SHIPPED with its body in shipped/<key>.html. The body files hold one block (<p>, <h2>,
<ul>...) per line for reading; the lines are joined without separators, so the body is HTML as the
editor makes it, and the sanitizer leaves it exactly as it is (tests/test_letter_shipped.py).
Square-bracketed text ("[dato og klokkeslett]") is for the handler to replace in the letter. The bodies
end with the letter's last paragraph: the closing, the handler and the approver are the PDF layout's.

ensure_shipped() adds the ones whose shipped_key is not in the table yet, each with its version 1. A
shipped template an administrator has edited or retired keeps its key, so it is never added again;
a copy of one has no key. None of them merges the full national id: a letter names the child by
name and birth date, which tells the school, the kindergarten and the guardians who it is about,
and the archive identifies the client by the national id in the record's metadata, not in the text.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..activity import service as activity
from ..extensions import db
from ..models import DocumentTemplate, DocumentTemplateVersion, TemplateKind
from ..models.domain import DEFAULT_LEGAL_BASIS, PostType
from ..transaction import transaction

BODIES = Path(__file__).resolve().parent / "shipped"


@dataclass(frozen=True)
class Shipped:
    """One template the app ships; its body is read from shipped/<shipped_key>.html."""

    shipped_key: str
    name: str
    kind: TemplateKind
    post_type: PostType
    default_title: str  # plain text: the post's title, which the archive and the journal show
    legal_basis: str = DEFAULT_LEGAL_BASIS
    show_national_id: bool = False

    @property
    def body(self) -> str:
        return read_body(self.shipped_key)


def read_body(key: str) -> str:
    """The body in shipped/<key>.html, its lines joined (one block per line there)."""
    text = (BODIES / f"{key}.html").read_text(encoding="utf-8")
    return "".join(line.strip() for line in text.splitlines() if line.strip())


SHIPPED: list[Shipped] = [
    Shipped("invitation", "Innkalling til møte", TemplateKind.INVITATION, PostType.U, "Innkalling til møte"),
    Shipped("referral_received", "Stadfesting på motteken tilvising", TemplateKind.LETTER, PostType.U,
            "Stadfesting på motteken tilvising"),
    Shipped("expert_school", "Sakkunnig vurdering – spesialundervisning/individuelt tilrettelagd opplæring",
            TemplateKind.EXPERT_ASSESSMENT, PostType.U, "Sakkunnig vurdering – individuelt tilrettelagd opplæring"),
    Shipped("expert_kindergarten", "Sakkunnig vurdering – spesialpedagogisk hjelp før skulealder",
            TemplateKind.EXPERT_ASSESSMENT, PostType.U, "Sakkunnig vurdering – spesialpedagogisk hjelp"),
    Shipped("statement", "Fagleg uttale", TemplateKind.STATEMENT, PostType.U, "Fagleg uttale"),
    Shipped("closing", "Avslutning av sak", TemplateKind.LETTER, PostType.U, "Avslutning av sak"),
]


def ensure_shipped() -> int:
    """Add the shipped templates the database has never had (by shipped_key); how many were added.

    One commit per template. Two processes starting at once may both try one: the unique shipped_key
    refuses the second, which counts it as present."""
    present = _present()
    added = 0
    for spec in SHIPPED:
        if spec.shipped_key in present:
            continue
        try:
            with transaction():
                _add(spec)
        except IntegrityError:
            continue  # another process added it first; transaction() rolled ours back
        added += 1
    return added


def _present() -> set[str]:
    """The shipped keys the table holds (retired and edited templates included)."""
    keys = select(DocumentTemplate.shipped_key).where(DocumentTemplate.shipped_key.is_not(None))
    return set(db.session.scalars(keys))


def _add(spec: Shipped) -> DocumentTemplate:
    body = spec.body
    values = {"name": spec.name, "kind": spec.kind, "post_type": spec.post_type,
              "default_title": spec.default_title, "legal_basis": spec.legal_basis,
              "show_national_id": spec.show_national_id, "body": body}
    template = DocumentTemplate(**values, version=1, shipped_key=spec.shipped_key, created_by_id=None,
                                updated_by_id=None)
    template.versions.append(DocumentTemplateVersion(**values, number=1, created_by_id=None))
    db.session.add(template)
    db.session.flush()  # the unique shipped_key is checked here, inside the transaction
    activity.record("template_created", actor_name="app", object_type="document_template", object_id=template.id,
                    after={"name": spec.name, "shipped_key": spec.shipped_key, "version": 1}, detail="shipped")
    return template
