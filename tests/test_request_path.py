"""The request path: who is signed in and the header's counts are kept per process, never past a change.

Another process (a second web worker, the RQ worker, the CLI) is a second app on the same instance folder
and database: its caches are its own, and what it commits reaches this one through the change stamps.
"""
from __future__ import annotations

import re
import time
from types import SimpleNamespace

import itsdangerous.timed
import pytest
from flask_babel import force_locale
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, event, select, text, update

from ppt_web import create_app, i18n, runtime_settings
from ppt_web.admin import service as admin
from ppt_web.auth import cache
from ppt_web.extensions import db
from ppt_web.models import Notification, Role, Setting, User

from .conftest import role, sign_in, user

# A read of the users' tables themselves (a page's rows that join a user for a name do so under an alias).
USERS_TABLES = re.compile(r'\b(FROM|JOIN)\s+"?(user|user_session|role|user_role|role_permission|permission|'
                          r'access_group|group_member|group_role)"?(?!\s+AS\b)(\s|,|$)', re.IGNORECASE)


@pytest.fixture
def other_process(app):
    """A second app on the same instance folder and database, as another web worker would be."""
    keys = ("TESTING", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "WTF_CSRF_ENABLED", "PPT_REDIS_URL",
            "PROPAGATE_EXCEPTIONS", "PPT_LOGIN_LOCKOUT_SECONDS")
    other = create_app({"INSTANCE_PATH": app.instance_path, **{k: app.config[k] for k in keys}})
    assert other.extensions["ppt_caches"] is not app.extensions["ppt_caches"]
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def statements(app):
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _in(other, fn):
    with other.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


def test_a_signed_in_page_reads_no_users_table(client, login_as, statements):
    login_as("leiar")
    assert client.get("/approvals").status_code == 200  # the first request reads the session and the user
    statements.clear()
    response = client.get("/approvals")
    assert response.status_code == 200
    assert [s for s in statements if USERS_TABLES.search(s)] == []
    # ... and the header's counts, read by the first request, are not read again either
    assert [s for s in statements if "notification" in s] == []


def test_the_header_shows_the_same_user_and_roles_from_the_kept_session(client, login_as, app):
    login_as("sekretaer")
    first = client.get("/post-registration/").get_data(as_text=True)
    second = client.get("/post-registration/").get_data(as_text=True)
    with app.app_context():
        u = user("sekretaer")
        names = ", ".join(r.name for r in u.roles)
        full_name = u.full_name
    for page in (first, second):
        assert f"<strong>{full_name}</strong>" in page
        assert f"<small>{names}</small>" in page


def test_deactivated_in_another_process_is_signed_out_at_the_next_request(client, login_as, app, other_process):
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200  # kept in this process now

    def deactivate():
        target = user("sekretaer")
        admin.set_user_active(user("admin"), target.id, False)

    _in(other_process, deactivate)
    response = client.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_change_made_past_the_app_is_seen_when_the_stamp_moves(client, login_as, app):
    """A process that changed the users' tables touches the stamp when it commits: the same, by hand."""
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "sekretaer").values(active=False))
    engine.dispose()
    cache.Stamp(app.extensions["ppt_caches"].auth.path).touch()
    response = client.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_stamp_that_cannot_be_written_fails_no_saved_change(client, login_as, app, monkeypatch, caplog):
    """A full disk or a stamp file of another owner: the change is saved and answered as saved, this process
    no longer serves the deactivated user, and the log says that other processes may lag."""
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200  # kept in this process now

    def no_space(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.Stamp, "touch", no_space)
    with app.test_request_context():
        admin.set_user_active(user("admin"), user("sekretaer").id, False)  # raised OSError after the commit
        db.session.rollback()  # the session is usable (it was left "committed")
        assert user("sekretaer").active is False
    response = client.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert any(r.levelname == "ERROR" and "could not mark a change" in r.getMessage() for r in caplog.records)


def test_a_kept_session_lives_at_most_its_seconds(client, login_as, app):
    """A change no app made (psql) and no stamp says: seen once the kept entry is too old."""
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "sekretaer").values(active=False))
    engine.dispose()
    assert client.get("/post-registration/").status_code == 200  # within its life: still the kept user
    app.extensions["ppt_caches"].user_seconds = 0
    response = client.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_role_taken_in_another_process_takes_effect_at_the_next_request(client, login_as, other_process):
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200

    def take():
        target = user("sekretaer")
        for r in list(target.roles):
            admin.remove_role(user("admin"), target.id, r.id)

    _in(other_process, take)
    assert client.get("/post-registration/").status_code == 403


