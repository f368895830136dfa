"""Journal posts and their documents: register, edit, finalize, correct, write off, delete; the outstanding list."""

from flask import abort, current_app, flash, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import addresses, validation
from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..clients import organisations
from ..clock import today
from ..dispatch import expedition
from ..dispatch.service import for_post
from ..errors import Conflict, Invalid
from ..files.storage import checked_path
from ..form_tokens import AlreadyMade
from ..formtools import apply_error, choices, form_status, go, id_or_none, to_what_was_made
from ..i18n import parse_day
from ..labels import POST_TYPE_LABELS, WRITE_OFF_LABELS
from ..models import PostType
from ..postreg.service import CHECK_LABELS, document_checks
from . import approval, esign, post_actions, posts
from .blueprint import bp
from .forms import (
    ApprovalDecisionForm,
    ApprovalRequestForm,
    CorrectionForm,
    DeleteForm,
    PostForm,
    WriteOffForm,
)


def _post_form(form: PostForm, post_type: str | None = None) -> PostForm:
    form.post_type.choices = [(t.value, f"{t.value} – {POST_TYPE_LABELS[t.value]}") for t in PostType]
    org_choices = choices(organisations.organisations())
    for entry in form.correspondents:
        entry.form.organisation_id.choices = org_choices
    return form


def _post_data(form: PostForm, post_type: str) -> posts.PostData:
    return posts.PostData(
        post_type=post_type, title=form.title.data or "", document_date=form.document_date.data,
        received_on=form.received_on.data, sent_on=form.sent_on.data,
        registered_after_downtime=bool(form.registered_after_downtime.data),
        legal_basis=form.legal_basis.data or "",
        correspondents=[posts.CorrespondentData(name=e.form.name.data or "", address=e.form.address.data or "",
                                                organisation_id=e.form.organisation_id.data,
                                                national_id=e.form.national_id.data or "",
                                                postal_code=e.form.postal_code.data or "",
                                                city=e.form.city.data or "", country=e.form.country.data or "")
                        for e in form.correspondents])


def _show_error(form: PostForm, exc: Invalid | Conflict) -> None:
    """apply_error, and a correspondent's own field (correspondents-<n>-postal_code, ...) beside it."""
    name = exc.details.get("field") or ""
    for entry in form.correspondents if name.startswith("correspondents-") else ():
        for sub in entry.form:
            if sub.name == name:
                sub.errors = list(sub.errors) + [str(exc.message)]
                return
    apply_error(form, exc)


def _uploads(form: PostForm) -> tuple[posts.Upload | None, list[posts.Upload]]:
    main = form.main_document.data
    main_upload = posts.Upload(main.stream, main.filename or "") if main and main.filename else None
    attachments = [posts.Upload(f.stream, f.filename or "") for f in (form.attachments.data or [])
                   if f and f.filename]
    return main_upload, attachments


@bp.route("/cases/<int:case_id>/posts/new", methods=["GET", "POST"])
@permission_required("journal")
def new_post(case_id: int):

    found = scope.case(_actor(), case_id)
    form = _post_form(PostForm())
    if request.method == "GET":
        form.post_type.data = request.args.get("type", "N")
    if form.validate_on_submit():
        try:
            main, attachments = _uploads(form)
            post = posts.create_post(_actor(), case_id, _post_data(form, form.post_type.data), main, attachments,
                                     token=form.form_token.data)
        except AlreadyMade as made:
            return to_what_was_made(made)
        except (Invalid, Conflict) as exc:
            _show_error(form, exc)
        else:
            flash(_("Journal post %(number)s registered.", number=post.number), "success")
            return go(url_for("cases.post", post_id=post.id))
    return render_template("cases/post_form.html", form=form, case=found, post=None), form_status()


@bp.route("/posts/validate/<field>", methods=["POST"])
@permission_required("journal")
def validate_post_field(field: str):
    """Inline validation as you type: re-render one field with its errors, save nothing."""
    form = _post_form(PostForm())
    form.validate()
    if field not in form._fields or field in ("main_document", "attachments", "correspondents", "csrf_token"):
        abort(404)

    target = form[field]
    try:
        if field in ("document_date", "received_on", "sent_on") and target.data:
            validation.not_in_future(target.data, field, today())
        if field == "title" and not (target.data or "").strip():
            raise Invalid(_("A title is needed before the post can be finalized."), field="title")
    except Invalid as exc:
        target.errors = list(target.errors) + [str(exc.message)]
    return render_template("cases/_field.html", field=target, form=form)


