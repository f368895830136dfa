"""Every route is public on purpose or needs sign-in: a new unguarded route fails this test."""
from __future__ import annotations

import re

PUBLIC = {"auth.login", "main.healthz", "main.readyz", "main.metrics", "static"}


def _url(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1", rule.rule)


def test_only_the_listed_routes_are_public(app):
    from ppt_web.security import is_public

    with app.test_request_context():
        marked = {rule.endpoint for rule in app.url_map.iter_rules() if is_public(rule.endpoint)}
    assert marked == PUBLIC


def test_every_other_route_redirects_anonymous_users_to_sign_in(app):
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_url(rule), method=method)
            assert response.status_code == 302, (rule.rule, method, response.status_code)
            assert response.headers["Location"].startswith("/login"), rule.rule
            htmx = client.open(_url(rule), method=method, headers={"HX-Request": "true"})
            assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login", rule.rule
            checked += 1
    assert checked >= 15


def test_every_view_with_a_permission_refuses_others(app, login_as):
    """Signed in without the permission: 403 and an activity-log row, for each guarded GET view."""
    client = login_as("radgjevar1")  # holds none of the admin or log permissions (only a handler's)
    guarded = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        codes = getattr(view, "_ppt_permissions", None)
        if codes and "GET" in rule.methods and not {"search_own", "journal", "send", "close_case"} & set(codes):
            guarded.append(rule)
            assert client.get(_url(rule)).status_code == 403, rule.rule
    assert len(guarded) >= 4
    from .conftest import activity_rows

    with app.app_context():
        assert len(activity_rows("access_denied")) == len(guarded)
