"""Letters on a case: new letter from a template, the editor with autosave, the PDF preview."""
from __future__ import annotations

from flask import flash, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField

from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..cases import posts
from ..errors import Conflict, Forbidden, Invalid
from ..extensions import htmx
from ..form_tokens import AlreadyMade
from ..formtools import OnceForm, apply_error, form_status, go, id_or_none
from ..labels import POST_TYPE_LABELS
from ..models import PostStatus
from . import document, service, templates
from .blueprint import bp


class NewLetterForm(OnceForm):
    template_id = SelectField(_l("Template"), coerce=id_or_none, validate_choice=False)


@bp.route("/cases/<int:case_id>/letters/new", methods=["GET", "POST"])
@permission_required("journal")
def new_letter(case_id: int):
    """Nytt brev frå mal: choose a template and the recipients; the letter opens in the editor."""
    case = scope.case(_actor(), case_id)
    active = templates.active()
    form = NewLetterForm()
    form.template_id.choices = [("", "")] + [(t.id, t.name) for t in active]
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
    return render_template("letters/new_letter.html", form=form, case=case, templates=active, choices=choices,
                           chosen=set(chosen), recipient_error=recipient_error,
                           post_type_labels=POST_TYPE_LABELS), form_status()


def _state(letter, state: str = "saved", message: str = "", status: int = 200, version: int | None = None):
    """The status line (the version the next save is based on, and what happened); Vary is set app-wide.
    A refused save answers with the version it was sent on, never the newer one: a page that saves again
    after trimming its text must not overwrite what someone else saved meanwhile."""
    return make_response(render_template("letters/_letter_state.html", letter=letter,
                                         version=letter.version if version is None else version,
                                         state=state, message=message), status)


def _editor_page(post, found, *, body: str | None = None, version: int | None = None, state: str = "saved",
                 message: str = "", status: int = 200):
    """The letter page: the editor when the actor may change the letter, else the letter read-only."""
    refusal = service.save_refusal(_actor(), post)
    is_draft = post.status == PostStatus.DRAFT
    return render_template("letters/letter.html", post=post, letter=found, editable=refusal is None,
                           body=found.body if body is None else body,
                           version=found.version if version is None else version, state=state, message=message,
                           needs_approval=posts.needs_approval(post), is_draft=is_draft,
                           not_allowed=is_draft and isinstance(refusal, Forbidden)), status


@bp.route("/posts/<int:post_id>/letter")
@permission_required("search_own", "search_all")
def letter(post_id: int):
    """The letter's editor (a draft the user may edit), or the letter read-only with its PDF."""
    post, found = service.opened(_actor(), post_id)
    if found is None:
        flash(_("This post has no letter written in the app."), "info")
        return go(url_for("cases.post", post_id=post_id))
    return _editor_page(post, found)


@bp.route("/posts/<int:post_id>/letter/save", methods=["POST"])
@permission_required("journal", "fix_misregistered")
def save_letter(post_id: int):
    """Autosave (htmx): keep the text, answer the status line with the new version. ?beacon=1 is the text
    sent as the page closes: nobody reads that answer, so it is 204 whatever happened and never a flash.
    Without JS a refused save shows the editor again with the text as sent and why (409/422)."""
    beacon = request.args.get("beacon") == "1"
    raw = (request.form.get("version") or "").strip()
    version = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    body = request.form.get("body", "")
    try:
        saved = service.save(_actor(), post_id, body, version)
    except (Conflict, Invalid) as exc:
        if beacon:
            return "", 204
        post = scope.post(_actor(), post_id)
        current = service.letter_of(post)
        if current is None:
            raise
        state, status = ("conflict", 409) if isinstance(exc, Conflict) else ("invalid", 422)
        if not htmx:
            return _editor_page(post, current, body=body, version=version, state=state, message=str(exc.message),
                                status=status)
        return _state(current, state, str(exc.message), status, version=version or 0)
    if beacon:
        return "", 204
    if not htmx:
        flash(_("Saved."), "success")
        return go(url_for("letters.letter", post_id=post_id))
    return _state(saved)

@bp.route("/posts/<int:post_id>/letter/preview")
@permission_required("search_own", "search_all")
def preview(post_id: int):
    """A draft letter's PDF as it would be sent now (else the post's stored main document), inline in a new
    tab; never cached."""
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