@bp.route("/posts/<int:post_id>")
@permission_required("search_own", "search_all")
def post(post_id: int):
    found = posts.open_post(_actor(), post_id)
    write_off = WriteOffForm()
    write_off.method.choices = [(k, f"{k} – {v}") for k, v in WRITE_OFF_LABELS.items()]
    write_off.reply_post_id.choices = choices([p for p in found.case.posts if p.post_type == PostType.U],
                                              lambda p: f"{p.number} {p.title}")
    checks = document_checks(found.main_document.id) if found.main_document else []
    request_form = ApprovalRequestForm()
    request_form.approver_id.choices = [(u.id, u.full_name) for u in approval.approvers(found)
                                        if u.id != current_user.id]
    dispatches = for_post(found)
    return render_template("cases/post.html", post=found, missing=posts.missing_for_finalize(found),
                           corrections=posts.corrections(found), write_off=write_off, delete_form=DeleteForm(),
                           checks=checks, check_labels=CHECK_LABELS, approval_request=request_form,
                           decision=_decision_form(), needs_approval=posts.needs_approval(found),
                           can=post_actions.allowed(_actor(), found, dispatches),
                           signatures=esign.signatures(found), signature_status=esign.signature_status(found),
                           dispatches=dispatches, paper_default=expedition.paper_default(found))


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
@permission_required("journal", "fix_misregistered")
def edit_post(post_id: int):
    found = posts.editable(_actor(), post_id)
    form = _post_form(PostForm(obj=found) if request.method == "GET" else PostForm())
    if request.method == "GET":
        _fill_correspondents(form, found)
    if form.validate_on_submit():
        try:
            main, attachments = _uploads(form)
            posts.update_post(_actor(), post_id, _post_data(form, found.post_type.value), main, attachments)
        except (Invalid, Conflict) as exc:
            _show_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return go(url_for("cases.post", post_id=post_id))
    return render_template("cases/post_form.html", form=form, case=found.case, post=found), form_status()


def _fill_correspondents(form: PostForm, post) -> None:
    for entry, c in zip(form.correspondents, post.correspondents, strict=False):  # the form may have more rows
        where = addresses.structured(c.address or "", c.postal_code or "", c.city or "", c.country or "NO")
        entry.form.name.data = c.name
        entry.form.address.data = "\n".join(where.lines) if where else ""
        entry.form.postal_code.data, entry.form.city.data = (where.postal_code, where.city) if where else ("", "")
        entry.form.country.data = where.country if where else (c.country or "NO")
        entry.form.organisation_id.data = c.organisation_id
        entry.form.national_id.data = c.national_id or ""


@bp.route("/posts/<int:post_id>/documents/<int:document_id>/remove", methods=["POST"])
@permission_required("journal", "fix_misregistered")
def remove_document(post_id: int, document_id: int):
    posts.remove_document(_actor(), post_id, document_id)
    return go(url_for("cases.edit_post", post_id=post_id))


@bp.route("/posts/<int:post_id>/finalize", methods=["POST"])
@permission_required("journal")
def finalize(post_id: int):
    post = posts.finalize(_actor(), post_id)
    flash(_("Journal post %(number)s is finalized and can no longer change.", number=post.number), "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/posts/<int:post_id>/delete", methods=["POST"])
@permission_required("fix_misregistered")
def delete_post(post_id: int):
    found = scope.post(_actor(), post_id)
    case_id = found.case_id
    form = DeleteForm()
    posts.delete_post(_actor(), post_id, form.reason.data or "")
    flash(_("The journal post was deleted. The activity log keeps what it held."), "success")
    return go(url_for("cases.case", case_id=case_id))


