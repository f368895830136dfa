"""Approval of outgoing posts and expert assessments, and electronic signing, through the services."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from ppt_web.cases import approval, esign, posts
from ppt_web.cases import service as cases
from ppt_web.clock import today as oslo_today
from ppt_web.clock import utcnow
from ppt_web.errors import Conflict, Forbidden, Invalid, NotFound
from ppt_web.extensions import db
from ppt_web.models import AccessGroup, ArchiveJob, Notification, PostSignature, PostStatus

from . import builders
from .conftest import activity_rows, user

GUARDIAN_ADDRESS = "Skulevegen 1, 6065 Ulsteinvik"


def assessment(handler: str = "radgjevar1", case=None, title: str = "Sakkunnig vurdering"):
    """A complete outgoing expert assessment (draft) to a guardian."""
    case = case or builders.case(handler=handler)
    data = posts.PostData(post_type="U", title=title, document_date=oslo_today(),
                          correspondents=[posts.CorrespondentData(name="Kari Føresett", address=GUARDIAN_ADDRESS,
                                                                  national_id=builders.valid_national_id(900))])
    return posts.create_post(user(handler), case.id, data,
                             posts.Upload(io.BytesIO(builders.make_pdf(2)), "vurdering.pdf"))


def notices(username: str) -> list[str]:
    return [n.text for n in db.session.scalars(select(Notification).where(Notification.user_id == user(username).id))]


def test_send_approve_finalizes_with_the_archive_job_and_history(ctx):
    post = assessment()
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id, "Sjå særleg konklusjonen")
    assert post.status == PostStatus.AWAITING_APPROVAL and post.approver.username == "leiar"
    assert any(post.number in text for text in notices("leiar"))
    with pytest.raises(Conflict):  # locked for the handler while it waits
        posts.editable(user("radgjevar1"), post.id)
    with pytest.raises(Conflict):
        posts.finalize(user("radgjevar1"), post.id)
    with pytest.raises(Conflict):  # a case with a post waiting for approval cannot close
        cases.close_case(user("radgjevar1"), post.case_id)

    approval.approve(user("leiar"), post.id, "Godt skrive")
    post = db.session.get(type(post), post.id)
    assert post.status == PostStatus.FINALIZED and post.approved_by.username == "leiar"
    assert post.finalized_by.username == "leiar"
    jobs = list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id)))
    assert [j.event for j in jobs] == ["post_finalized"]
    assert [(e.kind, e.actor.username, e.comment) for e in post.events] == [
        ("sent_to_approval", "radgjevar1", "Sjå særleg konklusjonen"), ("approved", "leiar", "Godt skrive")]
    assert any("godkjent" in text.lower() or post.number in text for text in notices("radgjevar1"))
    assert [r.action for r in activity_rows() if r.action.startswith("post_")][-3:] == [
        "post_sent_to_approval", "post_finalized", "post_approved"]


def test_return_needs_a_comment_and_gives_the_draft_back(ctx):
    post = assessment()
    approval.send_for_approval(user("radgjevar1"), post.id, user("nestleiar").id)
    with pytest.raises(Invalid):
        approval.return_for_changes(user("nestleiar"), post.id, "   ")
    assert db.session.get(type(post), post.id).status == PostStatus.AWAITING_APPROVAL
    approval.return_for_changes(user("nestleiar"), post.id, "Manglar tilrådinga")
    post = db.session.get(type(post), post.id)
    assert post.status == PostStatus.DRAFT and post.approver_id is None
    assert posts.editable(user("radgjevar1"), post.id) is not None
    assert any("Manglar tilrådinga" in text for text in notices("radgjevar1"))
    assert post.events[-1].kind == "returned" and post.events[-1].to_user.username == "radgjevar1"


@pytest.mark.parametrize("username", ["radgjevar2", "konsulent", "sekretaer"])
def test_only_approvers_approve(ctx, username):
    post = assessment()
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    with pytest.raises((Forbidden, NotFound)):  # NotFound: radgjevar2 cannot even see the case
        approval.approve(user(username), post.id)
    assert db.session.get(type(post), post.id).status == PostStatus.AWAITING_APPROVAL


def test_nobody_approves_their_own_post(ctx):
    post = assessment()
    with pytest.raises(Invalid):
        approval.send_for_approval(user("radgjevar1"), post.id, user("radgjevar1").id)
    # radgjevar1 coordinates Team barnehage and wrote this post in a team case; the consultant sends
    # it to them. They still may not approve what they wrote.
    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    case = builders.case(handler="radgjevar1")
    case.access_group = team
    db.session.commit()
    own = assessment(case=case)
    # Not offered, and not asked: they could neither approve nor return it, and it would wait for nobody.
    assert user("radgjevar1").id not in [u.id for u in approval.approvers(own)]
    with pytest.raises(Invalid) as asked:
        approval.send_for_approval(user("konsulent"), own.id, user("radgjevar1").id)
    assert "Rune Rådgjevar" in str(asked.value.message)
    assert db.session.get(type(own), own.id).status == PostStatus.DRAFT
    # One sent to them before that rule: they still may not approve what they wrote.
    own.status, own.approver_id = PostStatus.AWAITING_APPROVAL, user("radgjevar1").id
    own.approval_requested_by_id = user("konsulent").id
    db.session.commit()
    assert approval.refusal(user("radgjevar1"), own) is not None
    with pytest.raises(Forbidden) as refused:
        approval.approve(user("radgjevar1"), own.id)
    assert "eigen" in str(refused.value.message)  # "your own post", not "another approver"
    assert db.session.get(type(own), own.id).status == PostStatus.AWAITING_APPROVAL


def test_nobody_approves_a_letter_whose_text_they_wrote(ctx):
    """radgjevar1 co-handles radgjevar2's expert assessment and coordinates its team; they wrote the
    letter's conclusion. Not offered as its approver, not asked; sent to them before that rule, refused."""
    from ppt_web.cases import service as cases
    from ppt_web.letters import service as letters

    from .test_letters import case_with_recipients, new_letter

    case = case_with_recipients()
    case.handler_id = user("radgjevar2").id
    case.access_group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    db.session.commit()
    cases.add_cohandler(user("radgjevar2"), case.id, user("radgjevar1").id)
    post = new_letter(case, actor="radgjevar2")
    assert user("radgjevar1").id in [u.id for u in approval.approvers(post)]
    letters.save(user("radgjevar1"), post.id, "<p>Konklusjonen, skriven av koordinatoren</p>", 1)
    assert user("radgjevar1").id not in [u.id for u in approval.approvers(post)]
    with pytest.raises(Invalid) as asked:
        approval.send_for_approval(user("radgjevar2"), post.id, user("radgjevar1").id)
    assert "Rune Rådgjevar" in str(asked.value.message)
    post.status, post.approver_id = PostStatus.AWAITING_APPROVAL, user("radgjevar1").id
    post.approval_requested_by_id = user("radgjevar2").id
    db.session.commit()
    with pytest.raises(Forbidden):
        approval.approve(user("radgjevar1"), post.id)
    assert db.session.get(type(post), post.id).status == PostStatus.AWAITING_APPROVAL
    approval.approve(user("leiar"), post.id)
    assert db.session.get(type(post), post.id).approved_by_id == user("leiar").id


