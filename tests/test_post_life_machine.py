"""A Hypothesis state machine over a post's life: send to approval, approve, return, finalize, edit,
dispatch, in any order by any of several people. Whatever happens:
- nothing that needs approval (an expert assessment) is dispatched without it;
- nothing about a post changes once it is finalized (title, documents, recipients);
- the approver is never the one who asked, and a dispatched post was finalized first.
"""
from __future__ import annotations

import io

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from ppt_web.cases import approval, posts
from ppt_web.clock import today as oslo_today
from ppt_web.dispatch import service as dispatch
from ppt_web.errors import DomainError
from ppt_web.extensions import db
from ppt_web.models import Dispatch, JournalPost, PostStatus

from . import builders
from .conftest import user

PEOPLE = ["radgjevar1", "radgjevar2", "leiar", "nestleiar", "konsulent"]


def _locked_view(post: JournalPost) -> tuple:
    return (post.title, post.document_date, tuple((d.role, d.sha256) for d in post.documents),
            tuple((c.name, c.address, c.national_id) for c in post.correspondents))


class PostLife(RuleBasedStateMachine):
    @initialize(category=st.sampled_from(["expert_assessment", "follow_up"]))
    def write(self, category):
        case = builders.case(category=category)
        data = posts.PostData(post_type="U", title="Brev", document_date=oslo_today(), correspondents=[
            posts.CorrespondentData(name="Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
                                    national_id=builders.valid_national_id(902))])
        post = posts.create_post(user("radgjevar1"), case.id, data,
                                 posts.Upload(io.BytesIO(builders.make_pdf(1)), "brev.pdf"))
        self.post_id, self.frozen, self.seen_finalized = post.id, None, False

    def _try(self, call):
        try:
            call()
        except DomainError:
            db.session.rollback()

    @rule(approver=st.sampled_from(PEOPLE), sender=st.sampled_from(["radgjevar1", "konsulent"]))
    def send(self, approver, sender):
        self._try(lambda: approval.send_for_approval(user(sender), self.post_id, user(approver).id, "sjå på"))

    @rule(actor=st.sampled_from(PEOPLE))
    def approve(self, actor):
        self._try(lambda: approval.approve(user(actor), self.post_id, "ok"))

    @rule(actor=st.sampled_from(PEOPLE), comment=st.sampled_from(["", "Rett opp konklusjonen"]))
    def give_back(self, actor, comment):
        self._try(lambda: approval.return_for_changes(user(actor), self.post_id, comment))

    @rule(actor=st.sampled_from(["radgjevar1", "konsulent"]))
    def finalize(self, actor):
        self._try(lambda: posts.finalize(user(actor), self.post_id))

    @rule(title=st.sampled_from(["Brev", "Sakkunnig vurdering", "Nytt namn"]))
    def edit(self, title):
        post = db.session.get(JournalPost, self.post_id)
        data = posts.PostData(post_type="U", title=title, document_date=post.document_date, correspondents=[
            posts.CorrespondentData(name=c.name, address=c.address, national_id=c.national_id or "")
            for c in post.correspondents])
        self._try(lambda: posts.update_post(user("radgjevar1"), self.post_id, data))

    @rule(actor=st.sampled_from(["radgjevar1", "konsulent"]))
    def send_out(self, actor):
        self._try(lambda: dispatch.request_dispatch(user(actor), self.post_id))
        dispatch.sweep()  # the folder stand-in: written means delivered

    @invariant()
    def rules_hold(self):
        db.session.expire_all()
        post = db.session.get(JournalPost, self.post_id)
        if post.locked:
            if self.frozen is None:
                self.frozen = _locked_view(post)
            assert _locked_view(post) == self.frozen, "a finalized post changed"
            assert post.finalized_at is not None
        elif self.frozen is not None:
            raise AssertionError("a finalized post became editable again")
        sent = db.session.scalar(select(Dispatch.id).where(Dispatch.post_id == post.id).limit(1))
        if sent is not None or post.status == PostStatus.DISPATCHED:
            assert post.status in (PostStatus.FINALIZED, PostStatus.DISPATCHED)
            if posts.needs_approval(post):
                assert post.approved_by_id is not None, "an expert assessment went out without approval"
        if post.approved_by_id is not None:
            assert post.approved_by_id not in (post.approval_requested_by_id, post.created_by_id)
        if post.status == PostStatus.AWAITING_APPROVAL:
            assert post.approver_id is not None and post.approver_id != post.approval_requested_by_id


def test_post_life(app, ctx):
    run_state_machine_as_test(PostLife, settings=settings(
        max_examples=30, stateful_step_count=12, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
