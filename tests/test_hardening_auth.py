"""Sign-in hardening: the `next` target, the lockout under parallel guesses, the per-client throttle."""
from __future__ import annotations

import random
import threading
import time

import pytest

from ppt_web.auth import service as auth
from ppt_web.cli import DEMO_PASSWORD
from ppt_web.extensions import db
from ppt_web.models import LoginThrottle

from .conftest import activity_rows, sign_in

pytestmark = pytest.mark.real_password_hashing  # races inside the password check: it takes as long as in production

# --- the `next` target after sign-in ------------------------------------------------------

HOSTILE_NEXT = [
    "//evil.example",
    "//evil.example/x",
    "/\\evil.example",
    "/%5Cevil.example",
    "\\\\evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%0d%0aSet-Cookie:x=1",
    "/%0aLocation:%20https://evil.example",
    "/x%0d%0aSet-Cookie:x=1",
    "/%00/evil.example",
    "/%7f/evil.example",
    "/%1b/evil.example",
    "https://evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "%2F%2Fevil.example",
    "evil.example",
    "///evil.example",
    " //evil.example",
    "%20//evil.example",
    "data:text/html,x",
    "//%09/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_is_only_ever_a_local_path(client, target):
    response = client.post(f"/login?next={target}", data={"username": "leiar", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/", target


def test_next_given_unencoded_with_tab_newline_and_backslash(client):
    """The same, with the raw characters in the query string (not percent-encoded)."""
    for target in ("/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\\evil.example", "/\t\\evil"):
        browser = client.application.test_client()
        response = browser.post("/login", query_string={"next": target},
                                data={"username": "leiar", "password": DEMO_PASSWORD})
        assert response.status_code == 302 and response.headers["Location"] == "/", repr(target)


def test_local_next_is_kept(client):
    response = client.post("/login?next=/cases/3%3Ftab%3Dposts",
                           data={"username": "leiar", "password": DEMO_PASSWORD})
    assert response.headers["Location"] == "/cases/3?tab=posts"


# --- the lockout under parallel guesses ---------------------------------------------------

def _race(app, monkeypatch, right_index: int, right_after_checks: int = 0, count: int = 30):
    """`count` sign-ins for one username at once from as many addresses (so the per-client throttle
    stays out of it); the one at right_index has the right password, and waits until
    `right_after_checks` password checks have begun. Returns what each got, and every check against
    the password hash as (index, ok, start, end)."""
    checks: list[tuple[int, bool, float, float]] = []
    started: list[int] = []
    guard = threading.Lock()
    enough = threading.Event()
    real = auth.verify_password
    current = threading.local()

    def counting(password_hash, password):
        begin = time.monotonic()
        with guard:
            started.append(current.index)
            if len(started) >= right_after_checks:
                enough.set()
        ok = real(password_hash, password)
        with guard:
            checks.append((current.index, ok, begin, time.monotonic()))
        return ok

    monkeypatch.setattr(auth, "verify_password", counting)
    outcomes: dict[int, int | str] = {}
    barrier = threading.Barrier(count)

    def attempt(i: int) -> None:
        current.index = i
        browser = app.test_client()
        password = DEMO_PASSWORD if i == right_index else f"wrong-{i}"
        barrier.wait(60)
        if i == right_index and right_after_checks:
            enough.wait(60)
        try:
            response = sign_in(browser, "radgjevar1", password, REMOTE_ADDR=f"10.9.{i // 200}.{i % 200 + 1}")
            outcomes[i] = response.status_code
        except Exception as exc:  # reported by the test
            outcomes[i] = f"error: {exc!r}"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    errors = [o for o in outcomes.values() if isinstance(o, str)]
    assert len(outcomes) == count and not errors, errors
    return outcomes, checks


def test_parallel_guesses_never_pass_the_lockout_right_one_last(app, monkeypatch):
    """29 wrong guesses at once and, once the limit of them are being checked, the right password:
    at most PPT_LOGIN_MAX_FAILURES attempts reach the hash check, and the right one is refused."""
    limit = app.config["PPT_LOGIN_MAX_FAILURES"]
    outcomes, checks = _race(app, monkeypatch, right_index=29, right_after_checks=limit)
    assert len(checks) <= limit, f"{len(checks)} of 30 attempts reached the password check"
    assert set(outcomes.values()) == {401}
    with app.app_context():
        throttle = db.session.get(LoginThrottle, "radgjevar1")
        assert throttle is not None and throttle.locked_until is not None
        assert not activity_rows("sign_in")


def test_parallel_guesses_with_the_right_one_anywhere(app, monkeypatch):
    """The right password among 29 wrong ones, all at once. Until a success, at most the limit reach
    the hash check (a success clears the count, so after it others may be checked); without one,
    at most the limit in all. If the right one got in, no lock had been set before it did."""
    limit = app.config["PPT_LOGIN_MAX_FAILURES"]
    right = random.randrange(30)
    outcomes, checks = _race(app, monkeypatch, right_index=right)
    succeeded = [i for i, o in outcomes.items() if o == 302]
    assert succeeded in ([], [right])
    if succeeded:
        success_end = next(end for i, ok, _begin, end in checks if i == right)
        before = [c for c in checks if c[2] < success_end]
        assert len(before) <= limit, f"{len(before)} attempts reached the password check before the success"
    else:
        assert len(checks) <= limit, f"{len(checks)} of 30 attempts reached the password check"
    with app.app_context():
        throttle = db.session.get(LoginThrottle, "radgjevar1")
        if succeeded:
            assert len(activity_rows("sign_in")) == 1
            if throttle is not None and throttle.locked_until is not None:
                # The success cleared the count, so the lock is the work of the limit's wrong guesses counted
                # after it: their checks began once the right one's had ended. (Not the lock's time against the
                # sign-in's: a refusal takes its lock's time before it waits for the write lock, which the
                # sign-in may hold, so the two times say nothing about the order under load.)
                after = [c for c in checks if not c[1] and c[2] >= success_end]
                assert len(after) >= limit, f"locked after {len(after)} wrong guesses since the success"
        else:
            assert throttle is not None and throttle.locked_until is not None


def test_attempts_are_counted_before_the_password_is_checked(app, monkeypatch):
    """While the fifth attempt is being checked, a sixth is refused at once, without a hash check."""
    limit = app.config["PPT_LOGIN_MAX_FAILURES"]
    browser = app.test_client()
    for _ in range(limit - 1):
        assert sign_in(browser, "nestleiar", "nope").status_code == 401
    inside = threading.Event()
    release = threading.Event()
    real = auth.verify_password
    calls = []

    def slow(password_hash, password):
        calls.append(password)
        if password == "fifth":
            inside.set()
            release.wait(30)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow)
    fifth = threading.Thread(target=lambda: sign_in(app.test_client(), "nestleiar", "fifth"))
    fifth.start()
    assert inside.wait(30)
    sixth = sign_in(app.test_client(), "nestleiar")  # the right password
    release.set()
    fifth.join(30)
    assert sixth.status_code == 401 and calls == ["fifth"]


def test_a_right_password_clears_the_count(client, app):
    limit = app.config["PPT_LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        sign_in(client, "nestleiar", "nope")
    assert sign_in(client, "nestleiar").status_code == 302
    client.post("/logout")
    for _ in range(limit - 1):
        assert sign_in(client, "nestleiar", "nope").status_code == 401
    assert sign_in(client, "nestleiar").status_code == 302


# --- the per-client throttle ----------------------------------------------------------------

@pytest.mark.app_config(PPT_LOGIN_CLIENT_MAX_FAILURES=20)
def test_one_client_spraying_usernames_is_throttled(app):
    sprayer = app.test_client()
    answers = [sign_in(sprayer, f"namn{i}", f"secret-guess-{i}", REMOTE_ADDR="203.0.113.9").status_code
               for i in range(31)]
    assert answers == [401] * 31
    with app.app_context():
        assert len(activity_rows("sign_in_failed")) == 20
        refused = activity_rows("sign_in_client_locked")
        assert len(refused) == 11 and {r.remote_addr for r in refused} == {"203.0.113.9"}
        for row in activity_rows():
            assert "secret-guess" not in f"{row.detail} {row.before} {row.after} {row.actor_name}"
        assert db.session.get(LoginThrottle, "client:203.0.113.9").locked_until is not None
    # Even the right password is refused from that address, with a message that says why ...
    page = sign_in(sprayer, "leiar", REMOTE_ADDR="203.0.113.9")
    assert page.status_code == 401 and "nettverksadressa di" in page.get_data(as_text=True)
    # ... while another address signs in, and the usernames tried are not locked by the spray.
    assert sign_in(app.test_client(), "leiar", REMOTE_ADDR="198.51.100.4").status_code == 302


@pytest.mark.app_config(PPT_LOGIN_CLIENT_MAX_FAILURES=3)
def test_successes_do_not_count_against_the_client(app):
    """An office behind one address: staff signing in do not use up the address's allowance."""
    for name in ("leiar", "nestleiar", "konsulent", "admin", "superbrukar"):
        assert sign_in(app.test_client(), name, REMOTE_ADDR="192.0.2.50").status_code == 302
    for _ in range(2):
        assert sign_in(app.test_client(), "leiar", "nope", REMOTE_ADDR="192.0.2.50").status_code == 401
    assert sign_in(app.test_client(), "radgjevar2", REMOTE_ADDR="192.0.2.50").status_code == 302


def test_a_typed_username_cannot_touch_a_clients_count(app):
    """'client:<address>' typed as a username counts against that username, not the address."""
    for _ in range(8):
        sign_in(app.test_client(), "client:192.0.2.60", "nope", REMOTE_ADDR="198.51.100.7")
    with app.app_context():
        assert db.session.get(LoginThrottle, "client:192.0.2.60") is None
    assert sign_in(app.test_client(), "leiar", REMOTE_ADDR="192.0.2.60").status_code == 302


def test_client_throttle_default(app):
    assert app.config["PPT_LOGIN_CLIENT_MAX_FAILURES"] == 20
