"""CSRF is on in production: state-changing requests without a token are refused (400)."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.app_config(WTF_CSRF_ENABLED=True)


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_sign_in_without_token_is_400(client):
    response = client.post("/login", data={"username": "leiar", "password": "demo-passord"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_sign_in_with_token_works(client):
    token = _token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "leiar", "password": "demo-passord", "csrf_token": token})
    assert response.status_code == 302


def _signed_in(client, username="konsulent") -> str:
    token = _token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": username, "password": "demo-passord", "csrf_token": token})
    page = client.get("/admin/users").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def test_htmx_post_needs_the_header_token(client, app):
    """The token travels in hx-headers on <body>; without it an htmx POST is refused."""
    token = _signed_in(client)
    from .conftest import role, user

    with app.app_context():
        uid, rid = user("radgjevar1").id, role("nestleiar").id
    refused = client.post(f"/admin/users/{uid}/roles", data={"role_id": rid}, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    ok = client.post(f"/admin/users/{uid}/roles", data={"role_id": rid},
                     headers={"HX-Request": "true", "X-CSRFToken": token})
    assert ok.status_code == 200 and "Nestleiar" in ok.get_data(as_text=True)


def test_sign_out_needs_a_token(client):
    _signed_in(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in
