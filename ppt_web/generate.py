"""Synthetic data (flask generate-data): valid ids, realistic cases, through the services."""
from __future__ import annotations

import io
import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, text, update

from . import clock
from .cases import approval
from .cases import posts as post_service
from .cases import service as case_service
from .clients import organisations
from .clients import service as client_service
from .extensions import db
from .models import Case, Client, Organisation, PostStatus, User

F1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
F2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits, weights) -> int | None:
    rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    check = 0 if rest == 0 else 11 - rest
    return None if check == 10 else check


def national_id(born: date, individual: int) -> str:
    """A checksum-valid fødselsnummer for a birth date; bumps the individual number until valid."""
    for step in range(1000):
        ind = (individual + step) % 1000
        if born.year >= 2000 and ind < 500:
            ind += 500
        if born.year < 2000 and ind >= 500:
            ind -= 500
        digits = [int(c) for c in f"{born:%d%m%y}{ind:03d}"]
        k1 = _mod11(digits, F1)
        if k1 is None:
            continue
        k2 = _mod11(digits + [k1], F2)
        if k2 is None:
            continue
        return "".join(map(str, digits + [k1, k2]))
    raise ValueError("no valid number for that date")


def org_number(base: int) -> str:
    """A checksum-valid 9-digit organisation number starting with 9 (as Norwegian ones do)."""
    for step in range(100):
        digits = [int(c) for c in f"9{(base + step) % 10**7:07d}"]
        check = _mod11(digits, ORG_WEIGHTS)
        if check is not None:
            return "".join(map(str, digits + [check]))
    raise ValueError("no valid organisation number")


def text_pdf(title: str, pages: int = 1) -> bytes:
    """A small, real PDF with a line of text on each page; the same input gives the same bytes."""
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    safe = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    for i in range(pages):
        text = (f"BT /F1 14 Tf 72 770 Td ({safe}) Tj 0 -24 Td (Side {i + 1} av {pages}) Tj ET"
                .encode("cp1252", "replace"))
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


GIVEN = ["Emma", "Nora", "Sofie", "Ella", "Olivia", "Ingrid", "Leah", "Sara", "Maja", "Frida", "Jakob", "Emil",
         "Noah", "Oliver", "Filip", "William", "Lucas", "Liam", "Henrik", "Aksel", "Tobias", "Sander", "Iver",
         "Ylva", "Sigrid", "Astrid", "Tiril", "Eirik", "Magnus", "Vetle", "Synne", "Marius"]
FAMILY = ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
          "Karlsen", "Haugen", "Berg", "Hagen", "Eide", "Vik", "Dahl", "Myklebust", "Ulstein", "Hareide",
          "Moldskred", "Flø", "Kvalsund", "Osnes", "Saunes", "Brandal", "Hasund", "Garshol", "Aarseth"]
PLACES = ["Ulsteinvik", "Hasund", "Haddal", "Flø", "Dimna", "Eiksund", "Hareid", "Brandal"]
CATEGORIES = [("referral", 25), ("expert_assessment", 30), ("statement", 15), ("follow_up", 25), ("other", 5)]
CASE_TITLES = {
    "referral": ["Tilvising frå skule", "Tilvising frå barnehage", "Tilvising frå føresette"],
    "expert_assessment": ["Sakkunnig vurdering spesialundervisning", "Sakkunnig vurdering spesialpedagogisk hjelp"],
    "statement": ["Uttale om utsett skulestart", "Uttale om fritak frå vurdering med karakter"],
    "follow_up": ["Oppfølging etter sakkunnig vurdering", "Rettleiing av skule"],
    "other": ["Konsultasjon", "Drøftingsmøte"],
}
POST_TITLES = {
    "I": ["Tilvising", "Pedagogisk rapport", "Samtykke frå føresette", "Kartlegging frå skulen", "Referat frå møte"],
    "U": ["Sakkunnig vurdering", "Innkalling til samtale", "Uttale", "Svar på førespurnad", "Brev til føresette"],
    "N": ["Samtale med føresette", "Observasjon i klasse", "Testresultat", "Notat frå drøfting"],
    "X": ["Telefon med skulen", "Intern merknad"],
}


def generate(n_clients: int, seed: int, echo=print) -> dict:
    """Fill the database with a realistic service's work, through the same services as the UI.

    Same seed, same data. Where the demo users exist the work is spread over them: each
    PP-rådgjevar has their own clients and cases, some co-handled by a colleague.
    """
    rng = random.Random(seed)
    today = clock.today()
    users = list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)))
    registrar = next((u for u in users if u.can("register_case") and u.can("manage_orgs")), None)
    handlers = [u for u in users if any(r.code == "pp_radgjevar" for r in u.roles)]
    approver = next((u for u in users if u.can("approve") and u.can("search_all")), None)
    if registrar is None or not handlers or approver is None:
        raise RuntimeError("generate-data needs a user with register_case and manage_orgs, a leader (approve) and "
                           "at least one PP-rådgjevar: run seed-demo first, or create them")
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        db.session.execute(text("PRAGMA synchronous=OFF"))  # a bulk load: no fsync per commit
    # The generator is the only writer while it runs: keep loaded rows across commits instead of
    # reloading the same users, cases and roles after every service call.
    session = db.session()
    session.expire_on_commit = False
    try:
        return _fill(n_clients, rng, today, registrar, handlers, approver, echo)
    finally:
        session.expire_on_commit = True
        if sqlite:
            db.session.execute(text("PRAGMA synchronous=NORMAL"))
            db.session.commit()