def _meanwhile(app, post_id: int, **columns) -> None:
    """Another request's change of the post row, committed through an engine of its own."""
    from sqlalchemy import create_engine, text

    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(text("UPDATE journal_post SET " + ", ".join(f"{c} = :{c}" for c in columns) + " WHERE id = :id"),
                     {**columns, "id": post_id})
    other.dispose()


@pytest.mark.parametrize("decision", ["approve", "return"])
@pytest.mark.parametrize("resent", ["by_the_approver", "to_another_approver"])
def test_a_decision_that_crosses_a_return_and_a_new_send_is_refused(app, ctx, monkeypatch, decision, resent):
    """The approver's request passed refusal() on the post as it was read; before its UPDATE the post was
    returned and sent again: by the approver themself (now the one who asked: four eyes), or to another
    approver (a team coordinator decides only what waits for them). The decision is refused and the post
    still waits, as sent the second time."""
    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    case = builders.case(handler="radgjevar2")
    case.access_group = team  # radgjevar1 coordinates the team
    db.session.commit()
    post = assessment(handler="radgjevar2", case=case)
    approver = user("radgjevar1")
    approval.send_for_approval(user("radgjevar2"), post.id, approver.id)
    again = ({"approval_requested_by_id": approver.id, "approver_id": user("leiar").id} if resent == "by_the_approver"
             else {"approval_requested_by_id": user("radgjevar2").id, "approver_id": user("leiar").id})
    real = approval._approvable

    def resent_meanwhile(actor, post_id):
        found = real(actor, post_id)
        _meanwhile(app, post_id, **again)
        return found

    monkeypatch.setattr(approval, "_approvable", resent_meanwhile)
    with pytest.raises(Forbidden) as refused:
        if decision == "approve":
            approval.approve(approver, post.id, "ok")
        else:
            approval.return_for_changes(approver, post.id, "Sjå over")
    assert ("eigen" if resent == "by_the_approver" else "annan") in str(refused.value.message)
    db.session.rollback()
    after = db.session.get(type(post), post.id)
    assert after.status == PostStatus.AWAITING_APPROVAL and after.approved_by_id is None
    assert (after.approver_id, after.approval_requested_by_id) == (again["approver_id"],
                                                                   again["approval_requested_by_id"])
    assert [e.kind for e in after.events] == ["sent_to_approval"]


