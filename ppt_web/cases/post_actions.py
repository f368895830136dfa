"""What a user may do with a journal post now, computed by the same guards the actions use.

The post page offers exactly these; a button the service would refuse is never shown, and a rule is
never written a second time in a template."""
from __future__ import annotations

from dataclasses import dataclass

from ..dispatch import expedition
from ..dispatch import service as dispatch
from ..models import Dispatch, JournalPost, User
from . import approval, esign, hold_back, posts


@dataclass(frozen=True)
class PostActions:
    edit: bool
    sign: bool
    finalize: bool
    request_approval: bool
    decide: bool
    dispatch: bool
    record_paper: bool  # Registrer sendt på papir
    retry_dispatch: frozenset[int]  # the ids of the post's dispatches the actor may retry
    correct_metadata: bool
    write_off: bool
    delete: bool
    decide_hold: bool  # the leader's decision on a post held back from access (cases/hold_back.py)


def allowed(actor: User, post: JournalPost, dispatches: list[Dispatch] | None = None) -> PostActions:
    """Each action the actor may take on the post now (a missing field still disables finalize and approval).
    dispatches: the post's dispatch rows, when the caller has them already."""
    if dispatches is None:
        dispatches = dispatch.for_post(post)
    return PostActions(
        edit=posts.edit_refusal(actor, post) is None,
        sign=esign.sign_refusal(actor, post) is None,
        finalize=posts.finalize_refusal(actor, post) is None,
        request_approval=approval.request_refusal(actor, post) is None,
        decide=approval.refusal(actor, post) is None,
        dispatch=dispatch.dispatch_refusal(actor, post) is None,
        record_paper=expedition.paper_refusal(actor, post) is None,
        retry_dispatch=frozenset(row.id for row in dispatches if dispatch.retry_refusal(actor, row) is None),
        correct_metadata=posts.correct_refusal(actor, post) is None,
        write_off=posts.write_off_refusal(actor, post) is None,
        delete=posts.delete_refusal(actor, post) is None,
        decide_hold=hold_back.release_refusal(actor, post) is None,  # release, or keep while undecided
    )
