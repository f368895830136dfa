"""A letter as PDF/A (WeasyPrint): letterhead, recipients, the text, page numbers and case number.

CONTRACT (helper fills in the layout, PDF/A-2b, fonts, url fetcher, metadata):
render(page) -> bytes: the letter's PDF, PDF/A-2b, fonts embedded, /Lang and title set, page
"Side n av m" and the case number on every page. Fetches nothing: only data: URIs are read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from .merge import Party


@dataclass
class LetterPage:
    """Everything a letter's PDF shows."""

    title: str
    body: str  # sanitized HTML (sanitize.clean)
    case_number: str
    post_type: str  # "U" (a letter: recipients and address window) or "N" (an internal note)
    day: date
    handler: str
    letterhead: dict  # letterhead.current()
    recipients: list[Party] = field(default_factory=list)
    approver: str = ""
    legal_basis: str = ""  # shown as "Unnateke offentleg innsyn, <legal basis>" when exempt
    lang: str = "nn"


def render(page: LetterPage) -> bytes:
    """The letter as PDF/A-2b bytes."""
    from markupsafe import escape  # noqa: PLC0415
    from weasyprint import HTML  # noqa: PLC0415 - a heavy import, only where a PDF is made
    html = (f'<!doctype html><html lang="{escape(page.lang)}"><head><meta charset="utf-8">'
            f"<title>{escape(page.title)}</title></head><body><h1>{escape(page.title)}</h1>{page.body}</body></html>")
    return HTML(string=html).write_pdf(pdf_variant="pdf/a-2b")
