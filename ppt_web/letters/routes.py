"""Letters on a case: new letter from a template, the editor with autosave, the PDF preview."""
from __future__ import annotations

from flask import flash, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectField

from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..cases import posts
from ..errors import Conflict, Invalid
from ..extensions import db, htmx
from ..form_tokens import AlreadyMade
from ..formtools import OnceForm, apply_error, form_status, go, id_or_none
from ..labels import POST_TYPE_LABELS
from ..models import PostStatus
from ..models.letters import DocumentTemplate
from . import document, service
from .blueprint import bp


class NewLetterForm(OnceForm):
    template_id = SelectField(_l("Template"), coerce=id_or_none, validate_choice=False)


def _active_templates() -> list[DocumentTemplate]:
    """The templates a letter may be made from (the templates module's list when it has one)."""
    try:
        from . import templates  # noqa: PLC0415 - may not offer active() in every build

        return list(templates.active())
    except (ImportError, AttributeError):
        return list(db.session.scalars(select(DocumentTemplate).where(DocumentTemplate.retired_at.is_(None))
                                       .order_by(DocumentTemplate.kind, DocumentTemplate.name)))


@bp.route("/cases/<int:case_id>/letters/new", methods=["GET", "POST"])
@permission_required("journal")
def new_letter(case_id: int):
    """Nytt brev frå mal: choose a template and the recipients; the letter opens in the editor."""
    case = scope.case(_actor(), case_id)
    templates = _active_templates()
    form = NewLetterForm()
    form.template_id.choices = [("", "")] + [(t.id, t.name) for t in templates]
    choices = service.recipient_choices(_actor(), case)
    chosen = request.form.getlist("recipients") if request.method == "POST" else \
        [c.key for c in choices if c.kind == "guardian"]
    recipient_error = ""
    if form.validate_on_submit():
        try:
            post = service.new_letter(_actor(), case_id, form.template_id.data, chosen, token=form.form_token.data)
        except AlreadyMade as made:
            flash(_("This form was sent already. Here is what it made."), "info")
            return go(url_for("letters.letter", post_id=made.object_id))
        except (Invalid, Conflict) as exc:
            if exc.details.get("field") == "recipients":
                recipient_error = str(exc.message)
            else:
                apply_error(form, exc)
        else:
            flash(_("Journal post %(number)s registered.", number=post.number), "success")
            return go(url_for("letters.letter", post_id=post.id))
    return render_template("letters/new_letter.html", form=form, case=case, templates=templates, choices=choices,
                           chosen=set(chosen), recipient_error=recipient_error,
                           post_type_labels=POST_TYPE_LABELS), form_status()


def _state(letter, state: str = "saved", message: str = "", status: int = 200):
    response = make_response(render_template("letters/_letter_state.html", letter=letter, state=state,
                                             message=message), status)
    response.headers["Vary"] = "HX-Request"
    return response


@bp.route("/posts/<int:post_id>/letter")
@permission_required("search_own", "search_all")
def letter(post_id: int):
    """The letter's editor (a draft the user may edit), or the letter read-only with its PDF."""
    post, found = service.opened(_actor(), post_id)
    if found is None:
        flash(_("This post has no letter written in the app."), "info")
        return go(url_for("cases.post", post_id=post_id))
    editable = service.save_refusal(_actor(), post) is None
    return render_template("letters/letter.html", post=post, letter=found, editable=editable, state="saved",
                           message="", needs_approval=posts.needs_approval(post),
                           is_draft=post.status == PostStatus.DRAFT)


@bp.route("/posts/<int:post_id>/letter/save", methods=["POST"])
@permission_required("journal", "fix_misregistered")
def save_letter(post_id: int):
    """Autosave (htmx): keep the text, answer the status line with the new version."""
    raw = (request.form.get("version") or "").strip()
    version = int(raw) if raw.isdigit() and len(raw) < 10 else None
    try:
        saved = service.save(_actor(), post_id, request.form.get("body", ""), version)
    except (Conflict, Invalid) as exc:
        post = scope.post(_actor(), post_id)
        current = service.letter_of(post)
        if current is None:
            raise
        if not htmx:
            flash(str(exc.message), "error")
            return go(url_for("letters.letter", post_id=post_id))
        return _state(current, "conflict" if isinstance(exc, Conflict) else "invalid", str(exc.message),
                      409 if isinstance(exc, Conflict) else 422)
    if not htmx:
        flash(_("Saved."), "success")
        return go(url_for("letters.letter", post_id=post_id))
    return _state(saved)


@bp.route("/posts/<int:post_id>/letter/preview")
@permission_required("search_own", "search_all")
def preview(post_id: int):
    """The letter's PDF as it would be sent now, inline in a new tab; never cached."""
    data = service.preview(_actor(), post_id)
    if data is None:
        flash(_("This post has no letter written in the app."), "info")
        return go(url_for("cases.post", post_id=post_id))
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = "inline; filename=forehandsvising.pdf"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    return response


@bp.app_template_global("letter_of")
def letter_of(post):
    """The post's letter, for the post page's link to it (None: no letter)."""
    return service.letter_of(post)


@bp.app_template_global("letter_outdated")
def letter_outdated(post) -> bool:
    """A draft letter whose text, title or recipients changed since its PDF (the main document) was made."""
    letter = service.letter_of(post)
    return (letter is not None and post.status == PostStatus.DRAFT and not document.is_signed(post)
            and not document.up_to_date(post, letter))