def test_a_team_coordinator_approves_posts_of_the_team_sent_to_them(ctx):
    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    case = builders.case(handler="radgjevar2")
    case.access_group = team
    db.session.commit()
    post = assessment(handler="radgjevar2", case=case)
    assert user("radgjevar1") in approval.approvers(post)
    approval.send_for_approval(user("radgjevar2"), post.id, user("radgjevar1").id)
    assert [w.post.id for w in approval.queue(user("radgjevar1"))] == [post.id]
    approval.approve(user("radgjevar1"), post.id)
    assert db.session.get(type(post), post.id).status == PostStatus.FINALIZED
    # Outside the team the coordinator is nobody's approver.
    other = assessment(handler="radgjevar2")
    with pytest.raises(Invalid):
        approval.send_for_approval(user("radgjevar2"), other.id, user("radgjevar1").id)


def test_the_leader_sees_every_waiting_approval_and_old_ones_are_marked(app, ctx):
    first, second = assessment(), assessment(handler="radgjevar2")
    approval.send_for_approval(user("radgjevar1"), first.id, user("nestleiar").id)
    approval.send_for_approval(user("radgjevar2"), second.id, user("leiar").id)
    first.approval_requested_at = utcnow() - timedelta(days=app.config["PPT_APPROVAL_WARN_DAYS"] + 1)
    db.session.commit()
    everything = approval.queue(user("leiar"))
    assert [(w.post.id, w.overdue) for w in everything] == [(first.id, True), (second.id, False)]
    # The deputy stands in for the leader (approve and search_all): the same list. A team coordinator
    # sees only what was sent to them (test above).
    assert [w.post.id for w in approval.queue(user("nestleiar"))] == [first.id, second.id]
    assert approval.queue(user("radgjevar1")) == []
    assert approval.waiting_count(user("leiar")) == 2


def test_an_incomplete_post_is_not_sent_to_approval(ctx):
    case = builders.case()
    draft = posts.create_post(user("radgjevar1"), case.id, posts.PostData(post_type="U", title="Utkast"))
    with pytest.raises(Invalid):
        approval.send_for_approval(user("radgjevar1"), draft.id, user("leiar").id)