def _fill(n_clients: int, rng: random.Random, today: date, registrar, handlers, approver, echo) -> dict:
    """The work itself: organisations, then each client with their cases, posts and write-offs."""
    stats = {"organisations": 0, "clients": 0, "cases": 0, "posts": 0, "finalized": 0, "closed": 0}
    pdfs = [text_pdf(f"Syntetisk dokument {i + 1}", 1 + i % 4) for i in range(12)]
    existing_orgs = len(organisations.organisations())
    used_orgs = set(db.session.scalars(select(Organisation.org_number)))
    orgs = []
    for i in range(max(4, n_clients // 25)):
        kind = "kindergarten" if i % 2 else "school"
        name = f"{rng.choice(PLACES)} {'barnehage' if kind == 'kindergarten' else 'skule'} {existing_orgs + i + 1}"
        number = org_number(rng.randrange(10**7))
        while number in used_orgs:
            number = org_number(rng.randrange(10**7))
        used_orgs.add(number)
        orgs.append(organisations.register_organisation(
            registrar, name=name, org_number=number, kind=kind,
            address=f"{rng.choice(PLACES)}vegen {rng.randint(1, 80)}"))
        stats["organisations"] += 1

    used_ids = set(db.session.scalars(select(Client.national_id)))
    weights = [w for _, w in CATEGORIES]
    for n in range(n_clients):
        handler = handlers[n % len(handlers)]
        born = today - timedelta(days=rng.randint(3 * 365, 17 * 365))
        number = national_id(born, rng.randint(500, 999))
        while number in used_ids:
            number = national_id(born, rng.randint(0, 999))
        used_ids.add(number)
        client = client_service.register_client(registrar, client_service.ClientData(
            national_id=number, given_name=rng.choice(GIVEN), family_name=rng.choice(FAMILY),
            address=f"{rng.choice(PLACES)}vegen {rng.randint(1, 120)}", postal_code=f"60{rng.randint(10, 99)}",
            city=rng.choice(PLACES), organisation_id=rng.choice(orgs).id, handler_id=handler.id))
        stats["clients"] += 1
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            category = rng.choices([c for c, _ in CATEGORIES], weights)[0]
            case = case_service.register_case(registrar, case_service.CaseData(
                kind="person", title=rng.choice(CASE_TITLES[category]), category=category, client_id=client.id,
                handler_id=handler.id))
            stats["cases"] += 1
            opened = today - timedelta(days=rng.randint(0, 3 * 365))
            if len(handlers) > 1 and rng.random() < 0.1:
                other = rng.choice([h for h in handlers if h.id != handler.id])
                case_service.add_cohandler(handler, case.id, other.id)
            case_posts = []
            for k in range(rng.randint(1, 5)):
                post_type = rng.choices("IUNX", (35, 25, 30, 10))[0]
                when = min(today, opened + timedelta(days=rng.randint(0, 120) + 20 * k))
                org = rng.choice(orgs)
                correspondent = [post_service.CorrespondentData(organisation_id=org.id)] if rng.random() < 0.6 else \
                    [post_service.CorrespondentData(name=f"{rng.choice(GIVEN)} {client.family_name}",
                                                    address=client.address)]
                data = post_service.PostData(
                    post_type=post_type, title=rng.choice(POST_TITLES[post_type]), document_date=when,
                    received_on=when if post_type == "I" else None, sent_on=when if post_type == "U" else None,
                    correspondents=correspondent if post_type in "IU" else [])
                pdf = pdfs[rng.randrange(len(pdfs))]
                post = post_service.create_post(handler, case.id, data,
                                                post_service.Upload(io.BytesIO(pdf), f"{data.title}.pdf"))
                stats["posts"] += 1
                age = (today - when).days
                if age > 14 or rng.random() < 0.5:
                    if post_service.needs_approval(post):  # the routine: a leader approves, which finalizes
                        approval.send_for_approval(handler, post.id, approver.id)
                        post = approval.approve(approver, post.id)
                    else:
                        post = post_service.finalize(handler, post.id)
                    stats["finalized"] += 1
                case_posts.append(post)
            replies = [p for p in case_posts if p.post_type.value == "U" and p.status == PostStatus.FINALIZED]
            for post in case_posts:
                if post.post_type.value == "I" and post.status == PostStatus.FINALIZED and rng.random() < 0.7:
                    if replies and rng.random() < 0.5:
                        post_service.write_off(handler, post.id, "BU", replies[0].id)
                    else:
                        post_service.write_off(handler, post.id, rng.choice(("TE", "TO")))
            # Spread the cases over the past years, as ten years of real work would be.
            last = max(d for p in case_posts if (d := p.document_date) is not None)  # each was made with one
            db.session.execute(update(Case).where(Case.id == case.id).values(
                opened_on=opened, last_activity_at=datetime.combine(last, time(12), UTC)))
            db.session.commit()
            fresh = db.session.get(Case, case.id)
            assert fresh is not None  # committed just above
            if (today - opened).days > 400 and not case_service.open_posts(fresh) and rng.random() < 0.7:
                # Closed as the routine closes a case: what is still not written off is, in the same action.
                case_service.close_case(handler, case.id, write_off_method=case_service.DEFAULT_CLOSING_WRITE_OFF)
                stats["closed"] += 1
        if (n + 1) % 100 == 0:
            echo(f"  {n + 1} clients ...")
    return stats
