"""Flask CLI commands: create-admin, seed-demo, unarchivable-text, intake, generate-data, reference-archive."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import click
from flask import Flask
from sqlalchemy import func, inspect, select

from . import backup, text
from .admin import service as admin
from .archive.reference.server import serve_forever as reference_archive_server
from .clock import utcnow
from .errors import DomainError
from .extensions import db
from .generate import generate, text_pdf
from .models import AccessGroup, Case, Client, Correspondent, Document, JournalPost, Organisation, Role, User
from .postreg.mail_intake import poll_inbound
from .postreg.sync_intake import scan_sync_folder
from .postreg.upload import write_demo_mail

DEMO_PASSWORD = "demo-passord"

# username, full name, role code (docs/decisions.md, "Demo users and synthetic data")
DEMO_USERS = [
    ("leiar", "Ingrid Leiar", "leiar"),
    ("nestleiar", "Nils Nestleiar", "nestleiar"),
    ("konsulent", "Kari Konsulent", "konsulent"),
    ("radgjevar1", "Rune Rådgjevar", "pp_radgjevar"),
    ("radgjevar2", "Randi Rådgjevar", "pp_radgjevar"),
    ("sekretaer", "Siri Sekretær", "merkantil"),
    ("admin", "Arne Administrator", "admin"),
    ("superbrukar", "Sunniva Superbrukar", "superbrukar"),
]
DEMO_GROUPS = [("Team barnehage", ["radgjevar1"], "radgjevar1"), ("Team skule", ["radgjevar2"], None)]


def seed_demo_users() -> int:
    """Create the demo users and teams that are missing; returns how many users were made."""
    made = 0
    for username, full_name, role in DEMO_USERS:
        if db.session.scalar(select(User).where(User.username == username)) is None:
            admin.create_user_unchecked(username=username, full_name=full_name,
                                        password=DEMO_PASSWORD, role_codes=[role])
            made += 1
    for name, members, coordinator in DEMO_GROUPS:
        if db.session.scalar(select(AccessGroup).where(AccessGroup.name == name)) is None:
            group = AccessGroup(name=name)
            for username in members:
                member = db.session.scalar(select(User).where(User.username == username))
                assert member is not None  # the demo users are made above
                group.members.append(member)
            db.session.add(group)
            db.session.flush()
            if coordinator:
                group.coordinator_id = db.session.scalar(select(User.id).where(User.username == coordinator))
            db.session.commit()
    return made


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count()).select_from(User))


# The rows whose text reaches an archive message, by the name the command prints.
ARCHIVED_TEXT: dict[str, Any] = {
    "case": Case, "client": Client, "organisation": Organisation, "journal post": JournalPost,
    "correspondent": Correspondent, "document": Document, "user": User}


def unarchivable_rows() -> Iterator[tuple[str, int, str]]:
    """(kind, id, column) of every stored text value the archive cannot carry."""
    for kind, model in ARCHIVED_TEXT.items():
        keys = text.text_attributes(inspect(model))
        columns = [getattr(model, key) for key in keys]
        for row in db.session.execute(select(model.id, *columns).order_by(model.id).execution_options(yield_per=2000)):
            for key, value in zip(keys, row[1:], strict=True):
                if not text.archivable(value):
                    yield kind, row[0], key


def init_app(app: Flask) -> None:
    init_generate(app)
    init_intake(app)
    backup.init_app(app)  # backup DIR, restore DIR

    @app.cli.command("unarchivable-text")
    def unarchivable_text():
        """List stored text the archive cannot carry (control characters), without the text itself.
        Exit status 1 when there is any: correct each (a case's title on its page, a post's by a
        metadata correction, a client's or a user's by editing them)."""
        found = 0
        for kind, row_id, column in unarchivable_rows():
            click.echo(f"{kind} {row_id}: {column}")
            found += 1
        click.echo(f"{found} text value(s) the archive cannot carry")
        if found:
            raise SystemExit(1)

    @app.cli.command("reference-archive")
    @click.option("--port", default=8765, show_default=True, type=int)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--dir", "folder", default=None, help="archive folder (default: PPT_LOCAL_ARCHIVE_DIR)")
    def reference_archive(port: int, host: str, folder: str | None):
        """Serve the built-in reference archive over HTTP (the http transport's contract)."""
        root = folder or app.config["PPT_LOCAL_ARCHIVE_DIR"]
        reference_archive_server(root, host, port, echo=click.echo)

    @app.cli.command("seed-demo")
    def seed_demo():
        """Create the demo users, one per role (password demo-passord). Never in production."""
        made = seed_demo_users()
        click.echo(f"demo users created: {made}")

    @app.cli.command("create-admin")
    @click.option("--username", prompt=True)
    @click.option("--full-name", prompt=True)
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", "roles", multiple=True, default=["admin"], show_default=True,
                  help="role code; repeat for several (admin, konsulent, leiar, superbrukar, ...)")
    def create_admin(username, full_name, password, roles):
        """Create the first real user, interactively."""
        known = set(db.session.scalars(select(Role.code)))
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise click.UsageError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            user = admin.create_user_unchecked(username=username, full_name=full_name,
                                               password=password, role_codes=list(roles))
        except DomainError as exc:
            raise click.ClickException(str(exc.message)) from exc
        click.echo(f"created user {user.username} with role(s) {', '.join(roles)}")


def init_intake(app: Flask) -> None:
    @app.cli.command("intake")
    @click.option("--passes", type=click.IntRange(1, 1000), default=1, show_default=True,
                  help="scan this many times, PPT_SYNC_SETTLE_SECONDS apart (a file is read once it has settled)")
    def intake(passes):
        """Read the sync folder and the inbound mail now, as the worker does every few seconds."""
        for n in range(passes):
            if n:
                time.sleep(float(app.config["PPT_SYNC_SETTLE_SECONDS"]))
            scanned = scan_sync_folder()
            click.echo("sync folder: " + (", ".join(f"{k} {v}" for k, v in sorted(scanned.items())) or "empty"))
        polled = poll_inbound()
        click.echo("inbound mail: " + (", ".join(f"{k} {v}" for k, v in sorted(polled.items())) or "none waiting"))

    @app.cli.command("demo-mail")
    @click.option("--title", default="Tilvising til PPT", show_default=True)
    @click.option("--sender", default="Solsida barnehage", show_default=True)
    def demo_mail(title, sender):
        """Drop one digital letter into the SvarInn folder stand-in (the zero-setup inbound backend)."""
        if app.config["PPT_INBOUND_BACKEND"] != "folder":
            raise click.UsageError("demo-mail writes to the folder backend; PPT_INBOUND_BACKEND is not 'folder'")

        # The time in the text makes each letter's bytes unique: the intake refuses exact duplicates.
        pdf = text_pdf(f"{title} - {sender} - {utcnow():%Y-%m-%d %H:%M:%S.%f}")
        message_id = write_demo_mail(pdf, title=title, sender=sender)
        click.echo(f"dropped digital mail {message_id} into {app.config['PPT_SVARINN_DIR']}")


def init_generate(app: Flask) -> None:
    @app.cli.command("generate-data")
    @click.option("--clients", "n_clients", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    def generate_data(n_clients, seed):
        """Fill the database with synthetic clients, cases and posts, through the services."""
        started = time.monotonic()
        stats = generate(n_clients, seed, echo=click.echo)
        took = time.monotonic() - started
        click.echo(", ".join(f"{k}: {v}" for k, v in stats.items()) + f" in {took:.1f} s")
