"""The search lists rows shaped by Core queries (no ORM object per row, links built from a prefix): the
rows are byte for byte what the ORM objects gave through the shared row macros, for a user who sees
their own cases and one who sees all, and a search's statement count does not grow with its rows."""
from __future__ import annotations

import re
from datetime import timedelta

from flask import render_template_string
from sqlalchemy import event, select

from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import Case, Client, JournalPost

from . import builders

HX = {"HX-Request": "true"}

# The rows as the search wrote them from ORM objects, through _macros/forms.html.
ORM_ROWS = {
    "clients": "{% for c in rows %}<tr><td><a href=\"{{ url_for('clients.folder', client_id=c.id) }}\">{{ c.name }}"
               "</a></td><td>{{ c.masked_id }}</td><td>{{ c.handler.full_name if c.handler else '' }}</td></tr>"
               "{% endfor %}",
    "cases": '{% from "_macros/forms.html" import case_status with context %}'
             "{% for case in rows %}<tr><td><a href=\"{{ url_for('cases.case', case_id=case.id) }}\">{{ case.number }}"
             "</a></td><td>{{ case.title }}</td>\n    <td>{{ category_labels[case.category.value] if case.category "
             "else kind_labels[case.kind.value] }}</td><td>{{ case.handler.full_name }}</td><td>{{ case_status(case) }}"
             "</td></tr>{% endfor %}",
    "posts": '{% from "_macros/forms.html" import post_row with context %}'
             "{% for post in rows %}{{ post_row(post, show_case=True) }}{% endfor %}",
}


def _lists(html: str) -> list[str]:
    """The inside of each list's <tbody>, as sent, with the white space between two tags as one newline (the
    post rows come from the macro the client folder uses too, with its own indentation between rows)."""
    return [_between_tags(inside) for inside in re.findall(r"<tbody>\n  (.*?)\n  </tbody>", html, re.S)]


def _between_tags(html: str) -> str:
    return re.sub(r">\s*\n\s*<", ">\n<", html.strip())


def _orm_rows(app, kind: str, rows: list) -> str:
    with app.test_request_context():
        return render_template_string(ORM_ROWS[kind], rows=rows)


def _data(app):
    with app.app_context():
        client = builders.client("radgjevar1", given_name="Tove <Å>", family_name="Fartsprøve")
        other = builders.client("radgjevar2", given_name="Tor", family_name="Fartsprøve")
        mine = builders.case(client_obj=client, title="Fartsprøve vurdering")
        builders.case(client_obj=client, category="statement", title="Fartsprøve & uttale")
        builders.case("radgjevar2", client_obj=other, title="Fartsprøve, ikkje min")
        day = oslo_today() - timedelta(days=3)
        post = builders.post(mine, with_pdf=False, title="Fartsprøve notat", correspondent="Kari Føresett",
                             document_date=day)
        post.correspondents.append(type(post.correspondents[0])(role="recipient", name="Eva"))
        builders.post(mine, with_pdf=False, title="", document_date=day, registered_after_downtime=True)
        builders.post(mine, with_pdf=False, post_type="I", title="<b>Fartsprøve</b> & brev", document_date=day)
        db.session.commit()
        return day.strftime("%d.%m.%Y")


def _expected(app, who_sees_all: bool, text: str) -> dict[str, list]:
    """The ORM objects the search lists, in its orders (the first page)."""
    with app.app_context():
        cases = select(Case).order_by(Case.opened_on.desc(), Case.id.desc())
        posts = select(JournalPost).join(Case).order_by(JournalPost.document_date.desc().nulls_last(),
                                                        JournalPost.id.desc())
        clients = select(Client).order_by(Client.name_lower)
        if not who_sees_all:
            cases, posts = (q.where(Case.handler.has(username="radgjevar1")) for q in (cases, posts))
            clients = clients.where(Client.handler.has(username="radgjevar1"))
        found: dict[str, list] = {"clients": [], "cases": [], "posts": []}
        if text == "fartsprøve":
            found["clients"] = list(db.session.scalars(clients.where(Client.family_name == "Fartsprøve")))
            found["cases"] = list(db.session.scalars(cases.where(Case.title.startswith("Fartsprøve"))))
            found["posts"] = list(db.session.scalars(posts.where(JournalPost.title.contains("Fartsprøve"))))
        else:
            found["posts"] = list(db.session.scalars(posts))
        return {kind: _orm_rows(app, kind, rows) for kind, rows in found.items() if rows}


def test_search_rows_are_the_orm_rows_byte_for_byte(app, client, login_as):
    day = _data(app)
    for who, sees_all in (("radgjevar1", False), ("konsulent", True)):
        web = login_as(who)
        for text in ("fartsprøve", day):
            expected = _expected(app, sees_all, text)
            assert expected["posts"]
            for headers in (HX, {}):
                html = web.post("/search/", data={"q": text}, headers=headers).get_data(as_text=True)
                assert _lists(html) == [_between_tags(rows) for rows in expected.values()], (who, text)
        assert "Kari Føresett, Eva" in html and "&lt;b&gt;Fartsprøve&lt;/b&gt; &amp; brev" in html
        web.post("/logout")


def test_a_search_costs_no_statement_per_row(app, login_as):
    day = _data(app)
    web = login_as("konsulent")
    seen: list[str] = []

    def _seen(conn, cursor, statement, *args):
        seen.append(statement)

    def statements() -> int:
        seen.clear()
        assert web.post("/search/", data={"q": day}, headers=HX).status_code == 200
        return len([s for s in seen if "count(" not in s and "FROM setting" not in s])

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _seen)
        try:
            statements()  # the first request fills the process's caches
            few = statements()
            case = db.session.scalars(select(Case).where(Case.title == "Fartsprøve vurdering")).one()
            for n in range(20):
                builders.post(case, with_pdf=False, title=f"Notat {n}", correspondent=f"Per {n}",
                              document_date=oslo_today() - timedelta(days=3))
            statements()  # a change refills what the request path keeps (who is signed in, the header)
            many = statements()
        finally:
            event.remove(db.engine, "before_cursor_execute", _seen)
    assert many == few