def test_a_right_taken_from_a_role_takes_effect_at_the_next_request(client, login_as, other_process):
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200

    def take():
        merkantil = user("sekretaer").roles[0]
        admin.set_role_permission(user("superbrukar"), merkantil.id, "distribute_mail", False)

    _in(other_process, take)
    assert client.get("/post-registration/").status_code == 403


def test_a_role_given_here_shows_at_once(client, login_as, app):
    login_as("radgjevar1")
    assert client.get("/post-registration/").status_code == 403
    with app.app_context():
        admin.add_role(user("admin"), user("radgjevar1").id, role("merkantil").id)
        names = ", ".join(r.name for r in user("radgjevar1").roles)
        db.session.remove()
    response = client.get("/post-registration/")
    assert response.status_code == 200
    assert f"<small>{names}</small>" in response.get_data(as_text=True)  # the header names the new role too


def test_sign_out_ends_a_copied_cookie_in_every_process(client, login_as, app, other_process):
    login_as("sekretaer")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    elsewhere = other_process.test_client()  # the same cookie, served by another worker
    elsewhere.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
    assert elsewhere.get("/post-registration/").status_code == 200  # kept there now
    assert client.post("/logout").status_code == 302
    response = elsewhere.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_new_password_ends_the_other_sessions_in_every_process(client, login_as, app, other_process):
    login_as("sekretaer")
    elsewhere = other_process.test_client()
    sign_in(elsewhere, "sekretaer")
    assert elsewhere.get("/post-registration/").status_code == 200
    from ppt_web.cli import DEMO_PASSWORD

    response = client.post("/password", data={"current_password": DEMO_PASSWORD,
                                              "new_password": "a-new-and-long-password-1",
                                              "repeat": "a-new-and-long-password-1"})
    assert response.status_code == 302
    assert client.get("/post-registration/").status_code == 200  # this session goes on
    response = elsewhere.get("/post-registration/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_change_required_elsewhere_applies_at_the_next_request(client, login_as, other_process):
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200

    def require_change():
        db.session.execute(update(User).where(User.username == "sekretaer").values(must_change_password=True))
        db.session.commit()

    _in(other_process, require_change)
    response = client.get("/post-registration/")
    assert response.status_code == 302 and "/password" in response.headers["Location"]


def test_own_language_choice_shows_at_the_next_request(client, login_as):
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200
    assert client.post("/profile", data={"locale": "en"}).status_code == 302
    assert 'lang="en"' in client.get("/post-registration/").get_data(as_text=True)


def _bell(page: str) -> str:
    found = re.search(r'id="notification-count">(\d+)<', page)
    assert found, "no notification count in the header"
    return found.group(1)


def test_header_counts_follow_the_users_own_action_and_other_processes(client, login_as, app, other_process):
    login_as("sekretaer")
    assert _bell(client.get("/post-registration/").get_data(as_text=True)) == "0"

    def tell():
        db.session.add(Notification(user_id=user("sekretaer").id, text="x", link=""))
        db.session.commit()

    _in(other_process, tell)  # another process (the worker) notifies: the stamp moves
    assert _bell(client.get("/post-registration/").get_data(as_text=True)) == "1"
    assert client.post("/notifications/read").status_code in (200, 302, 204)
    assert _bell(client.get("/post-registration/").get_data(as_text=True)) == "0"


def test_header_counts_are_kept_per_user(client, login_as, app):
    login_as("sekretaer")
    other = app.test_client()
    sign_in(other, "leiar")
    with app.app_context():
        db.session.add(Notification(user_id=user("leiar").id, text="x", link=""))
        db.session.commit()
    assert _bell(client.get("/post-registration/").get_data(as_text=True)) == "0"
    assert _bell(other.get("/approvals").get_data(as_text=True)) == "1"
    assert _bell(client.get("/post-registration/").get_data(as_text=True)) == "0"


def test_the_user_is_a_fresh_object_per_request(client, login_as, app):
    """A change a request makes to its user (not committed) does not reach the next request."""
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200
    kept = app.extensions["ppt_caches"]
    entry = next(iter(kept.sessions.values()))
    with app.test_request_context():
        first = cache.user_from(entry, db.session)
        first.full_name = "Someone Else"
        db.session.rollback()
        db.session.remove()
        second = cache.user_from(entry, db.session)
        assert second is not first and second.full_name != "Someone Else"
        db.session.remove()


def test_a_stamp_changes_with_every_touch(tmp_path):
    stamp = cache.Stamp(tmp_path / "stamps" / "auth")
    assert stamp.read() is None
    seen = set()
    for _ in range(cache.STAMP_LIMIT + 3):  # past the limit the file is replaced
        stamp.touch()
        now = stamp.read()
        assert now not in seen
        seen.add(now)


def test_kept_values_hold_no_password_hash(client, login_as, app):
    login_as("sekretaer")
    client.get("/post-registration/")
    entry = next(iter(app.extensions["ppt_caches"].sessions.values()))
    assert "password_hash" not in dict(entry.values)
    with app.app_context():
        assert db.session.scalar(select(Role.id).limit(1)) is not None
        assert db.session.execute(text("SELECT 1")).scalar() == 1


# -- the layout: the header's HTML and the CSRF token kept per process ---------------------------------------

def _header(page: str) -> str:
    found = re.search(r'<header class="top">.*?</header>', page, re.DOTALL)
    assert found, "no header"
    return found.group()


def test_the_header_is_rendered_once_while_nothing_it_shows_changes(client, login_as, app, monkeypatch):
    login_as("leiar")
    template = app.jinja_env.get_template("_header.html")
    rendered = []
    real = template.render
    monkeypatch.setattr(template, "render", lambda *a, **k: rendered.append(1) or real(*a, **k))
    pages = [client.get("/approvals").get_data(as_text=True) for _ in range(3)]
    assert len(rendered) == 1  # the first page; the next two show the kept HTML
    assert _header(pages[0]) == _header(pages[1]) == _header(pages[2])
    app.extensions["ppt_caches"].layout_on = False  # the same header when made again
    # Made again in a later second (as may happen at any time): the CSRF token is signed again, another
    # string for the same session token, so the headers are compared with the token each signs.
    later = time.time() + 5
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: later))
    again = _header(client.get("/approvals").get_data(as_text=True))
    assert _csrf_field(again) != _csrf_field(_header(pages[0]))
    assert _signed_token_as_raw(app, again) == _signed_token_as_raw(app, _header(pages[0]))