@pytest.fixture
def signing(app, tmp_path):
    from .helpers import make_test_certificate

    p12, ca = make_test_certificate("PPT Testkommune")
    (tmp_path / "ppt.p12").write_bytes(p12)
    (tmp_path / "ca.pem").write_bytes(ca)
    app.config.update(PPT_SIGNING_P12=str(tmp_path / "ppt.p12"), PPT_SIGNING_PASSWORD="test",
                      PPT_SIGNING_TRUST_ROOT=str(tmp_path / "ca.pem"))


def test_the_approver_signs_on_approval_and_the_signature_verifies(ctx, signing):
    from ppt_web.files.storage import file_path

    post = assessment()
    unsigned = post.main_document.sha256
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    approval.approve(user("leiar"), post.id, sign=True)  # approving authorises the service's signature
    post = db.session.get(type(post), post.id)
    (signature,) = db.session.scalars(select(PostSignature).where(PostSignature.post_id == post.id))
    assert post.status == PostStatus.FINALIZED and signature.signed_by.username == "leiar"
    assert post.main_document.sha256 == signature.signed_sha256 != unsigned
    assert file_path(signature.signed_sha256).read_bytes().startswith(file_path(unsigned).read_bytes())
    (status,) = esign.signature_status(post)
    assert status.intact and status.valid and status.trusted and "PPT Testkommune" in status.signer_subject
    assert [e.kind for e in post.events] == ["sent_to_approval", "signed", "approved"]
    jobs = list(db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id)))
    assert [j.event for j in jobs] == ["post_finalized"]  # the signed file is what the archive gets


def test_the_handler_signs_a_letter_that_needs_no_approval(ctx, signing):
    letter = assessment(case=builders.case(category="follow_up"), title="Brev til skulen")
    with pytest.raises(Forbidden):  # the consultant has no esign
        esign.sign(user("konsulent"), letter.id)
    esign.sign(user("radgjevar1"), letter.id)
    letter = db.session.get(type(letter), letter.id)
    (signature,) = db.session.scalars(select(PostSignature).where(PostSignature.post_id == letter.id))
    assert signature.signed_by.username == "radgjevar1" and letter.main_document.sha256 == signature.signed_sha256
    posts.finalize(user("radgjevar1"), letter.id)
    (status,) = esign.signature_status(db.session.get(type(letter), letter.id))
    assert status.intact and status.valid
    with pytest.raises(Conflict):  # an expert assessment is signed by its approver
        esign.sign(user("radgjevar1"), assessment().id)


@pytest.mark.parametrize("meanwhile", ["main_replaced", "main_rendered_again", "sent_to_approval", "finalized"])
def test_a_signature_that_crosses_a_change_of_the_post_is_refused(app, ctx, monkeypatch, meanwhile):
    """The handler's signing read the main document and took seconds to sign it; meanwhile the main
    document was replaced (an edit's upload: a new document row), rendered again in place (a letter's PDF),
    or the post was sent to approval or finalized. The signature is refused and rolled back: no signature
    row, the main document as it is now, and the signed file removed."""
    import hashlib

    from ppt_web import signing
    from ppt_web.files.storage import file_path
    from ppt_web.models import StoredFile

    letter = assessment(case=builders.case(category="follow_up"), title="Brev til skulen")
    main_id, unsigned = letter.main_document.id, letter.main_document.sha256
    other = posts.create_post(user("radgjevar1"), letter.case_id, posts.PostData(post_type="N", title="Anna"),
                              posts.Upload(io.BytesIO(builders.make_pdf(2, tag="ny")), "ny.pdf"))
    new_sha = other.main_document.sha256
    changes = {
        "main_replaced": [("DELETE FROM document WHERE id = :main", {"main": main_id}),
                          ("INSERT INTO document (post_id, role, position, filename, sha256) "
                           "VALUES (:post, 'main', 5, 'ny.pdf', :sha)", {"post": letter.id, "sha": new_sha})],
        "main_rendered_again": [("UPDATE document SET sha256 = :sha WHERE id = :main", {"sha": new_sha,
                                                                                       "main": main_id})],
        "sent_to_approval": [("UPDATE journal_post SET status = 'awaiting_approval', approver_id = :leader, "
                              "approval_requested_by_id = :handler WHERE id = :post",
                              {"leader": user("leiar").id, "handler": user("radgjevar1").id, "post": letter.id})],
        "finalized": [("UPDATE journal_post SET status = 'finalized' WHERE id = :post", {"post": letter.id})],
    }[meanwhile]
    real, made = signing.sign_pdf, []

    def slow_sign(*args, **kwargs):
        from sqlalchemy import create_engine, text

        signed = real(*args, **kwargs)
        made.append(hashlib.sha256(signed).hexdigest())
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with engine.begin() as conn:
            for statement, values in changes:
                conn.execute(text(statement), values)
        engine.dispose()
        return signed

    monkeypatch.setattr(signing, "sign_pdf", slow_sign)
    with pytest.raises(Conflict) as refused:
        esign.sign(user("radgjevar1"), letter.id)
    assert ("medan det vart signert" if meanwhile.startswith("main_") else "Berre eit utkast") in str(
        refused.value.message)
    db.session.rollback()
    after = db.session.get(type(letter), letter.id)
    assert db.session.scalars(select(PostSignature).where(PostSignature.post_id == letter.id)).all() == []
    assert after.main_document.sha256 == (new_sha if meanwhile.startswith("main_") else unsigned)
    assert "signed" not in [e.kind for e in after.events]
    (signed_sha,) = made
    assert db.session.get(StoredFile, signed_sha) is None and not file_path(signed_sha).exists()


