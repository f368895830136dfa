"""The archive log's Message column: stored as a code and its values, shown in the reader's language.

A consultant reading Bokmål or English sees the same message in that language; `ArchiveJob.message`
also keeps the text in the service's default language (Nynorsk), for exports, logs and jobs written
before the codes existed (those have no code and show that text as it is)."""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from flask_babel import force_locale

from ..i18n import N_, catalog, labels
from ..models import ArchiveJob

MESSAGES = {
    "waiting": N_("Waiting for «%(operation)s» (job %(job)s)."),
    "waiting_failed": N_("Waiting for «%(operation)s» (job %(job)s), which failed. Fix that one first."),
    "invalid": N_("The message is not valid and was not sent: %(detail)s"),
    "file_missing": N_("Could not send: %(detail)s"),
    "unarchivable_text": N_("Not sent: %(what)s holds a character the archive cannot carry (a control "
                            "character). Correct it, then retry the job."),
    "internal_error": N_("Internal error in the case system (%(kind)s). See the log; retry when the fault "
                         "is fixed."),
    "partly_refused": N_("The archive took the message in, but refused part of it: %(detail)s"),
    "archived": N_("Archived."),
    "archived_number": N_("Archived. Archive number %(number)s."),
    "archived_post": N_("Archived. Journal post number %(year)s/%(number)s."),
    "archived_folder": N_("Archived. Case number %(year)s/%(number)s."),
    "archived_post_in_case": N_("Archived as %(number)s."),
    "handed_over": N_("Handed over to the archive, waiting for its receipt."),
    "received": N_("Received by the archive, waiting for its receipt."),
    "retry_later": N_("Attempt %(attempt)s of %(limit)s failed: %(detail)s. Next attempt at %(time)s."),
    "gave_up": N_("Gave up after %(limit)s attempts: %(detail)s. Retry when the fault is fixed."),
    "refused": N_("%(detail)s"),
    "refused_silently": N_("The archive refused the message."),
    "worker_stopped": N_("The worker stopped in the middle of the job; the job is set back to New."),
    "no_receipt": N_("No receipt from the archive before the deadline."),
    "restarted": N_("Started again by %(name)s."),
}

OBJECTS = {"case": N_("the case"), "client": N_("the client"), "organisation": N_("the organisation"),
           "user": N_("a user's name"), "post": N_("the journal post")}


def render(code: str, params: dict) -> str:
    """The message in the current language (a request's, or the one force_locale sets)."""
    values = dict(params)
    if "what" in values:  # which object to correct, named in the reader's language
        values["what"] = catalog().ugettext(OBJECTS.get(values["what"], values["what"]))
    if "operation" in values:  # stored as the event's code, named as the reader calls it
        values["operation"] = labels()["operation_labels"].get(values["operation"], values["operation"])
    return catalog().ugettext(MESSAGES[code]) % values


def set_message(archive_job: ArchiveJob, code: str, /, **params) -> None:
    """Record what happened to the job: the code and values, and the text in the default language."""
    for column, value in message_values(code, **params).items():
        setattr(archive_job, column, value)


def message_values(code: str, /, **params) -> dict:
    """The columns of set_message, for a bulk UPDATE ... VALUES (no row object at hand)."""
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "nn")):
        text = render(code, params)
    return {"message_code": code, "message_params": params, "message": text[:4000]}


# Where the object named by "unarchivable_text" is corrected: (endpoint, its id argument).
CORRECTIONS = {"case": ("cases.correct_case", "case_id"), "post": ("cases.correct", "post_id"),
               "client": ("clients.edit_client", "client_id"), "organisation": ("clients.edit_organisation", "org_id"),
               "user": ("admin.edit_user", "user_id")}


def correction_url(job: ArchiveJob) -> str | None:
    """The page that corrects what a failed job waits for, when only a correction helps."""
    params = job.message_params or {}
    if job.message_code != "unarchivable_text" or params.get("what") not in CORRECTIONS:
        return None
    endpoint, argument = CORRECTIONS[params["what"]]
    object_id = job.case_id if params["what"] == "case" else params.get("object_id")
    values: dict[str, Any] = {argument: object_id}
    return url_for(endpoint, **values) if object_id else None


def shown(job: ArchiveJob) -> str:
    """The Message column for the reader: from the code when the job has one, else the stored text."""
    if job.message_code in MESSAGES:
        try:
            return render(job.message_code, job.message_params or {})
        except (KeyError, TypeError, ValueError):  # a translation that lost a value: the stored text
            return job.message
    return job.message