_CSRF_FIELD = re.compile(r'(name="csrf_token" value=")([^"]+)(")')


def _csrf_field(header: str) -> str:
    return _CSRF_FIELD.search(header).group(2)


def _signed_token_as_raw(app, header: str) -> str:
    """The header with its signed CSRF token written as the session's token it signs."""
    signer = URLSafeTimedSerializer(app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key, salt="wtf-csrf-token")
    return _CSRF_FIELD.sub(lambda m: m.group(1) + signer.loads(m.group(2)) + m.group(3), header)


def test_a_new_name_shows_in_the_header_at_the_next_request(client, login_as, other_process):
    login_as("sekretaer")
    assert "<strong>Ny Namnesen</strong>" not in client.get("/post-registration/").get_data(as_text=True)

    def rename():
        db.session.execute(update(User).where(User.username == "sekretaer").values(full_name="Ny Namnesen"))
        db.session.commit()

    _in(other_process, rename)
    assert "<strong>Ny Namnesen</strong>" in client.get("/post-registration/").get_data(as_text=True)


def test_the_header_follows_the_language_at_the_next_request(client, login_as):
    login_as("sekretaer")
    before = _header(client.get("/post-registration/").get_data(as_text=True))
    assert client.post("/profile", data={"locale": "en"}).status_code == 302
    after = _header(client.get("/post-registration/").get_data(as_text=True))
    assert ">Sign out<" in after and ">Sign out<" not in before


def test_a_menu_entry_follows_a_right_given_at_the_next_request(client, login_as, other_process):
    login_as("radgjevar1")
    assert 'id="menu-held-back"' not in client.get("/").get_data(as_text=True)

    def give():
        admin.add_role(user("superbrukar"), user("radgjevar1").id, role("leiar").id)

    _in(other_process, give)
    assert 'id="menu-held-back"' in client.get("/").get_data(as_text=True)


def _csrf(page: str) -> str:
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_sessions_csrf_token_is_kept_and_still_checked(client, app, monkeypatch):
    """The signed token is the same on every page of a session (signed once, not again each second), is
    accepted, is not another session's, and ends with its session."""
    import itsdangerous.timed

    def signed_in(browser):
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                          browser.get("/login").get_data(as_text=True)).group(1)
        assert browser.post("/login", data={"username": "sekretaer", "password": "demo-passord",
                                            "csrf_token": token}).status_code == 302
        return _csrf(browser.get("/post-registration/").get_data(as_text=True))

    first = signed_in(client)
    later = itsdangerous.timed.time.time() + 120
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)  # a page two minutes on
    page = client.get("/profile").get_data(as_text=True)
    assert _csrf(page) == first
    assert re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1) == first  # the form's
    other = app.test_client()
    second = signed_in(other)  # the same user in another browser: a token of its own
    assert second != first
    assert client.post("/logout", headers={"X-CSRFToken": second}).status_code == 400  # not this session's
    assert client.post("/logout", headers={"X-CSRFToken": first}).status_code == 302
    assert other.post("/notifications/read", headers={"X-CSRFToken": first}).status_code == 400


