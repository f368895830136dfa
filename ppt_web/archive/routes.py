"""The archive log (arkivlogg): live, failed first, filters, retry, bulk retry, delete."""
import json
import logging
import threading
from datetime import date
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, current_app, flash, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from ..auth import scope
from ..auth.access import current_actor as _actor
from ..auth.access import permission_required
from ..errors import Invalid
from ..formtools import go, id_or_none
from ..i18n import date_problem, labels, parse_day, period_problem
from ..models import JobStatus
from . import actions, identity, job_messages, transports
from . import log as archive_log
from .conventions import DEFAULTS as message_defaults
from .conventions import case_key
from .transports import query

logger = logging.getLogger(__name__)

bp = Blueprint("archive", __name__, url_prefix="/archive-log")


def _date(name: str) -> date | None:
    return parse_day(request.values.get(name, "")[:20])


def _date_problems() -> dict:
    """The filter's typed dates that name no day (or a period backwards): {field: (message, as typed)}.
    Such a date filters nothing; the page says why and keeps what was typed."""
    problems = {}
    for name in ("date_from", "date_to"):
        typed = request.values.get(name, "")[:20]
        problem = date_problem(typed)
        if problem:
            problems[name] = (problem, typed)
    backwards = period_problem(_date("date_from"), _date("date_to"))
    if backwards:
        problems["date_to"] = (backwards, request.values.get("date_to", "")[:20])
    return problems


def _filter() -> archive_log.LogFilter:
    status = request.values.get("status", "")[:20]
    if status == "deleted" and not current_user.can("archive_delete"):
        status = ""  # the deleted jobs (and their reasons) are listed for those who may delete and restore
    return archive_log.LogFilter(status=status,
                                 event=request.values.get("event", "")[:30],
                                 date_from=_date("date_from"), date_to=_date("date_to"),
                                 # by a client's name only for those who may see every client: for another
                                 # reader (names hidden) it would tie a name to the rows of that client's cases
                                 client=request.values.get("client", "")[:80] if current_user.can("search_all")
                                 else "")


def _filter_args(flt: archive_log.LogFilter) -> dict:
    return {k: v for k, v in {"status": flt.status, "event": flt.event, "client": flt.client,
                              "date_from": flt.date_from.isoformat() if flt.date_from else "",
                              "date_to": flt.date_to.isoformat() if flt.date_to else ""}.items() if v}


# A link's address around the id, per endpoint: url_for once per page, then joined per row.
_LINKS = {"post": ("cases.post", "post_id"), "case": ("cases.case", "case_id"),
          "client": ("clients.folder", "client_id"), "retry": ("archive.retry", "job_id"),
          "restore": ("archive.restore", "job_id"), "delete": ("archive.delete", "job_id")}
_PLACEHOLDER = 2147480009  # an id no page links to, split out of url_for's address

# Finished jobs' rows as HTML, kept per process: at most this many, the oldest kept dropped first.
KEPT_ROWS = 5000
_kept_lock = threading.Lock()


class JobRows:
    """The archive log's rows as HTML, from archive/log.py's rows and the one row macro (archive/_row.html).

    What every row shares is worked out once per page: labels and words in the reader's language, link
    prefixes, and what the reader may see (clients' names) and do (retry, delete). A finished job (Utført)
    that is not deleted changes only through its columns, so its row's HTML is kept, keyed by every value
    the row shows (the whole row of the query), the language, the reader's rights and the script root:
    a changed job, a renamed client or another reader's rights make another key, never a stale row."""

    def __init__(self, can_retry: bool, can_delete: bool):
        self.can_retry, self.can_delete = can_retry, can_delete
        self.names = current_user.can("search_all")
        shown = labels()
        self.operations = shown["operation_labels"]
        self.job_statuses, self.archive_statuses = shown["job_status_labels"], shown["archive_status_labels"]
        self.words = {"correct": Markup(_("Correct it")), "deleted": Markup(_("Deleted")),
                      "post": Markup(_("Journal post")), "case": Markup(_("Case")), "client": Markup(_("Client")),
                      "retry": Markup(_("Retry")), "restore": Markup(_("Restore")), "delete": Markup(_("Delete"))}
        self._links = {}
        for name, (endpoint, argument) in _LINKS.items():
            values: dict[str, Any] = {argument: _PLACEHOLDER}
            head, tail = url_for(endpoint, **values).split(str(_PLACEHOLDER))
            self._links[name] = (head, tail)
        self._key = (str(get_locale()), self.names, can_retry, can_delete, request.script_root)
        self._macro = current_app.jinja_env.get_template("archive/_row.html").module.job_row  # type: ignore[attr-defined]
        self._kept: dict = current_app.extensions.setdefault("ppt_archive_rows", {})

    def url(self, name: str, object_id: int) -> str:
        head, tail = self._links[name]
        return f"{head}{object_id}{tail}"

    def __call__(self, rows: list) -> list[Markup]:
        return [self.row(row) for row in rows]

    def row(self, row) -> Markup:
        keep = row.job_status == JobStatus.DONE and row.deleted_at is None
        key = (tuple(row), self._key) if keep else None
        if keep and (html := self._kept.get(key)) is not None:
            return html
        html = self._macro(self._job(row), self)
        if keep:
            with _kept_lock:
                if len(self._kept) >= KEPT_ROWS:
                    del self._kept[next(iter(self._kept))]
                self._kept[key] = html
        return html

    @staticmethod
    def _job(row) -> SimpleNamespace:
        """The row as the macro reads it: the message in the reader's language, the post's number."""
        params = json.loads(row.message_params_json) if row.message_params_json else None
        job = SimpleNamespace(**row._mapping, message_params=params)
        job.shown_message = job_messages.shown(job)  # type: ignore[arg-type]
        job.correction_url = job_messages.correction_url(job) if row.archive_status == "failed" else None  # type: ignore[arg-type]
        job.post_number = (f"{row.post_case_number}-{row.post_seq}" if row.post_seq is not None
                           else row.case_number)
        job.client_name = (f"{row.client_given_name} {row.client_family_name}" if row.client_given_name is not None
                           else None)
        return job


