"""What a signed letter and a template may no longer do, found in review: a signed letter's post keeps
the recipients and title its PDF shows; a template is refused at save, not at merge, for what only
fails late."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from ppt_web.cases import esign, posts
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Conflict, Invalid
from ppt_web.extensions import db
from ppt_web.letters import merge
from ppt_web.letters.sanitize import clean
from ppt_web.models import JournalPost

from .conftest import user
from .test_letters import case_with_recipients, new_letter


def test_a_signed_letters_recipients_and_title_can_no_longer_be_edited(ctx):
    """Its PDF names them as they were: a changed recipient would get a letter addressed to another."""
    post = new_letter(case_with_recipients(category="follow_up"))
    esign.sign(user("radgjevar1"), post.id)
    post = db.session.get(JournalPost, post.id)
    data = posts.PostData(post_type="U", title="Anna tittel", document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Ein annan føresett", address="Vegen 9",
                                                                  postal_code="6060", city="Hareid")])
    with pytest.raises(Conflict):
        posts.update_post(user("radgjevar1"), post.id, data)
    db.session.rollback()
    post = db.session.get(JournalPost, post.id)
    assert post.title != "Anna tittel"
    assert "Ein annan føresett" not in [c.name for c in post.correspondents]


@pytest.mark.parametrize("body", [
    "{% for a in mottakarar %}{% for b in foresette %}{% for c in mottakarar %}x{% endfor %}{% endfor %}{% endfor %}",
    "{% for a in mottakarar %}" * 25 + "x" + "{% endfor %}" * 25,
    "{% if dato %}" * 400 + "x" + "{% endif %}" * 400,
    "{{ " + "(" * 3000 + "dato" + ")" * 3000 + " }}",
])
def test_a_template_that_would_run_long_or_fail_only_when_merged_is_refused_at_save(body):
    with pytest.raises(Invalid):
        merge.check(body)


def test_two_nested_loops_are_fine():
    merge.check("{% for a in mottakarar %}{% for b in foresette %}{{ a.namn }} {{ b.namn }}{% endfor %}{% endfor %}")


def _png(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_small_picture_that_claims_a_huge_size_is_dropped_and_a_normal_one_kept():
    assert "img" not in clean(f'<p><img src="{_png(20000, 20000)}"></p>')
    assert "<img" in clean(f'<p><img src="{_png(300, 100)}"></p>')


def test_relative_and_protocol_relative_links_and_odd_digits_are_dropped_quietly(capfd):
    out = clean('<p><a href="//evil.example/x">a</a><a href="/x">b</a></p>'
                '<table><tbody><tr><td colspan="²">1</td></tr></tbody></table>')
    assert "evil" not in out and 'href="/x"' not in out and "colspan" not in out
    assert "Exception" not in capfd.readouterr().err


def test_a_save_that_crosses_a_finalize_is_refused_and_keeps_the_finalized_text(ctx, monkeypatch):
    """The save read the post as a draft; a finalize committed before its UPDATE: the UPDATE itself checks
    the post is still a draft, so the archived PDF and the letter's text never differ."""
    from ppt_web.letters import service

    post = new_letter(case_with_recipients(category="follow_up"))
    posts.finalize(user("radgjevar1"), post.id)
    letter = service.letter_of(db.session.get(JournalPost, post.id))
    seen = []
    real = service.save_refusal

    def as_read_before_the_finalize(actor, p):
        seen.append(p.id)
        return None if len(seen) == 1 else real(actor, p)

    monkeypatch.setattr(service, "save_refusal", as_read_before_the_finalize)
    with pytest.raises(Conflict):
        service.save(user("radgjevar1"), post.id, "<p>Sein tekst</p>", letter.version)
    db.session.rollback()
    assert service.letter_of(db.session.get(JournalPost, post.id)).body == letter.body


def test_a_version_in_other_digits_is_a_refusal_not_an_error(client, login_as):
    with client.application.app_context():
        post_id = new_letter(case_with_recipients(category="follow_up")).id
    login_as("radgjevar1")
    answer = client.post(f"/posts/{post_id}/letter/save", data={"body": "<p>Ny</p>", "version": "²"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 409


def test_a_refused_save_answers_with_the_version_it_was_sent_on(client, login_as):
    """A stale page told its text is too long must not get the newer version to overwrite with next time."""
    from ppt_web.letters import service

    with client.application.app_context():
        post_id = new_letter(case_with_recipients(category="follow_up")).id
        service.save(user("radgjevar1"), post_id, "<p>Andre si endring</p>", 1)
    login_as("radgjevar1")
    huge = "<p>" + "x" * (service.MAX_BODY_CHARS + 1) + "</p>"
    answer = client.post(f"/posts/{post_id}/letter/save", data={"body": huge, "version": "1"},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 409
    assert 'value="2"' not in answer.get_data(as_text=True)
    assert 'value="1"' in answer.get_data(as_text=True)
