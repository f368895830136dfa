"""A letter's PDF: PDF/A-2b that an archive accepts (read back with pikepdf and pypdf, independent of
WeasyPrint), page numbers and the case number on every page, escaped values, nothing fetched, and a
file the app's own upload check takes as a post's main document. No database: plain functions."""
from __future__ import annotations

import base64
import io
import logging
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pikepdf
import pytest
from pypdf import PdfReader

from ppt_web.files.pdfcheck import inspect_pdf
from ppt_web.letters import pdf
from ppt_web.letters.merge import Party
from ppt_web.letters.sanitize import clean

pytestmark = pytest.mark.one_database  # no database at all: what it proves does not depend on the engine

HEAD = {"name": "PPT Fjordbygd", "address": "Rådhusvegen 1\nPostboks 12", "org_number": "964 000 000",
        "phone": "57 00 00 00", "email": "ppt@fjordbygd.kommune.no", "logo": ""}


def png_data_uri() -> str:
    """A 2x2 red PNG as a data: URI, made here (no file, no network)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (2).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def long_body(sections: int = 9) -> str:
    """Headings, paragraphs, a list and a table per section, and a link: three pages or more."""
    parts = []
    for n in range(1, sections + 1):
        parts.append(f"<h2>{n}. Vurdering av læringsmiljøet</h2>")
        parts.append("<p>Eleven har gode dagar på skulen, men treng meir støtte i lesing og skriving. "
                     "Kontaktlæraren fortel at eleven arbeider godt i små grupper og når oppgåvene er "
                     "tydeleg strukturerte. Det er behov for tiltak som vert følgde opp over tid.</p>")
        parts.append('<ol><li data-list="bullet">Tilpassa lesetekstar</li>'
                     '<li data-list="bullet">Faste rutinar ved oppstart av timen</li></ol>')
        parts.append("<table><tbody><tr><td>Fag</td><td>Timar</td></tr><tr><td>Norsk</td><td>2</td></tr>"
                     "</tbody></table>")
    parts.append('<p>Sjå <a href="https://lovdata.no/lov/2023-06-09-30">opplæringslova</a>.</p>')  # a link annotation
    return clean("".join(parts))


def page(**changes) -> pdf.LetterPage:
    values: dict = {
        "title": "Sakkunnig vurdering - spesialundervisning", "body": "<p>Ein kort tekst.</p>",
        "case_number": "2026/0417", "post_type": "U", "day": date(2026, 12, 6), "handler": "Kari Handsamar",
        "letterhead": dict(HEAD),
        "recipients": [Party("Ola Nordmann", "Fjordvegen 3", "6800", "Førde"),
                       Party("Eva Nordmann", "Dalen 9\nLeilegheit H0201", "6800", "Førde")],
    }
    values.update(changes)
    return pdf.LetterPage(**values)


def texts(data: bytes) -> list[str]:
    return [p.extract_text() for p in PdfReader(io.BytesIO(data)).pages]


@pytest.fixture(scope="module")
def long_letter() -> bytes:
    return pdf.render(page(body=long_body(), approver="Liv Leiar", legal_basis="offl. § 13 jf. fvl. § 13"))


def test_long_letter_is_pdfa_2b_with_embedded_fonts_language_and_title(long_letter):
    """An archive takes it as PDF/A-2b: declared in XMP, an output intent, every font embedded, /Lang, title."""
    with pikepdf.open(io.BytesIO(long_letter)) as doc:
        with doc.open_metadata() as xmp:
            assert xmp.get("pdfaid:part") == "2"
            assert xmp.get("pdfaid:conformance") == "B"
            assert xmp.get("dc:title") == "Sakkunnig vurdering - spesialundervisning"
        assert str(doc.docinfo["/Title"]) == "Sakkunnig vurdering - spesialundervisning"
        assert str(doc.Root.Lang) == "nn"
        intents = doc.Root.OutputIntents
        assert len(intents) >= 1 and intents[0].S == "/GTS_PDFA1" and "/DestOutputProfile" in intents[0]
        fonts = 0
        for p in doc.pages:
            for font in p.Resources.Font.values():
                descriptors = [f.FontDescriptor for f in font.DescendantFonts] if "/DescendantFonts" in font \
                    else [font.FontDescriptor]
                for d in descriptors:
                    fonts += 1
                    assert any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")), font.BaseFont
                    assert "DejaVu" in str(font.BaseFont)
        assert fonts > 0


def test_every_page_has_its_number_of_the_total_and_the_case_number(long_letter):
    """'Side n av m' and 'Sak <case number>' in every page's footer."""
    pages = texts(long_letter)
    assert len(pages) >= 3
    for n, text in enumerate(pages, start=1):
        assert f"Side {n} av {len(pages)}" in text
        assert "Sak 2026/0417" in text
        assert "PPT Fjordbygd" in text