@bp.route("/")
@permission_required("archive_log")
def log():
    flt = _filter()
    before = id_or_none(request.args.get("before"))
    found = archive_log.log_page(flt, before)
    can_retry, can_delete = current_user.can("archive_retry"), current_user.can("archive_delete")
    rows = JobRows(can_retry, can_delete)
    page = {"failed": rows(found["failed"]), "rows": rows(found["rows"]), "next_before": found["next_before"]}
    context = {"page": page, "flt": flt, "before": before, "args": _filter_args(flt), "date_problems": _date_problems(),
               "failed_count": _retryable_count(flt), "can_retry": can_retry, "can_delete": can_delete}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "archive-rows":
        return render_template("archive/_rows.html", **context)
    return render_template("archive/log.html", **context)


def _retryable_count(flt: archive_log.LogFilter) -> int:
    """What "Retry all failed" offers: never a deleted job (restoring one is the way back)."""
    return 0 if flt.status == "deleted" else actions.count_retryable(flt)


@bp.route("/<int:job_id>/retry", methods=["POST"])
@permission_required("archive_retry")
def retry(job_id: int):
    job = actions.retry(_actor(), job_id)
    if request.headers.get("HX-Request"):
        return JobRows(True, current_user.can("archive_delete"))(archive_log.job_rows([job.id]))[0]
    return go(url_for("archive.log"))


@bp.route("/retry-all", methods=["POST"])
@permission_required("archive_retry")
def retry_all():
    flt = _filter()
    if flt.status == "deleted":
        raise Invalid(_l("Deleted jobs are not retried. Restore a job first."))
    if request.form.get("confirm") != "1":
        return render_template("archive/_confirm_retry.html", count=actions.count_retryable(flt),
                               args=_filter_args(flt))
    count = actions.bulk_retry(_actor(), flt)
    flash(_("%(n)s failed jobs were set back to New.", n=count), "success")
    return go(url_for("archive.log", **_filter_args(flt)))


@bp.route("/<int:job_id>/delete", methods=["GET", "POST"])
@permission_required("archive_delete")
def delete(job_id: int):
    job = actions.get(job_id)
    error = None
    if request.method == "POST":
        try:
            actions.delete(_actor(), job_id, request.form.get("reason", ""), request.form.get("confirmation", ""))
        except Invalid as exc:
            error = str(exc.message)
        else:
            flash(_("The archive job was deleted. The activity log keeps its full content."), "success")
            return go(url_for("archive.log"))
    return render_template("archive/delete.html", job=job, error=error, word=actions.DELETE_WORD), \
        (422 if error else 200)


@bp.route("/<int:job_id>/restore", methods=["POST"])
@permission_required("archive_delete")
def restore(job_id: int):
    actions.restore(_actor(), job_id)
    flash(_("The archive job is restored."), "success")
    return go(url_for("archive.log"))


@bp.route("/case/<int:case_id>")
@permission_required("search_own", "search_all")
def case_copy(case_id: int):
    """Read-only: what our jobs say was archived, and the archive's own view of the case's folder (asked
    with a query message, so it shows what the archive holds, not what we sent)."""
    case = scope.case(_actor(), case_id)
    held = archive_log.archive_copy(case)
    return render_template("archive/case_copy.html", case=case, held=held, view=_archive_view(case))


def _archive_view(case) -> dict:
    conf = {**message_defaults, **identity.settings()}
    try:
        found = query.folder_view(transports.get_transport(), conf["system"], system_id=case.archive_system_id,
                                  fagsystem=conf["fagsystem"], noekkel=case_key(case))
    except Exception:  # noqa: BLE001 - the page must show even when the archive cannot be asked
        logger.exception("asking the archive for case %s failed", case.id)
        return {"folder": None, "state": "error", "text": ""}
    reply = found["reply"]
    if reply is None or reply.kind == transports.UNSUPPORTED:
        return {"folder": None, "state": "unsupported", "text": ""}
    if found["folder"] is not None:
        return {"folder": found["folder"], "state": "ok", "text": ""}
    return {"folder": None, "state": "not_found" if reply.kind == transports.NOT_FOUND else "error",
            "text": reply.text}
