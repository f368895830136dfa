"""The operator commands: create-admin (interactive) and seed-demo."""
from __future__ import annotations

from .conftest import activity_rows, sign_in, user


def test_create_admin_prompts_and_creates_a_user_who_can_sign_in(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin"],
                           input="Tove.Admin\nTove Admin\nlangt-passord-1\nlangt-passord-1\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        made = user("tove.admin")
        assert made.full_name == "Tove Admin" and made.can("assign_roles")
        assert activity_rows("user_created")[-1].actor_name == "cli"
    assert sign_in(app.test_client(), "tove.admin", "langt-passord-1").status_code == 302


def test_create_admin_refuses_a_short_password_and_unknown_roles(app):
    runner = app.test_cli_runner()
    short = runner.invoke(args=["create-admin", "--username", "x", "--full-name", "X", "--password", "kort"])
    assert short.exit_code != 0 and "10" in short.output
    unknown = runner.invoke(args=["create-admin", "--username", "y", "--full-name", "Y",
                                  "--password", "langt-passord", "--role", "keiser"])
    assert unknown.exit_code != 0 and "keiser" in unknown.output
    with app.app_context():
        assert user("x") is None and user("y") is None


def test_seed_demo_is_idempotent(app):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "0" in result.output  # all eight exist already
    with app.app_context():
        for name, code in (("leiar", "leiar"), ("radgjevar2", "pp_radgjevar"), ("sekretaer", "merkantil")):
            assert [r.code for r in user(name).roles] == [code]
