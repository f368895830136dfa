"""A letter as PDF/A (WeasyPrint): letterhead, recipients, the text, page numbers and case number.

CONTRACT: render(page) -> bytes: the letter's PDF, PDF/A-2b, fonts embedded, /Lang and title set, page
"Side n av m" and the case number on every page. Fetches nothing: only data: URIs are read.

The layout is templates/letters/pdf/letter.html with letter.css beside it, rendered by a Jinja
environment of its own (autoescaping on, no Flask needed: the worker and the benchmark call this
outside a request). Every value is escaped; only `body`, HTML that sanitize.clean has already made
safe, is inserted as markup. The letter's fixed words (Vår ref., Dato, Side n av m) follow the letter's
language, not the reader's: a letter is written in one language, whoever opens the page.

WeasyPrint is imported inside render(): it takes about a second to import and most processes never
make a PDF. Each call builds its own WeasyPrint objects, so calls from several threads do not share
state; the Jinja environment is shared, which Jinja allows.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .merge import Party, long_date

LAYOUT_DIR = Path(__file__).resolve().parent.parent / "templates" / "letters" / "pdf"
PDF_VARIANT = "pdf/a-2b"

# The layout's fixed words, by the letter's language (nn when it is another).
LABELS = {
    "nn": {"our_ref": "Vår ref.:", "date": "Dato:", "exempt": "Unnateke offentleg innsyn", "regards": "Med helsing",
           "approved_by": "Godkjend av", "note": "Notat", "case": "Sak", "page": "Side", "of": "av",
           "org_number": "Org.nr.", "phone": "Telefon", "email": "E-post"},
    "nb": {"our_ref": "Vår ref.:", "date": "Dato:", "exempt": "Unntatt offentlighet", "regards": "Med hilsen",
           "approved_by": "Godkjent av", "note": "Notat", "case": "Sak", "page": "Side", "of": "av",
           "org_number": "Org.nr.", "phone": "Telefon", "email": "E-post"},
}


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
    legal_basis: str = ""  # shown as "Unnateke offentleg innsyn: <legal basis>" when exempt
    lang: str = "nn"


def _address_lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@functools.cache
def _layout():
    env = Environment(loader=FileSystemLoader(LAYOUT_DIR), autoescape=True, undefined=StrictUndefined,
                      auto_reload=False)
    env.globals["address_lines"] = _address_lines
    return env.get_template("letter.html"), (LAYOUT_DIR / "letter.css").read_text(encoding="utf-8")


def html(page: LetterPage) -> str:
    """The letter as the HTML WeasyPrint lays out (also what a test or the benchmark can look at)."""
    template, css = _layout()
    head = {key: str(page.letterhead.get(key) or "") for key in ("name", "address", "org_number", "phone",
                                                                 "email", "logo")}
    if not head["logo"].startswith("data:image/"):
        head["logo"] = ""  # the letterhead keeps a data: URI; anything else would not be fetched anyway
    lang = page.lang if page.lang in LABELS else "nn"
    return template.render(
        lang=lang, t=LABELS[lang], title=page.title, body=Markup(page.body or ""),
        case_number=page.case_number, note=page.post_type == "N", date=long_date(page.day),
        handler=page.handler, approver=page.approver, legal_basis=page.legal_basis, letterhead=head,
        recipients=page.recipients, css=Markup(css))


def data_only_fetcher():
    """A WeasyPrint URL fetcher that reads data: URIs and refuses every other URL (http, file, ...).

    The sanitizer already drops remote images; this makes sure the PDF step fetches nothing even if
    some HTML slipped past it. A refused URL is logged by WeasyPrint and left out of the PDF.
    """
    from weasyprint.urls import URLFetcher  # noqa: PLC0415 - a heavy import, only where a PDF is made

    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def render(page: LetterPage) -> bytes:
    """The letter as PDF/A-2b bytes."""
    _quiet_progress_log()  # before the import, which parses WeasyPrint's own stylesheets and logs that
    from weasyprint import HTML  # noqa: PLC0415 - a heavy import, only where a PDF is made

    document = HTML(string=html(page), url_fetcher=data_only_fetcher(), base_url=None)
    pdf = document.write_pdf(pdf_variant=PDF_VARIANT)
    assert pdf is not None  # with no target, write_pdf returns the bytes
    return pdf


def _quiet_progress_log() -> None:
    """WeasyPrint logs each step and each page it lays out at INFO ("Step 5 - Creating layout - Page 3"):
    a dozen lines per letter in the app's log. Keep that logger's warnings only, unless the operator set
    its level. The "weasyprint" logger itself (a refused URL, bad CSS) is left as it is."""
    progress = logging.getLogger("weasyprint.progress")
    if progress.level == logging.NOTSET:
        progress.setLevel(logging.WARNING)
