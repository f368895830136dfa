"""Small builders for test data, going through the same services as the UI."""
from __future__ import annotations

import io
import itertools
from datetime import date

from pypdf import PdfWriter

from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clients import service as clients
from ppt_web.clock import today as oslo_today

from .conftest import user

_ids = itertools.count(1)

def make_pdf(pages: int = 1, tag: str = "") -> bytes:
    """A real PDF; the tag makes its bytes (and so its SHA-256) unique."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": tag or f"test-{next(_ids)}"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def valid_national_id(n: int) -> str:
    """The n-th synthetic, checksum-valid national id (born 2010-2019)."""
    from ppt_web.generate import national_id

    return national_id(date(2010 + n % 10, 1 + n % 12, 1 + n % 28), 500 + n % 250)


def client(handler: str = "radgjevar1", n: int | None = None, **extra):
    n = next(_ids) if n is None else n
    data = clients.ClientData(national_id=valid_national_id(n), given_name=extra.pop("given_name", f"Ola{n}"),
                              family_name=extra.pop("family_name", "Nordmann"), handler_id=user(handler).id, **extra)
    return clients.register_client(user("konsulent"), data)


def case(handler: str = "radgjevar1", category: str = "expert_assessment", client_obj=None, title: str = "Vurdering"):
    client_obj = client_obj or client(handler)
    return cases.register_case(user("konsulent"), cases.CaseData(kind="person", title=title, category=category,
                                                               client_id=client_obj.id, handler_id=user(handler).id))


def post(case_obj, actor: str | None = None, post_type: str = "N", title: str = "Notat", with_pdf: bool = True,
         correspondent: str | None = None, document_date: date | None = None, pdf: bytes | None = None, **extra):
    actor = actor or case_obj.handler.username
    data = posts.PostData(post_type=post_type, title=title, document_date=document_date or oslo_today(),
                          correspondents=[posts.CorrespondentData(name=correspondent)] if correspondent else [],
                          **extra)
    pdf = pdf or make_pdf(tag=f"{title}-{next(_ids)}")
    main = posts.Upload(io.BytesIO(pdf), "notat.pdf") if with_pdf else None
    return posts.create_post(user(actor), case_obj.id, data, main)


def finalize(created, actor: str):
    """Finalized as the routine has it: an expert assessment through the leader's approval."""
    from ppt_web.cases import approval

    if posts.needs_approval(created):
        approval.send_for_approval(user(actor), created.id, user("leiar").id)
        return approval.approve(user("leiar"), created.id)
    return posts.finalize(user(actor), created.id)


def finalized_post(case_obj, **kwargs):
    created = post(case_obj, **kwargs)
    return finalize(created, kwargs.get("actor") or case_obj.handler.username)