def test_a_runtime_setting_is_read_once_while_nothing_changes_it(app, statements):
    """A page that reads a setting (the start page reads two) asks the database once per process, not per read."""
    with app.test_request_context():
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
        statements.clear()
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
        assert runtime_settings.value("alerts.approval_warn_days") == app.config["PPT_APPROVAL_WARN_DAYS"]
        assert [s for s in statements if "setting" in s] == []
        db.session.remove()


def test_a_setting_saved_in_another_process_is_used_at_the_next_read(app, other_process):
    with app.test_request_context():
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"  # kept in this process now
        db.session.remove()
    _in(other_process, lambda: runtime_settings.change(user("leiar"), "paper.storage_place", "Kjellaren"))
    with app.test_request_context():
        assert runtime_settings.value("paper.storage_place") == "Kjellaren"
        db.session.remove()
    _in(other_process, lambda: runtime_settings.reset(user("leiar"), "paper.storage_place"))
    with app.test_request_context():
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
        db.session.remove()


def test_a_setting_changed_past_the_app_is_used_once_the_kept_values_are_too_old(app):
    with app.test_request_context():
        assert runtime_settings.value("paper.keep_months") == app.config["PPT_PAPER_KEEP_MONTHS"]
        db.session.remove()
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.begin() as conn:
        conn.execute(Setting.__table__.insert().values(key="paper.keep_months", value=99))
    engine.dispose()
    app.extensions["ppt_caches"].count_seconds = 0
    with app.test_request_context():
        time.sleep(0.01)
        assert runtime_settings.value("paper.keep_months") == 99
        db.session.remove()


def test_a_setting_this_transaction_changed_is_what_it_reads(app):
    """Not yet committed, the change is this session's alone: its own reads see it, the kept values do not."""
    with app.test_request_context():
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
        db.session.add(Setting(key="paper.storage_place", value="Loftet"))
        assert runtime_settings.value("paper.storage_place") == "Loftet"
        db.session.flush()
        assert runtime_settings.value("paper.storage_place") == "Loftet"
        db.session.rollback()
        assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
        db.session.remove()


def test_the_kept_user_is_saved_when_changed_and_reads_its_password_hash(client, login_as, app):
    """The request's user is a full object of its session: a change to it is saved, the password hash (not
    kept) is read when asked for, and no later request sees what an earlier one changed without saving."""
    login_as("sekretaer")
    assert client.get("/post-registration/").status_code == 200
    entry = next(iter(app.extensions["ppt_caches"].sessions.values()))
    with app.test_request_context():
        stored = db.session.scalar(select(User.password_hash).where(User.username == "sekretaer"))
        db.session.remove()
        first = cache.user_from(entry, db.session)
        assert first.password_hash == stored and stored
        assert [r.code for r in first.roles] == [r.code for r in user("sekretaer").roles]
        first.full_name = "Sekretær Nynamn"
        db.session.commit()
        db.session.remove()
        assert db.session.scalar(select(User.full_name).where(User.username == "sekretaer")) == "Sekretær Nynamn"
        db.session.remove()
        again = cache.user_from(entry, db.session)  # the entry still holds the values it was read with
        assert again is not first and again.full_name != "Sekretær Nynamn"
        db.session.remove()


def test_the_catalog_is_found_once_per_language_and_process(client, login_as, app, monkeypatch):
    """A page no longer looks its language's catalog up in Flask-Babel; force_locale() still switches it."""
    login_as("leiar")
    assert client.get("/approvals").status_code == 200
    looked_up = []
    real = i18n.get_translations
    monkeypatch.setattr(i18n, "get_translations", lambda: looked_up.append(1) or real())
    assert client.get("/approvals").status_code == 200
    assert looked_up == []
    with app.test_request_context():
        nynorsk = i18n.catalog()
        with force_locale("nb"):
            bokmal = i18n.catalog()
            assert bokmal is not nynorsk and bokmal.ugettext("Yes") == "Ja"
        assert i18n.catalog() is nynorsk