@bp.route("/posts/<int:post_id>/correct", methods=["GET", "POST"])
@permission_required("correct_metadata")
def correct(post_id: int):
    found = scope.post(_actor(), post_id)
    refusal = posts.correct_refusal(_actor(), found)
    if refusal is not None:
        # A dispatched post (or a draft) gets no correction form: the post page, with the reason.
        flash(str(refusal.message), "error")
        return go(url_for("cases.post", post_id=post_id))
    form = _post_form(CorrectionForm(obj=found) if request.method == "GET" else CorrectionForm())
    if request.method == "GET":
        _fill_correspondents(form, found)
        form.version.data = str(posts.correction_version(found))
    if form.validate_on_submit():
        seen = form.version.data
        try:
            posts.correct_metadata(_actor(), post_id, form.reason.data, _post_data(form, found.post_type.value),
                                   version=int(seen) if seen and seen.isascii() and seen.isdigit() and len(seen) < 19
                                   else None)
        except posts.ChangedMeanwhile as exc:
            # Look again: the form shows the post as it is now, with the reason kept.
            found = scope.post(_actor(), post_id)
            fresh = _post_form(CorrectionForm(formdata=None, obj=found))
            _fill_correspondents(fresh, found)
            fresh.version.data, fresh.reason.data = str(posts.correction_version(found)), form.reason.data
            fresh.form_errors.append(str(exc.message))
            return render_template("cases/correct.html", form=fresh, post=found), 409
        except (Invalid, Conflict) as exc:
            _show_error(form, exc)
        else:
            flash(_("The metadata is corrected. Old and new values are on the post's history."), "success")
            return go(url_for("cases.post", post_id=post_id))
    return render_template("cases/correct.html", form=form, post=found), form_status()


@bp.route("/posts/<int:post_id>/sent-on-paper", methods=["POST"])
@permission_required("send")
def sent_on_paper(post_id: int):
    """Registrer sendt på papir: the letter went out on paper on the given day."""
    raw = (request.form.get("sent_on") or "").strip()
    on = parse_day(raw) if raw else None
    if raw and on is None:
        flash(_("Write the date as dd.mm.yyyy, for example 24.12.2026."), "error")
        return go(url_for("cases.post", post_id=post_id))
    try:
        found = expedition.record_paper(_actor(), post_id, on)
    except (Invalid, Conflict) as exc:
        flash(str(exc.message), "error")
    else:
        flash(_("The letter is recorded as sent on paper on %(date)s.",
                date=found.expedited_on.strftime("%d.%m.%Y") if found.expedited_on else ""), "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/posts/<int:post_id>/write-off", methods=["POST"])
@permission_required("journal")
def write_off(post_id: int):
    posts.write_off(_actor(), post_id, request.form.get("method", ""), id_or_none(request.form.get("reply_post_id")))
    flash(_("The post is written off."), "success")
    return go(url_for("cases.post", post_id=post_id))


@bp.route("/posts/outstanding")
@permission_required("search_own", "search_all")
def outstanding():
    """Restanseliste: one's own and co-handled cases; with search_all everyone's, filtered by ?handler=<id>."""
    actor = _actor()
    sees_all = scope.sees_all(actor)
    handler_id = id_or_none(request.args.get("handler")) if sees_all else None
    rows = posts.outstanding(actor, handler_id, limit=OUTSTANDING_SHOWN)
    total = len(rows) if len(rows) < OUTSTANDING_SHOWN else posts.outstanding_count(actor, handler_id)
    return render_template("cases/outstanding.html", posts=rows, total=total, handler_id=handler_id,
                           handlers=posts.outstanding_handlers() if sees_all else [])


OUTSTANDING_SHOWN = 300


@bp.route("/documents/<int:document_id>")
@permission_required("search_own", "search_all")
def document(document_id: int):
    """The PDF, inline in the browser; never cached, never sniffed, with a safe file name."""
    doc = posts.open_document(_actor(), document_id)
    response = send_file(checked_path(doc.sha256, doc.filename), mimetype="application/pdf", as_attachment=False,
                         download_name=doc.filename, conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"  # the PDF viewer needs no more
    return response


def _decision_form() -> ApprovalDecisionForm:
    """The approver's form: "sign" ticked when the service's certificate signs; with the app's test
    certificate the leader ticks it on purpose, so no letter leaves with a test signature by default."""
    return ApprovalDecisionForm(sign=bool(current_app.config.get("PPT_SIGNING_P12")))
