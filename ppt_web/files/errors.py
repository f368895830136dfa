"""Why an upload is refused, as a stable code and a message in the user's language."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..errors import Invalid

MESSAGES = {
    "not_pdf": _l("The file is not a PDF."),
    "encrypted": _l("The PDF is encrypted or password protected. Save it without a password and try again."),
    "no_pages": _l("The PDF has no pages."),
    "damaged": _l("The PDF is damaged or incomplete."),
    "empty": _l("The file is empty."),
}


class UploadRejected(Invalid):
    """An upload the user must fix; `reason` is a stable code for logs and tests."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else MESSAGES[reason], field="file", reason=reason)
        self.reason = reason
