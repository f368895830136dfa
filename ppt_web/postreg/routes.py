"""Post registration views: the live inbox, an item next to its registration form, paper originals."""
from datetime import date

from flask import flash, render_template, request, send_file, url_for
from flask_babel import gettext as _

from .. import addresses, runtime_settings
from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..clients import organisations
from ..clock import OSLO
from ..errors import Conflict, Invalid, NotFound
from ..files import preview
from ..files.storage import checked_path
from ..form_tokens import AlreadyMade
from ..formtools import apply_error, choices, form_status, go, id_or_none, to_what_was_made
from ..labels import CATEGORY_LABELS
from ..links import id_prefix
from ..models import CaseCategory
from ..search.service import pick_clients
from . import intake, service, sync_intake
from . import split as splitting
from . import transfer as transferring
from . import upload as uploads
from .blueprint import bp
from .forms import RejectForm, SplitForm, TransferForm, UploadForm


def _no_store(response):
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/")
@permission_required("distribute_mail")
def inbox():
    which = request.args.get("which", "open")
    which = which if which in service.FILTERS else "open"
    before = id_or_none(request.args.get("before"))
    page = service.inbox_rows(_actor(), which, before_id=before)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "inbox-rows":
        return render_template("postreg/_rows.html", page=page, which=which, before=before,
                               skip_reasons=sync_intake.SKIP_REASONS, item_href=id_prefix("postreg.item", "item_id"))
    return render_template("postreg/inbox.html", page=page, which=which, before=before, upload=UploadForm(),
                           skip_reasons=sync_intake.SKIP_REASONS, item_href=id_prefix("postreg.item", "item_id"),
                           unread=intake.unread())


@bp.route("/upload", methods=["POST"])
@permission_required("distribute_mail")
def upload():
    form = UploadForm()
    if form.validate_on_submit():
        file = form.file.data
        if not file or not file.filename:
            form.file.errors = [_("Choose a PDF file.")]
        else:
            try:
                item = uploads.receive_upload(_actor(), file.stream, file.filename, token=form.form_token.data)
            except AlreadyMade as made:
                return to_what_was_made(made)
            except Invalid as exc:
                apply_error(form, exc)
            else:
                flash(_("%(name)s is in the inbox.", name=item.filename), "success")
                return go(url_for("postreg.item", item_id=item.id))
    page = service.inbox_rows(_actor(), "open")
    return render_template("postreg/inbox.html", page=page, which="open", before=None, upload=form,
                           skip_reasons=sync_intake.SKIP_REASONS, item_href=id_prefix("postreg.item", "item_id"),
                           unread=intake.unread()), form_status()


def _transfer_form(item, form: TransferForm | None = None) -> TransferForm:
    form = form or TransferForm()
    form.new_case_category.choices = [("", _("(none)"))] + [(c.value, str(CATEGORY_LABELS[c.value]))
                                                             for c in CaseCategory]
    form.sender_organisation_id.choices = choices(organisations.organisations(), empty=_("(none)"))
    form.case_id.choices = [("", _("(choose)"))]
    if request.method == "GET":
        meta = item.meta or {}
        form.title.data = form.title.data or meta.get("title", "")
        form.sender_name.data = form.sender_name.data or meta.get("sender_name", "")
        _fill_sender_address(form, meta)
        form.storage_place.data = runtime_settings.value("paper.storage_place")
        form.hold_back.data = form.hold_back.data or item.hold_back_required
        form.received_on.data = item.arrived_at.astimezone(OSLO).date()
        if meta.get("document_date"):
            form.document_date.data = date.fromisoformat(meta["document_date"])
        if meta.get("sender_org_number") and form.sender_organisation_id.data is None:
            known = transferring.organisation_by_number(meta["sender_org_number"])
            form.sender_organisation_id.data = known.id if known else None
    return form


def _fill_sender_address(form: TransferForm, meta: dict) -> None:
    """The sender's address from the intake: its structured fields, or (items taken in before they
    were kept) the one line split."""
    if form.sender_address.data or form.sender_postal_code.data:
        return
    if "sender_postal_code" in meta:
        form.sender_address.data = meta.get("sender_street", "")
        form.sender_postal_code.data, form.sender_city.data = meta["sender_postal_code"], meta.get("sender_city", "")
        form.sender_country.data = meta.get("sender_country") or "NO"
        return
    where = addresses.structured(meta.get("sender_address", ""), "", "")
    if where is not None:
        form.sender_address.data = "\n".join(where.lines)
        form.sender_postal_code.data, form.sender_city.data = where.postal_code, where.city


def _client_choice(client_id: int | None):
    """The chosen client and its open cases, for the case select."""
    if not client_id:
        return None, []
    client = scope.client(_actor(), client_id)
    return client, transferring.open_cases(_actor(), client)


def _item_page(item, transfer: TransferForm | None = None, split: SplitForm | None = None,
               reject: RejectForm | None = None, status: int = 200):
    transfer = _transfer_form(item, transfer)
    client, cases = _client_choice(id_or_none(transfer.client_id.data))
    transfer.case_id.choices = [("", _("(choose)"))] + [(c.id, f"{c.number} {c.title}") for c in cases]
    return render_template("postreg/item.html", item=item, transfer=transfer, split=split or SplitForm(),
                           reject=reject or RejectForm(), client=client, check_labels=service.CHECK_LABELS,
                           reason_text=intake.reason_text, skip_reasons=sync_intake.SKIP_REASONS), status


@bp.route("/<int:item_id>")
@permission_required("distribute_mail")
def item(item_id: int):
    found = service.open_item(_actor(), item_id)
    return _item_page(found)


@bp.route("/<int:item_id>/take-over", methods=["POST"])
@permission_required("distribute_mail")
def take_over(item_id: int):
    service.take_over(_actor(), item_id)
    return go(url_for("postreg.item", item_id=item_id))