def test_an_expert_assessment_is_not_finalized_without_approval(ctx):
    post = assessment()
    with pytest.raises(Conflict):
        posts.finalize(user("radgjevar1"), post.id)
    assert db.session.get(type(post), post.id).status == PostStatus.DRAFT
    assert db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == post.id)) is None


def test_the_approver_sees_the_post_only_while_it_waits_for_them(ctx):
    from ppt_web.auth import scope

    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    case = builders.case(handler="radgjevar2")
    case.access_group = team
    db.session.commit()
    post = assessment(handler="radgjevar2", case=case)
    with pytest.raises(NotFound):
        scope.post(user("radgjevar1"), post.id)
    approval.send_for_approval(user("radgjevar2"), post.id, user("radgjevar1").id)
    assert scope.post(user("radgjevar1"), post.id) is not None
    assert scope.document(user("radgjevar1"), post.main_document.id) is not None
    with pytest.raises(NotFound):  # the case itself stays closed to them
        scope.case(user("radgjevar1"), case.id)
    approval.approve(user("radgjevar1"), post.id)
    with pytest.raises(NotFound):
        scope.post(user("radgjevar1"), post.id)


def test_without_a_certificate_configured_the_test_certificate_signs(ctx):
    """Signing works out of the box, and says it is a test signature (more in tests/test_signing_setup.py)."""
    letter = assessment(case=builders.case(category="follow_up"))
    esign.sign(user("radgjevar1"), letter.id)
    [shown] = esign.signatures(db.session.get(type(letter), letter.id))
    assert shown.test and "testsignatur" in shown.certificate_subject


@pytest.mark.parametrize("decision", ["return", "approve"])
def test_a_decision_is_told_to_the_case_s_handler_when_the_one_who_asked_may_no_longer_see_the_case(ctx,
                                                                                                    decision):
    """The notice names the post and quotes the comment: a co-handler taken off the case meanwhile does not
    get it; the case's handler does."""
    case = builders.case(handler="radgjevar1")
    cases.add_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id)
    post = assessment(handler="radgjevar2", case=case, title="Diagnose nemnd")
    approval.send_for_approval(user("radgjevar2"), post.id, user("leiar").id)
    cases.remove_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id)
    before = len(notices("radgjevar2"))
    if decision == "return":
        approval.return_for_changes(user("leiar"), post.id, "Diagnosen skal ikkje nemnast")
    else:
        approval.approve(user("leiar"), post.id, "Godt skrive")
    assert len(notices("radgjevar2")) == before
    assert any(post.number in text for text in notices("radgjevar1"))
