"""Sign-in, lockout, deactivation and server-side sign-out, through the test client."""
from __future__ import annotations

import time

import pytest

from ppt_web.admin import service as admin
from ppt_web.extensions import db

from .conftest import activity_rows, sign_in, user

pytestmark = pytest.mark.real_password_hashing  # the timing of the password check is tested here


def test_sign_in_succeeds_and_is_logged(client, app):
    """Right password: redirect to the start page, header shows the user and roles."""
    response = sign_in(client, "konsulent")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Kari Konsulent" in page and "Konsulent" in page
    with app.app_context():
        assert [r.actor_name for r in activity_rows("sign_in")] == ["konsulent"]


def test_wrong_password_is_refused_with_a_message(client, app):
    response = sign_in(client, "konsulent", "wrong-password")
    assert response.status_code == 401
    assert client.get("/").status_code == 302  # still signed out
    with app.app_context():
        rows = activity_rows("sign_in_failed")
        assert len(rows) == 1 and rows[0].outcome == "failed" and rows[0].actor_name == "konsulent"


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client):
    wrong = sign_in(client, "konsulent", "wrong-password")
    unknown = sign_in(client, "nobody-here", "wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    assert _alert(unknown) == _alert(wrong)


def _alert(response) -> str:
    html = response.get_data(as_text=True)
    start = html.index('class="alert error"')
    return html[start:html.index("</p>", start)]


def test_lockout_after_five_failures_whatever_the_address(client, app):
    """Five failures from five addresses lock the username; the right password is then refused too."""
    for i in range(5):
        assert sign_in(client, "radgjevar1", "nope", REMOTE_ADDR=f"10.0.0.{i}").status_code == 401
    refused = sign_in(client, "radgjevar1", REMOTE_ADDR="192.0.2.77")
    assert refused.status_code == 401
    assert _alert(refused) != _alert(sign_in(client, "radgjevar2", "nope"))  # says "locked", not "wrong"
    assert client.get("/").status_code == 302
    # Another user is not affected.
    assert sign_in(client, "radgjevar2").status_code == 302
    with app.app_context():
        assert len(activity_rows("sign_in_locked")) == 1


def test_lockout_also_for_unknown_usernames(client):
    """Locking does not reveal whether a username exists."""
    known = [sign_in(client, "leiar", "nope") for _ in range(6)]
    unknown = [sign_in(client, "ghost", "nope") for _ in range(6)]
    assert _alert(known[-1]) == _alert(unknown[-1])
    assert _alert(known[0]) == _alert(unknown[0])
    assert _alert(known[0]) != _alert(known[-1])


def test_lockout_runs_out(client, app):
    """After the lockout period the right password works again."""
    for _ in range(5):
        sign_in(client, "leiar", "nope")
    assert sign_in(client, "leiar").status_code == 401
    from ppt_web.clock import utcnow
    from ppt_web.models import LoginThrottle

    with app.app_context():
        row = db.session.get(LoginThrottle, "leiar")
        row.locked_until = utcnow()
        db.session.commit()
    assert sign_in(client, "leiar").status_code == 302


def test_unknown_and_known_usernames_take_about_as_long(client):
    """Both paths run one argon2 verification: timing does not tell which names exist."""

    def median(username):
        times = []
        for _ in range(4):  # under the lockout limit
            t0 = time.perf_counter()
            sign_in(client, username, "nope")
            times.append(time.perf_counter() - t0)
        return sorted(times)[1]

    # Both run one argon2 verification (tens of ms); skipping it would make unknown names ~10x faster.
    known, unknown = median("nestleiar"), median("no-such-user")
    assert 0.33 < known / unknown < 3.0, (known, unknown)


def test_deactivated_user_cannot_sign_in(client, app):
    with app.app_context():
        admin.set_user_active(user("konsulent"), user("sekretaer").id, False)
    response = sign_in(client, "sekretaer")
    assert response.status_code == 401
    assert "deaktivert" in response.get_data(as_text=True).lower() or "deactivated" in response.get_data(as_text=True).lower()


def test_deactivated_user_is_signed_out_on_the_next_request(app):
    victim, boss = app.test_client(), app.test_client()
    assert sign_in(victim, "radgjevar2").status_code == 302
    assert victim.get("/").status_code == 200
    assert sign_in(boss, "konsulent").status_code == 302
    with app.app_context():
        target = user("radgjevar2").id
    response = boss.post(f"/admin/users/{target}/active", data={"active": "0"})
    assert response.status_code == 302
    assert victim.get("/").status_code == 302  # back to the sign-in page


def test_old_cookie_is_worthless_after_sign_out(app):
    """Replay the session cookie of a signed-out browser: it signs nobody in."""
    browser = app.test_client()
    sign_in(browser, "leiar")
    cookie = browser.get_cookie("ppt_session").value
    assert browser.get("/").status_code == 200
    assert browser.post("/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("ppt_session", cookie)
    assert thief.get("/").status_code == 302
    with app.app_context():
        assert len(activity_rows("sign_out")) == 1


def test_open_redirect_is_refused(client):
    response = client.post("/login?next=//evil.example/x", data={"username": "leiar", "password": "demo-passord"})
    assert response.headers["Location"] == "/"


def test_empty_form_gets_a_message(client):
    response = client.post("/login", data={"username": "", "password": ""})
    assert response.status_code == 401
    assert 'class="alert error"' in response.get_data(as_text=True)


def test_parallel_wrong_passwords_are_all_counted(app):
    """Guesses sent at once (several web workers) are each counted: none is lost to another's write,
    and none fails with a server error, also for a name tried for the first time."""
    import threading

    from ppt_web.auth import service as auth
    from ppt_web.models import LoginThrottle

    outcomes: list[str] = []
    start = threading.Barrier(8)

    def guess():
        with app.app_context():
            start.wait(10)
            try:
                auth.sign_in("ukjend-namn", "feil")
            except auth.SignInRefused as exc:
                outcomes.append(str(exc.message))
            except Exception as exc:  # noqa: BLE001 - the test reports it
                outcomes.append(f"error: {exc!r}")
            db.session.remove()

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 8 and not [o for o in outcomes if o.startswith("error")], outcomes
    with app.app_context():
        throttle = db.session.get(LoginThrottle, "ukjend-namn")
        # Five counted wrong passwords lock the name; the rest meet the lock.
        assert (throttle.failures, outcomes.count(str(auth.LOCKED_OUT))) == (5, 3), outcomes
        assert throttle.locked_until is not None
