"""The leader's decision on a post held back from access: the list, the decision page, release and keep;
and the page images of a document (cases/hold_back.py)."""
from flask import flash, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, TextAreaField

from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Conflict, Invalid
from ..form_tokens import AlreadyMade
from ..formtools import OnceForm, apply_error, go
from . import hold_back
from .blueprint import bp

SEARCH = ("search_own", "search_all")


class ReleaseForm(OnceForm):
    """Release: sent twice, it decides once; `seen` names the post as the page showed it."""

    seen = HiddenField()


class KeepForm(OnceForm):
    reason = TextAreaField(_l("Why it stays held back"), render_kw={"maxlength": hold_back.REASON_MAX, "rows": 3})


def _page(post_id: int, release: ReleaseForm | None = None, keep: KeepForm | None = None, status: int = 200):
    actor = _actor()
    post = hold_back.open_for_decision(actor, post_id)
    release = release or ReleaseForm()
    release.seen.data = hold_back.seen_version(post)  # always the post as this page shows it now
    return render_template("cases/hold_back.html", post=post, release=release,
                           keep=keep or KeepForm(), can_release=hold_back.release_refusal(actor, post) is None,
                           can_keep=hold_back.keep_refusal(actor, post) is None), status


@bp.route("/hold-back")
@permission_required("approve")
def held_back():
    """Posts waiting for the decision, then posts kept held back (they can still be released)."""
    actor = _actor()
    return render_template("cases/hold_back_list.html", waiting=hold_back.waiting(actor, limit=LIST_SHOWN),
                           waiting_total=hold_back.count(actor), kept=hold_back.kept(actor, limit=LIST_SHOWN),
                           kept_total=hold_back.count(actor, hold_back.KEPT))


LIST_SHOWN = 300


@bp.route("/posts/<int:post_id>/hold-back")
@permission_required("approve")
def hold_back_decision(post_id: int):
    return _page(post_id)


@bp.route("/posts/<int:post_id>/hold-back/release", methods=["POST"])
@permission_required("approve")
def release_held_back(post_id: int):
    form = ReleaseForm()
    form.validate_on_submit()
    try:
        post = hold_back.release(_actor(), post_id, form.form_token.data, form.seen.data)
    except AlreadyMade:
        flash(_("This form was sent already. Here is what it made."), "info")
        return go(url_for("cases.post", post_id=post_id))
    except (Invalid, Conflict) as exc:
        apply_error(form, exc)
        return _page(post_id, release=form, status=exc.status)
    flash(_("Released: journal post %(number)s is finalized and goes to the archive.", number=post.number),
          "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/posts/<int:post_id>/hold-back/keep", methods=["POST"])
@permission_required("approve")
def keep_held_back(post_id: int):
    form = KeepForm()
    form.validate_on_submit()
    try:
        post = hold_back.keep(_actor(), post_id, form.reason.data or "", form.form_token.data)
    except AlreadyMade:
        flash(_("This form was sent already. Here is what it made."), "info")
        return go(url_for("cases.post", post_id=post_id))
    except (Invalid, Conflict) as exc:
        apply_error(form, exc)
        return _page(post_id, keep=form, status=exc.status)
    flash(_("Journal post %(number)s stays held back from access.", number=post.number), "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/documents/<int:document_id>/pages/<int:page>.jpg")
@permission_required(*SEARCH)
def document_page(document_id: int, page: int):
    """One page of a document as an image, for those who may see the document; never cached."""
    path = hold_back.document_page(_actor(), document_id, page)
    if path is None:
        raise Conflict(_("There is no preview of this page."))
    response = send_file(path, mimetype="image/jpeg", conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
