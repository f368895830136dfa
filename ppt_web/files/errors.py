"""Why an upload is refused, as a stable code and a message in the user's language."""
from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from ..errors import Invalid
from .pdfchild import MAX_PAGES

MESSAGES = {
    "not_pdf": _l("The file is not a PDF."),
    "encrypted": _l("The PDF is encrypted or password protected. Save it without a password and try again."),
    "no_pages": _l("The PDF has no pages."),
    "damaged": _l("The PDF is damaged or incomplete."),
    "empty": _l("The file is empty."),
    "extra_data": _l("The file is not a plain PDF: it has other data before the start or after the end of the "
                     "PDF."),
    "bomb": _l("The PDF unpacks to far more data, or is nested far deeper, than the service accepts (a possible "
               "decompression bomb), so it cannot be checked safely."),
    "too_many_pages": _l("The PDF has more than %(count)s pages.", count=MAX_PAGES),
    "page_too_large": _l("A page of the PDF is larger than the PDF standard allows (200 inches)."),
    "javascript": _l("The PDF contains JavaScript, which is not accepted. Print it to a new PDF and try again."),
    "launch": _l("The PDF contains an action that starts a program or opens a file (Launch), which is not "
                 "accepted."),
    "embedded_file": _l("The PDF contains embedded or attached files, which are not accepted. Send each "
                        "attachment as a PDF of its own."),
    "xfa": _l("The PDF is an XFA form, which is not accepted. Print it to a new PDF and try again."),
    "external_action": _l("The PDF contains actions that send form data, import data, open another file or "
                          "open a web address by themselves, which are not accepted."),
}


class UploadRejected(Invalid):
    """An upload the user must fix; `reason` is a stable code for logs and tests."""

    def __init__(self, reason: str, message: str | LazyString | None = None, found: tuple[str, ...] = ()) -> None:
        super().__init__(message if message is not None else MESSAGES[reason], field="file", reason=reason)
        self.reason = reason
        self.found = found or (reason,)  # all the kinds of active content found, the first one is `reason`


def refusal(found: list[str]) -> UploadRejected:
    """One refusal naming every kind of active content found (the first is the reason code)."""
    message = LazyString(lambda: " ".join(str(MESSAGES[kind]) for kind in found))
    return UploadRejected(found[0], message, found=tuple(found))
