"""The client folder, the approval queue and the post registration inbox list rows shaped by one query
(no ORM object per row, links built from a prefix): the same rows, links and texts as the ORM objects
gave, and a page's statement count does not grow with its rows."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import render_template_string, url_for
from sqlalchemy import event, select

from ppt_web.cases import approval
from ppt_web.clients import service as clients
from ppt_web.clock import today as oslo_today
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.links import id_prefix
from ppt_web.models import InboxItem, InboxSource, InboxStatus, JournalPost
from ppt_web.postreg import service as postreg

from . import builders
from .conftest import user
from .test_approval import assessment


@contextmanager
def counted():
    """The SQL statements run inside the block (their number in .n), but for the header's counts and the
    settings they read, which the request path may keep for a while whatever the page."""
    seen = type("Seen", (), {"n": 0, "sql": []})()

    def _count(conn, cursor, statement, *args):
        if "count(" not in statement and "FROM setting" not in statement:
            seen.n += 1
            seen.sql.append(" ".join(statement.split())[:150])

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


def _norm(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", html)).strip()


def _tbodies(page: str) -> list[str]:
    return [_norm(b) for b in re.findall(r"<tbody[^>]*>(.*?)</tbody>", page, re.S)]


def test_id_prefix_gives_what_url_for_gives(app):
    with app.test_request_context():
        for endpoint, key in (("cases.post", "post_id"), ("cases.case", "case_id"), ("postreg.item", "item_id")):
            for some_id in (1, 7, 918273, 2**40):
                assert id_prefix(endpoint, key) + str(some_id) == url_for(endpoint, **{key: some_id})
        with pytest.raises(ValueError):
            id_prefix("clients.edit_client", "client_id")  # /clients/<id>/edit: the id is not the end


def test_the_folder_rows_are_the_post_rows_of_the_orm_posts_and_cost_no_query_each(app, login_as):
    with app.app_context():
        client_obj = builders.client("radgjevar1")
        first, second = (builders.case(client_obj=client_obj, title=t) for t in ("Vurdering", "Oppfølging"))
        builders.post(first, with_pdf=False, correspondent="Kari Føresett")
        builders.post(second, with_pdf=False, title="")
        client_id, case_ids = client_obj.id, [first.id, second.id]
    web = login_as("radgjevar1")
    web.get(f"/clients/{client_id}")  # the first request fills the process's caches
    with app.app_context(), counted() as few:
        small = web.get(f"/clients/{client_id}")
    assert small.status_code == 200
    with app.app_context():
        for n in range(12):
            case_obj = db.session.get(type(first), case_ids[n % 2])
            later = n % 3 == 0  # registered after downtime: a date before today, and a note on the row
            builders.post(case_obj, with_pdf=False, title=f"Notat {n}", correspondent=f"Per {n}",
                          registered_after_downtime=later, document_date=oslo_today() - timedelta(days=n + 1))
        post = builders.post(case_obj, with_pdf=False, title="To mottakarar", correspondent="Ola")
        post.correspondents.append(type(post.correspondents[0])(role="recipient", name="Eva"))
        db.session.commit()
    with app.app_context(), counted() as many:
        page = web.get(f"/clients/{client_id}")
    assert page.status_code == 200
    assert many.n == few.n, (few.sql, many.sql)  # no statement per row
    html = page.get_data(as_text=True)
    assert "Ola, Eva" in html
    with app.app_context():
        orm_posts = list(db.session.scalars(
            select(JournalPost).where(JournalPost.case_id.in_(case_ids))
            .order_by(JournalPost.document_date.desc().nulls_last(), JournalPost.id.desc())))
        assert [p.id for p in clients.folder_posts(case_ids)] == [p.id for p in orm_posts]
        with app.test_request_context():
            expected = render_template_string(
                '{% from "_macros/forms.html" import post_row with context %}'
                "{% for post in posts %}{{ post_row(post, show_case=True) }}{% endfor %}", posts=orm_posts)
    assert _tbodies(html)[1] == _norm(expected)


def test_the_approval_queue_rows_show_what_the_posts_say_and_cost_no_query_each(app, login_as):
    with app.app_context():
        first = assessment()
        approval.send_for_approval(user("radgjevar1"), first.id, user("nestleiar").id)
        first_id = first.id
    web = login_as("leiar")
    web.get("/approvals")  # the first request fills the process's caches
    with app.app_context(), counted() as few:
        assert web.get("/approvals").status_code == 200
    with app.app_context():
        more = [assessment(handler="radgjevar2", title=f"Vurdering {n}") for n in range(4)]
        for post in more:
            approval.send_for_approval(user("radgjevar2"), post.id, user("leiar").id)
        old = db.session.get(JournalPost, first_id)
        old.approval_requested_at = utcnow() - timedelta(days=app.config["PPT_APPROVAL_WARN_DAYS"] + 1)
        db.session.commit()
        expected = []
        with app.test_request_context():
            for post in [db.session.get(JournalPost, p) for p in [first_id, *(m.id for m in more)]]:
                expected.append((str(post.id), url_for("cases.post", post_id=post.id), f"{post.number} {post.title}",
                                 post.approval_requested_by.full_name, post.approver.full_name))
    with app.app_context(), counted() as many:
        page = web.get("/approvals").get_data(as_text=True)
    assert many.n == few.n, (few.sql, many.sql)
    rows = re.findall(r'<tr class="(overdue)?" data-post="(\d+)">.*?<a href="([^"]+)">([^<]*)</a></td>\s*'
                      r"<td>([^<]*)</td>\s*<td>([^<]*)</td>", page, re.S)
    assert [r[1:] for r in rows] == expected
    assert [r[0] for r in rows] == ["overdue", "", "", "", ""]


@pytest.mark.parametrize("which", postreg.FILTERS)
def test_the_inbox_rows_are_the_items_of_the_inbox_page_by_page(app, ctx, which):
    start = utcnow() - timedelta(days=400)
    statuses = [InboxStatus.NEW, InboxStatus.TRANSFERRED, InboxStatus.REJECTED, InboxStatus.SYSTEM_REJECTED,
                InboxStatus.IN_PROGRESS]
    for n in range(45):  # two share each arrival time: the page edge orders by id too
        db.session.add(InboxItem(source=InboxSource.SCAN, status=statuses[n % 5], filename=f"brev-{n:03d}.pdf",
                                 arrived_at=start + timedelta(days=n // 2),
                                 claimed_by_id=user("sekretaer").id if n % 5 == 4 else None))
    db.session.commit()
    before = None
    for _ in range(10):
        orm = postreg.inbox(user("sekretaer"), which, before_id=before, limit=7)
        rows = postreg.inbox_rows(user("sekretaer"), which, before_id=before, limit=7)
        assert [r.id for r in rows["items"]] == [i.id for i in orm["items"]]
        assert [r.claimed_by for r in rows["items"]] == [
            i.claimed_by.full_name if i.claimed_by else None for i in orm["items"]]
        assert rows["next_before"] == orm["next_before"]
        before = rows["next_before"]
        if before is None:
            break
    else:
        pytest.fail("the pages did not end")


def test_the_inbox_page_and_its_refresh_show_the_same_rows_and_cost_no_query_each(app, login_as):
    with app.app_context():
        for n in range(3):
            db.session.add(InboxItem(source=InboxSource.SCAN, status=InboxStatus.IN_PROGRESS, filename=f"a-{n}.pdf",
                                     claimed_by_id=user("sekretaer").id, meta={"title": f"Brev {n}"}))
        db.session.commit()
    web = login_as("sekretaer")
    web.get("/post-registration/")  # the first request fills the process's caches
    with app.app_context(), counted() as few:
        assert web.get("/post-registration/").status_code == 200
    with app.app_context():
        for n in range(20):
            db.session.add(InboxItem(source=InboxSource.SCAN, status=InboxStatus.CHECKED, filename=f"b-{n}.pdf",
                                     claimed_by_id=user(("sekretaer", "konsulent")[n % 2]).id,
                                     meta={"sender_name": f"Avsendar {n}"}))
        db.session.commit()
    with app.app_context(), counted() as many:
        page = web.get("/post-registration/").get_data(as_text=True)
    assert many.n == few.n, (few.sql, many.sql)
    partial = web.get("/post-registration/", headers={"HX-Request": "true", "HX-Target": "inbox-rows"})
    assert _tbodies(partial.get_data(as_text=True)) == _tbodies(page)
    with app.app_context(), app.test_request_context():
        for item in db.session.scalars(select(InboxItem)):
            assert f'href="{url_for("postreg.item", item_id=item.id)}"' in page
    assert "Avsendar 19" in page and "Brev 2" in page


# The inbox row as it was written from the ORM item (the title and sender from its meta, the claimer through
# the relationship, the link by url_for): the rows of inbox_rows must give these bytes.
_ORM_INBOX_ROWS = """{% for item in items %}{% set meta = item.meta or {} %}{% set status = item.status.value %}
  <tr class="inbox-{{ status }}" data-item="{{ item.id }}">
    <td><time>{{ item.arrived_at | oslo }}</time></td>
    <td>{{ inbox_source_labels[item.source.value] }}</td>
    <td><a href="{{ url_for('postreg.item', item_id=item.id) }}">{{ meta.get('title') or item.filename }}</a>
      {% if meta.get('sender_name') %}<br><small class="muted">{{ meta.sender_name }}</small>{% endif %}</td>
    <td>{{ item.page_count if item.page_count is not none else '–' }}</td>
    {% set skipped = status == 'system_rejected' and item.reject_code in skip_reasons %}
    <td><span class="badge inbox-{{ status }}{{ ' skipped' if skipped }}">\
{{ _("Skipped") if skipped else inbox_status_labels[status] }}</span>
      {% if status in ('in_progress', 'checked') and item.claimed_by is not none %}\