@bp.route("/<int:item_id>/checks/<int:point>", methods=["POST"])
@permission_required("distribute_mail")
def check(item_id: int, point: int):
    found = service.set_check(_actor(), item_id, point, request.form.get("checked") == "1")
    if request.headers.get("HX-Request"):
        return render_template("postreg/_checklist.html", item=found, check_labels=service.CHECK_LABELS)
    return go(url_for("postreg.item", item_id=item_id))


@bp.route("/<int:item_id>/clients", methods=["POST"])
@permission_required("distribute_mail")
def find_clients(item_id: int):
    """Clients by name or national id (POSTed: a national id never goes into a URL)."""
    found = pick_clients(_actor(), request.form.get("client_q", ""))
    return render_template("postreg/_client_results.html", clients=found, item_id=item_id,
                           query=request.form.get("client_q", ""))


@bp.route("/<int:item_id>/client/<int:client_id>")
@permission_required("distribute_mail")
def choose_client(item_id: int, client_id: int):
    found = service.open_item(_actor(), item_id)
    form = _transfer_form(found)
    client, cases = _client_choice(client_id)
    if client is None:  # 0: no client id at all
        raise NotFound(object_type="client", object_id=client_id)
    form.client_id.data = client.id
    form.case_id.choices = [("", _("(choose)"))] + [(c.id, f"{c.number} {c.title}") for c in cases]
    return render_template("postreg/_client_choice.html", item=found, transfer=form, client=client)


@bp.route("/<int:item_id>/transfer", methods=["POST"])
@permission_required("distribute_mail")
def transfer(item_id: int):
    found = service.open_item(_actor(), item_id)
    form = _transfer_form(found, TransferForm())
    if form.validate_on_submit():
        data = transferring.TransferData(
            client_id=id_or_none(form.client_id.data), case_id=form.case_id.data,
            new_case_category=form.new_case_category.data or "", new_case_title=form.new_case_title.data or "",
            title=form.title.data or "", document_date=form.document_date.data, received_on=form.received_on.data,
            sender_name=form.sender_name.data or "", sender_address=form.sender_address.data or "",
            sender_postal_code=form.sender_postal_code.data or "", sender_city=form.sender_city.data or "",
            sender_country=form.sender_country.data or "",
            sender_organisation_id=form.sender_organisation_id.data, legal_basis=form.legal_basis.data or "",
            hold_back=form.hold_back.data, after_downtime=form.after_downtime.data,
            storage_place=form.storage_place.data or "")
        try:
            done = transferring.transfer(_actor(), item_id, data)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            assert done.post is not None  # transfer makes the item's post
            if data.hold_back:
                flash(_("Transferred as %(number)s, held back from access: it waits for the leader.",
                        number=done.post.number), "success")
            else:
                flash(_("Transferred and finalized as %(number)s.", number=done.post.number), "success")
            return go(url_for("postreg.inbox"))
    return _item_page(found, transfer=form, status=form_status())


@bp.route("/<int:item_id>/split", methods=["POST"])
@permission_required("distribute_mail")
def split(item_id: int):
    found = service.open_item(_actor(), item_id)
    form = SplitForm()
    if form.validate_on_submit():
        try:
            parts = splitting.split(_actor(), item_id, form.ranges.data)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("Split into %(n)s documents.", n=len(parts)), "success")
            return go(url_for("postreg.inbox"))
    return _item_page(found, split=form, status=form_status())


@bp.route("/<int:item_id>/reject", methods=["POST"])
@permission_required("distribute_mail")
def reject(item_id: int):
    found = service.open_item(_actor(), item_id)
    form = RejectForm()
    if form.validate_on_submit():
        try:
            service.reject(_actor(), item_id, form.reason.data)
        except (Invalid, Conflict) as exc:
            apply_error(form, exc)
        else:
            flash(_("The item is rejected and kept with the reason."), "success")
            return go(url_for("postreg.inbox"))
    return _item_page(found, reject=form, status=form_status())


@bp.route("/<int:item_id>/refusal-seen", methods=["POST"])
@permission_required("distribute_mail")
def refusal_seen(item_id: int):
    service.acknowledge_refusal(_actor(), item_id)
    return go(url_for("postreg.inbox"))


@bp.route("/<int:item_id>/pages/<int:page>.jpg")
@permission_required("distribute_mail")
def page_image(item_id: int, page: int):
    found = service.item_for_reading(_actor(), item_id)
    path = preview.page_image(found.sha256, page) if found.sha256 and page <= (found.page_count or 0) else None
    if path is None:
        raise Conflict(_("There is no preview of this page."))
    return _no_store(send_file(path, mimetype="image/jpeg", conditional=False, etag=False, max_age=0))


@bp.route("/<int:item_id>/file")
@permission_required("distribute_mail")
def item_file(item_id: int):
    """The PDF inline; a refused file only as a download, since it may be anything."""
    found = service.item_for_reading(_actor(), item_id)
    if found.document_id is not None:  # filed: read it as the document, scoped and logged like any other
        return go(url_for("cases.document", document_id=found.document_id))
    service.log_file_opened(_actor(), found)
    if found.sha256:
        response = send_file(checked_path(found.sha256, found.filename), mimetype="application/pdf",
                             download_name=found.filename,
                             conditional=False, etag=False, max_age=0)
        response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
        return _no_store(response)
    kept = intake.quarantine_path(found.quarantine_name or "")
    if kept is None:
        raise Conflict(_("The file of this item is missing from the quarantine folder."))
    return _no_store(send_file(kept, mimetype="application/octet-stream", as_attachment=True,
                               download_name=found.quarantine_name, conditional=False, etag=False, max_age=0))
