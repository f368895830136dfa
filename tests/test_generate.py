"""generate-data: realistic data through the services, the same for the same seed."""
from __future__ import annotations

from sqlalchemy import select

from ppt_web import create_app
from ppt_web.extensions import db
from ppt_web.generate import generate
from ppt_web.models import ActivityLog, Case, CaseStatus, Client, JournalPost, Organisation, PostStatus

from .conftest import _config


def fingerprint() -> list:
    """Everything a user would see of the data, without ids that depend on run order."""
    return [
        sorted((c.national_id, c.name, c.handler.username, c.organisation.name) for c in db.session.scalars(select(Client))),
        sorted((c.client.national_id, c.title, c.category.value, c.status.value, c.opened_on.isoformat(),
                tuple(sorted(u.username for u in c.co_handlers))) for c in db.session.scalars(select(Case))),
        sorted((p.case.client.national_id, p.case.title, p.seq, p.post_type.value, p.title, p.status.value,
                p.document_date.isoformat(), p.write_off_method or "", tuple(c.name for c in p.correspondents),
                tuple(d.sha256 for d in p.documents)) for p in db.session.scalars(select(JournalPost))),
        sorted((o.name, o.org_number) for o in db.session.scalars(select(Organisation))),
    ]


def test_same_seed_same_data_and_through_the_services(app, tmp_path, new_database, redis_url):
    with app.app_context():
        stats = generate(12, seed=5, echo=lambda *a: None)
        first = fingerprint()
        assert stats["clients"] == 12 and stats["posts"] >= 12
        # Made the way real work is made: every registration and finalization is in the activity log.
        finalized = db.session.scalar(select(db.func.count()).select_from(JournalPost)
                                      .where(JournalPost.status == PostStatus.FINALIZED))
        logged = db.session.scalar(select(db.func.count()).select_from(ActivityLog)
                                   .where(ActivityLog.action == "post_finalized"))
        assert finalized == logged > 0
        handlers = {c.handler.username for c in db.session.scalars(select(Client))}
        assert handlers == {"radgjevar1", "radgjevar2"}  # spread over the demo handlers
        kinds = {p.post_type.value for p in db.session.scalars(select(JournalPost))}
        assert kinds == {"I", "U", "N", "X"}
        # Cases are closed as the routine closes them: nothing incoming or to follow up is left open in one.
        closed = list(db.session.scalars(select(Case).where(Case.status == CaseStatus.CLOSED)))
        assert stats["closed"] == len(closed) > 0
        assert not [p.number for c in closed for p in c.posts
                    if p.post_type.value in "IN" and p.written_off_at is None]
    other = create_app(_config(tmp_path / "second", new_database(), redis_url))
    with other.app_context():
        generate(12, seed=5, echo=lambda *a: None)
        assert fingerprint() == first
        db.session.remove()
        db.engine.dispose()
    different = create_app(_config(tmp_path / "third", new_database(), redis_url))
    with different.app_context():
        generate(12, seed=6, echo=lambda *a: None)
        assert fingerprint() != first
        db.session.remove()
        db.engine.dispose()


def test_command_prints_what_it_made(app):
    result = app.test_cli_runner().invoke(args=["generate-data", "--clients", "3", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "clients: 3" in result.output