<small class="muted">{{ item.claimed_by.full_name }}</small>{% endif %}
      {% if skipped %}<br><small class="error">{{ skip_reasons[item.reject_code] }}</small>
      {% elif status == 'system_rejected' %}<br><small class="error">{{ item.reject_reason }}</small>{% endif %}
    </td>
  </tr>{% endfor %}"""


def test_the_inbox_rows_write_what_the_orm_items_wrote(app, login_as):
    from ppt_web.postreg import sync_intake

    with app.app_context():
        start = utcnow() - timedelta(days=3)
        kinds = [
            dict(status=InboxStatus.NEW, meta={"title": "Søknad <PPT> & vedlegg", "sender_name": "Skule A/S"},
                 page_count=3),
            dict(status=InboxStatus.NEW, meta={"title": "", "sender_name": ""}, page_count=None),
            dict(status=InboxStatus.NEW, meta=None, page_count=0),
            dict(status=InboxStatus.IN_PROGRESS, meta={"sender_name": "Foreldre"}, claimed_by_id=user("sekretaer").id),
            dict(status=InboxStatus.CHECKED, meta={}, claimed_by_id=user("konsulent").id),
            dict(status=InboxStatus.NEW, meta={}, claimed_by_id=user("konsulent").id),  # a claimer not shown
            dict(status=InboxStatus.SYSTEM_REJECTED, reject_code="encrypted", reject_reason="Kryptert <pdf>"),
            dict(status=InboxStatus.SYSTEM_REJECTED, reject_code=sync_intake.SKIP_TEMP, reject_reason="x",
                 source=InboxSource.SCAN),
            dict(status=InboxStatus.REJECTED, reject_reason="Feil", source=InboxSource.UPLOAD),
            dict(status=InboxStatus.TRANSFERRED, source=InboxSource.SVARINN, meta={"title": "Digital post"}),
        ]
        for n, kind in enumerate(kinds):
            db.session.add(InboxItem(**{"source": InboxSource.SVARINN, "filename": f"fil-{n}.pdf",
                                        "arrived_at": start + timedelta(hours=n // 2), **kind}))
        db.session.commit()
        orm = postreg.inbox(user("sekretaer"), "all")["items"]
        assert len(orm) == len(kinds)
        with app.test_request_context():
            expected = render_template_string(_ORM_INBOX_ROWS, items=orm, skip_reasons=sync_intake.SKIP_REASONS)
    web = login_as("sekretaer")
    for headers in ({}, {"HX-Request": "true", "HX-Target": "inbox-rows"}):
        page = web.get("/post-registration/?which=all", headers=headers).get_data(as_text=True)
        assert _tbodies(page) == [_norm(expected)]
        assert "Søknad &lt;PPT&gt; &amp; vedlegg" in page and "Skule A/S" in page and "Kryptert &lt;pdf&gt;" in page


# The client folder's head, facts and case rows as they were written from the ORM client and cases (the school
# and handler through the relationships, the links by url_for, the status by case_status): the folder's rows
# must give these bytes.
_ORM_FOLDER = """{% from "_macros/forms.html" import case_status with context %}
<h1>{{ client.name }} <small class="muted">{{ _("Client folder") }}</small></h1>
<dl class="facts card">
  <dt>{{ _("National identity number") }}</dt>
  <dd><span class="nid" id="national-id">{{ client.masked_id }}</span>
    <button type="button" class="small" hx-post="{{ url_for('clients.reveal_national_id', client_id=client.id) }}"
            hx-target="#national-id" hx-swap="outerHTML">{{ _("Show") }}</button></dd>
  <dt>{{ _("Born") }}</dt><dd>{{ client.birth_date.strftime('%d.%m.%Y') }}</dd>
  <dt>{{ _("Address") }}</dt><dd>{{ client.address }} {{ client.postal_code }} {{ client.city }}</dd>
  <dt>{{ _("School or kindergarten") }}</dt><dd>{{ client.organisation.name if client.organisation else '—' }}</dd>
  <dt>{{ _("Responsible case handler") }}</dt><dd>{{ client.handler.full_name if client.handler else '—' }}</dd>
