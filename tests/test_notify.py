"""Notifications: a row in the same transaction as the change, and an optional e-mail after commit."""
from __future__ import annotations

import socketserver
import threading
import uuid

import pytest
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.models import Notification
from ppt_web.notify import notify, send_mail

from .conftest import user


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.send_message; what arrives goes into server.messages."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 test\r\n")
            elif command.startswith(b"DATA"):
                self.wfile.write(b"354 go on\r\n")
                body = b""
                while (part := self.rfile.readline()) not in (b".\r\n", b""):
                    body += part
                self.server.messages.append(body.decode())
                self.wfile.write(b"250 queued\r\n")
            elif command.startswith(b"QUIT"):
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTP)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_notice_is_in_the_default_language_and_rolls_back_with_its_change(ctx):
    from flask_babel import lazy_gettext as _l

    notify(user("radgjevar1"), _l("New document in %(case)s: %(title)s", case="2026/00001", title="Brev"), "/posts/1")
    db.session.rollback()
    assert db.session.scalar(select(Notification)) is None
    notify(user("radgjevar1"), _l("New document in %(case)s: %(title)s", case="2026/00001", title="Brev"), "/posts/1")
    db.session.commit()
    row = db.session.scalar(select(Notification))
    assert row.text == "Nytt dokument i 2026/00001: Brev" and row.link == "/posts/1"


@pytest.mark.parametrize("link", ["https://example.invalid/phish", "//example.invalid/x", "/\\example.invalid",
                                  "javascript:alert(1)"])
def test_a_link_that_leaves_the_app_is_dropped(ctx, link):
    row = notify(user("radgjevar1"), "x", link)
    assert row.link == ""


@pytest.mark.app_config(PPT_QUEUE_NAME=f"notify-{uuid.uuid4().hex[:8]}")  # the mail job waits in its own queue
def test_email_says_only_that_there_is_a_notice_with_a_link(app, ctx, smtp_server):
    app.config.update(PPT_SMTP_HOST="127.0.0.1", PPT_SMTP_PORT=smtp_server.server_address[1],
                      PPT_BASE_URL="https://ppt.kommune.example")
    handler = user("radgjevar1")
    handler.email = "rune@kommune.example"
    db.session.commit()
    row = notify(handler, "Nytt dokument i 2026/00001: Tilvising", "/posts/7")
    db.session.commit()
    from ppt_web.queue import get_queue

    queue = get_queue()
    assert [j.func_name for j in queue.jobs] == ["ppt_web.jobs.send_notification_mail"]  # handed over after the commit
    queue.empty()
    assert send_mail(row.id) == "sent"
    (message,) = smtp_server.messages
    assert "To: rune@kommune.example" in message
    assert "https://ppt.kommune.example/posts/7" in message
    assert "Tilvising" not in message and "2026/00001" not in message  # what it is about stays in the app


def test_no_email_without_an_address(ctx):
    row = notify(user("radgjevar2"), "x", "/")
    db.session.commit()
    assert send_mail(row.id) == "nothing to send"