def test_letter_shows_letterhead_reference_date_exemption_recipients_and_closing(long_letter):
    first, last = texts(long_letter)[0], texts(long_letter)[-1]
    for expected in ("Rådhusvegen 1", "Org.nr. 964 000 000", "Telefon 57 00 00 00", "ppt@fjordbygd.kommune.no",
                     "Vår ref.: 2026/0417", "Dato: 6. desember 2026",
                     "Unnateke offentleg innsyn: offl. § 13 jf. fvl. § 13",
                     "Ola Nordmann", "Fjordvegen 3", "Eva Nordmann", "Leilegheit H0201", "6800 Førde",
                     "Sakkunnig vurdering - spesialundervisning", "1. Vurdering av læringsmiljøet"):
        assert expected in first
    assert "Med helsing" in last and "Kari Handsamar" in last and "Godkjend av Liv Leiar" in last


def test_note_has_no_address_block_and_says_notat():
    """An N post is an internal note: no recipients, "Notat"; no approver or exemption lines when unset."""
    text = "\n".join(texts(pdf.render(page(post_type="N", title="Notat frå møte"))))
    assert "Notat" in text and "Notat frå møte" in text
    assert "Ola Nordmann" not in text and "Fjordvegen" not in text
    assert "Godkjend av" not in text and "Unnateke" not in text
    assert "Side 1 av 1" in text and "Sak 2026/0417" in text


def test_merged_values_are_text_and_only_the_body_is_markup():
    """A recipient named <b>x</b> (and a title, handler, letterhead with markup) appear literally."""
    data = pdf.render(page(title="<i>Tittel</i>", handler="<script>alert(1)</script>",
                           recipients=[Party("<b>x</b>", "<img src=x>", "6800", "Førde")],
                           letterhead={**HEAD, "name": "PPT & <u>Co</u>"}, body="<p><strong>Feit</strong> tekst</p>"))
    text = texts(data)[0]
    for literal in ("<b>x</b>", "<img src=x>", "<i>Tittel</i>", "<script>alert(1)</script>", "PPT & <u>Co</u>"):
        assert literal in text
    assert "Feit tekst" in text and "<strong>" not in text
    with pikepdf.open(io.BytesIO(data)) as doc:
        assert str(doc.docinfo["/Title"]) == "<i>Tittel</i>"


def test_logo_and_body_images_from_data_uris_are_drawn():
    """data: URIs are the one thing the fetcher reads: the letterhead's logo and inline images show."""
    data = pdf.render(page(letterhead={**HEAD, "logo": png_data_uri()},
                           body=clean(f'<p>Bilete: <img src="{png_data_uri()}" alt=""></p>')))
    with pikepdf.open(io.BytesIO(data)) as doc:
        images = [x for x in doc.pages[0].Resources.get("/XObject", {}).values() if x.get("/Subtype") == "/Image"]
        assert len(images) >= 1


class Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Recorder.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(base64.b64decode(png_data_uri().split(",", 1)[1]))

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_recorder():
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.requests
    server.shutdown()
    server.server_close()


def test_nothing_is_fetched_even_from_html_the_sanitizer_never_saw(http_recorder, tmp_path):
    """Remote images, stylesheets, @import, attachments and file: URLs in the body are not read."""
    base, requests = http_recorder
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    body = (f'<p>Tekst <img src="{base}/img.png"></p><link rel="stylesheet" href="{base}/style.css">'
            f'<style>@import url("{base}/import.css"); p {{ background: url("{base}/bg.png") }}</style>'
            f'<link rel="attachment" href="{base}/attach.bin"><img src="{Path(secret).as_uri()}">'
            f'<object data="{base}/object.png" type="image/png"></object>')
    data = pdf.render(page(body=body, letterhead={**HEAD, "logo": f"{base}/logo.png"}))
    assert requests == []
    assert "Tekst" in texts(data)[0]
    # The same HTML through WeasyPrint's default fetcher does reach the server: the check above can fail.
    from weasyprint import HTML
    HTML(string=body).write_pdf()
    assert "/img.png" in requests


def test_pdf_passes_the_apps_upload_check(long_letter, tmp_path):
    """The PDF can be a post's main document: the checking child accepts it, with its page count."""
    path = tmp_path / "letter.pdf"
    path.write_bytes(long_letter)
    assert inspect_pdf(path) == len(texts(long_letter))


def test_letters_render_side_by_side_in_threads():
    """Two requests making PDFs at once each get their own letter."""
    numbers = [f"2026/{n:04d}" for n in range(1, 5)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda number: pdf.render(page(case_number=number)), numbers))
    for number, data in zip(numbers, results, strict=True):
        assert f"Sak {number}" in texts(data)[0]


def test_rendering_does_not_fill_the_log_with_progress_lines(caplog):
    """WeasyPrint's step-by-step INFO lines stay out of the app's log; its warnings would not."""
    with caplog.at_level(logging.INFO):
        pdf.render(page())
    assert [r for r in caplog.records if r.name.startswith(("weasyprint", "fontTools"))] == []


def test_the_same_letter_gives_the_same_bytes():
    """Rendering an unchanged letter again gives an identical file (same digest: stored once)."""
    assert pdf.render(page()) == pdf.render(page())
    assert pdf.render(page()) != pdf.render(page(case_number="2026/0418"))