</dl>
<table><tbody>
  {% for case in cases %}
  <tr><td><a href="{{ url_for('cases.case', case_id=case.id) }}">{{ case.number }}</a></td><td>{{ case.title }}</td>
    <td>{{ category_labels[case.category.value] if case.category else kind_labels[case.kind.value] }}</td>
    <td>{{ case.handler.full_name }}</td><td>{{ case_status(case) }}</td></tr>
  {% else %}<tr><td colspan="5" class="muted">{{ _("No cases yet.") }}</td></tr>{% endfor %}
</tbody></table>"""


def _folder_head_facts_cases(html: str) -> list[str]:
    head = re.search(r"<h1>.*?</h1>", html, re.S)
    facts = re.search(r'<dl class="facts card">.*?</dl>', html, re.S)
    assert head and facts
    return [_norm(head.group(0)), _norm(facts.group(0)), _tbodies(html)[0]]


def test_the_folder_facts_and_case_rows_write_what_the_orm_objects_wrote(app, login_as):
    from ppt_web.clients import organisations
    from ppt_web.models import Case, CaseStatus, Client

    with app.app_context():
        school = organisations.register_organisation(user("konsulent"), name="Dimna skule <3> & SFO", org_number="",
                                                     kind="school")
        schooled = builders.client("radgjevar1", organisation_id=school.id, address="Storgata 1 <b>",
                                   postal_code="6010", city="Ålesund")
        plain = builders.client("radgjevar1")  # no school, no address, no case
        kinds = [builders.case(client_obj=schooled, title="Vurdering <spesialundervisning> & \"tiltak\""),
                 builders.case(client_obj=schooled, category="referral", title="Tilvising"),
                 builders.case(client_obj=schooled, title="Avslutta sak")]
        kinds[1].category = None  # an old case without a category: its kind's label
        kinds[2].status = CaseStatus.CLOSED
        db.session.commit()
        ids = [schooled.id, plain.id]
    web = login_as("radgjevar1")
    for client_id in ids:
        html = web.get(f"/clients/{client_id}").get_data(as_text=True)
        with app.app_context(), app.test_request_context():
            client_obj = db.session.get(Client, client_id)
            orm_cases = list(db.session.scalars(select(Case).where(Case.client_id == client_id)
                                                .order_by(Case.opened_on.desc(), Case.id.desc())))
            expected = render_template_string(_ORM_FOLDER, client=client_obj, cases=orm_cases)
        assert _folder_head_facts_cases(html) == _folder_head_facts_cases(expected)
        assert ("Dimna skule &lt;3&gt; &amp; SFO" in html) == (client_id == ids[0])


def test_the_folder_is_four_statements_and_reads_no_one_again_after_its_log_row(app, login_as):
    """The client's facts, the log row, the cases and their posts: the log row's commit does not expire the
    signed-in user, whom the page's header would otherwise read again."""
    with app.app_context():
        case_obj = builders.case("radgjevar1")
        builders.post(case_obj, with_pdf=False, correspondent="Kari")
        client_id = case_obj.client_id
    web = login_as("radgjevar1")
    web.get(f"/clients/{client_id}")  # the first request fills the process's caches
    with app.app_context(), counted() as seen:
        assert web.get(f"/clients/{client_id}").status_code == 200
    assert seen.n == 4, seen.sql
    assert [s.split()[0] for s in seen.sql] == ["SELECT", "INSERT", "SELECT", "SELECT"], seen.sql
