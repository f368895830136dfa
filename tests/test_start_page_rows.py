"""The start page's secretary and consultant lists and its roles line are read as plain rows (main/start.py);
what they write must be what the ORM objects wrote: the same HTML, row for row."""
from __future__ import annotations

import re

from flask import render_template_string
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Dispatch, InboxItem, PaperOriginal, Role

from .conftest import user
from .test_start_pages import build_world

# The lists as the templates wrote them over ORM objects before they were read as rows.
_ORM_LISTS = """{% macro job_line(job, status) -%}
  <li data-job="{{ job.id }}"><a href="{{ url_for('archive.log', status=status) }}#job-{{ job.id }}">{{ operation_labels.get(job.event, job.event) }} · {{ job.post.number if job.post else job.case.number }}</a>
    <span class="muted">{{ job.client.name ~ ' · ' if job.client and current_user.can('search_all') else '' }}{{ job.created_at | oslo }} · {{ archive_message(job) | truncate(100) }}</span></li>
{%- endmacro %}
<ul class="list" id="failed-jobs">{% for job in failed %}{{ job_line(job, 'failed') }}{% endfor %}</ul>
<ul class="list" id="stuck-jobs">{% for job in stuck %}{{ job_line(job, job.job_status) }}{% endfor %}</ul>
<ul class="list" id="corrections">{% for job in corrections %}{% set fix = correction_url(job) %}
  <li data-job="{{ job.id }}"><a href="{{ fix or (url_for('archive.log', status='failed') ~ '#job-' ~ job.id) }}">{{ job.post.number if job.post else job.case.number }}</a>
    <span class="muted">{{ archive_message(job) | truncate(140) }}</span></li>{% endfor %}</ul>
<ul class="list" id="in-progress">{% for item in in_progress %}
  <li data-item="{{ item.id }}"><a href="{{ url_for('postreg.item', item_id=item.id) }}">{{ item.filename }}</a>
    <span class="muted">{{ item.claimed_by.full_name if item.claimed_by else '' }}{% if item.claimed_at %}, {{ item.claimed_at | oslo }}{% endif %}</span></li>{% endfor %}</ul>
<ul class="list" id="paper-due">{% for original in paper %}
  <li data-original="{{ original.id }}"><a href="{{ url_for('postreg.paper_originals') }}">{{ original.item.filename if original.item else original.id }}</a>
    <span class="muted">{{ _("Destroy by") }} {{ original.destroy_by | oslo_date }} · {{ original.storage_place }}</span></li>{% endfor %}</ul>
<ul class="list" id="failed-dispatches">{% for d in dispatches %}
  <li data-dispatch="{{ d.id }}"><a href="{{ url_for('cases.post', post_id=d.post_id) }}">{{ d.recipient_name }}</a>
    <span class="muted">{{ dispatch_status_labels.get(d.status, d.status) }} · {{ d.updated_at | oslo }} · {{ d.message | truncate(100) }}</span></li>{% endfor %}</ul>
<p>{{ current_user.effective_roles() | map(attribute='name') | join(', ') }}</p>"""

_LISTS = ("failed-jobs", "stuck-jobs", "corrections", "in-progress", "paper-due", "failed-dispatches")
_ROW_ATTRIBUTE = {"in-progress": "item", "paper-due": "original", "failed-dispatches": "dispatch"}


def _list(html: str, list_id: str) -> str:
    found = re.search(rf'<ul class="list" id="{list_id}">.*?</ul>', html, re.S)
    assert found, list_id
    return found.group(0)


def _ids(html: str, attribute: str) -> list[int]:
    return [int(n) for n in re.findall(rf'data-{attribute}="(\d+)"', html)]


def _roles_line(html: str) -> str:
    """The roles named under the start page's heading ("... the roles: A, B.")."""
    found = re.search(r'</h1>\n<p class="muted">[^<]*: ([^<]*)\.</p>', html)
    assert found
    return found.group(1)


def test_the_secretary_and_consultant_lists_write_what_the_orm_objects_wrote(app, client, login_as):
    with app.app_context():
        w = build_world()
        # More kinds of job in trouble: one of a journal post (its number is the post's), one without a client,
        # and a client whose name needs escaping.
        post_job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id.is_not(None),
                                                              ArchiveJob.id > w.stuck_job.id).order_by(ArchiveJob.id))
        post_job.archive_status, post_job.message = "failed", "Feil <i> & meir"
        w.failed_job.client.given_name = "Ål <b>"
        no_client = db.session.scalar(select(ArchiveJob).where(ArchiveJob.id > post_job.id).order_by(ArchiveJob.id))
        no_client.archive_status, no_client.client_id = "failed", None
        db.session.get(Dispatch, w.dispatch.id).message = "Mottakar <ukjend> & " + "lang " * 30
        db.session.commit()
        extra = [post_job.id, no_client.id]
    login_as("konsulent")
    page = client.get("/").get_data(as_text=True)
    assert "Ål &lt;b&gt;" in page and "Feil &lt;i&gt; &amp; meir" in page
    with app.app_context():
        shown = {name: _ids(_list(page, name), _ROW_ATTRIBUTE.get(name, "job")) for name in _LISTS}
        assert set(extra) <= set(shown["failed-jobs"])
        assert all(shown.values())
        jobs = {name: [db.session.get(ArchiveJob, n) for n in shown[name]] for name in _LISTS[:3]}
        with app.test_request_context():
            expected = render_template_string(
                _ORM_LISTS, current_user=user("konsulent"), failed=jobs["failed-jobs"], stuck=jobs["stuck-jobs"],
                corrections=jobs["corrections"], in_progress=[db.session.get(InboxItem, n) for n in shown["in-progress"]],
                paper=[db.session.get(PaperOriginal, n) for n in shown["paper-due"]],
                dispatches=[db.session.get(Dispatch, n) for n in shown["failed-dispatches"]])
    for name in _LISTS:
        assert _list(page, name) == _list(expected, name)
    assert _roles_line(page) == re.search(r"<p>(.*)</p>$", expected).group(1)


def test_the_roles_line_names_each_active_role_once_own_and_through_teams(app, client, login_as):
    from ppt_web.models import AccessGroup

    with app.app_context():
        team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team skule"))
        own = user("radgjevar2").roles[0]
        team.roles.append(own)  # held twice: named once
        team.roles.append(Role(code="avslutta", name="Avslutta rolle", active=False, position=1))
        team.roles.append(Role(code="forst", name="Fyrste rolle", active=True, position=-1))
        db.session.commit()
        names = [r.name for r in user("radgjevar2").effective_roles()]
    assert names[0] == "Fyrste rolle" and own.name in names and "Avslutta rolle" not in names
    login_as("radgjevar2")
    html = client.get("/").get_data(as_text=True)
    assert _roles_line(html) == ", ".join(names)
