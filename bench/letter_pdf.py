"""A 10-page expert assessment to PDF/A: the letter's render() against a bare WeasyPrint render.

    .venv/bin/python bench/letter_pdf.py [--runs 10] [--pages 10] [--save DIR]

Generates a realistic expert assessment in Nynorsk-ish text (headings, paragraphs, bulleted and
numbered lists, a table per section), sanitized as the editor's text is, and grows it until the
letter's PDF has about --pages pages (9-11 for the default). Then times, in this one process:

- letter: ppt_web.letters.pdf.render() - the layout (letterhead, address block, footer with
  "Side n av m" and the case number), PDF/A-2b with its output intent and XMP, data:-only fetcher;
- bare: weasyprint.HTML(string=<the same body HTML>).write_pdf() - no layout, no PDF/A.

The first run of each is reported apart (fonts found and loaded, caches warmed; WeasyPrint's import
is timed on its own before either), then the median and p90 of --runs warm runs, and the ratio of
the medians. No database, no app: render() needs neither.
"""
from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = ("Bakgrunn for tilrådinga", "Opplysningar i saka", "Eleven sitt utbytte av den ordinære opplæringa",
            "Lærevanskar og andre særlege forhold", "Realistiske opplæringsmål", "Innhald i opplæringa",
            "Organisering og omfang", "Kompetanse hos dei som skal gje opplæringa", "Samarbeid med heimen",
            "Oppsummering og tilråding")
SENTENCES = (
    "Eleven har gått på skulen sidan første trinn og har hatt tilpassa opplæring i norsk og matematikk.",
    "Kontaktlæraren skildrar ein motivert elev som arbeider godt når oppgåvene er tydeleg strukturerte.",
    "Kartlegginga viser at leseflyten ligg under det som er venta på trinnet, medan forståinga er betre.",
    "Føresette fortel at eleven er trøytt etter skuledagen og treng kvile før leksearbeidet.",
    "PPT har observert eleven i klasserommet og i ei mindre gruppe over to skuledagar.",
    "I den ordinære undervisninga får eleven lite ut av felles gjennomgangar som varer lenge.",
    "Det er venta at eleven kan nå fleire av kompetansemåla dersom opplæringa vert tilrettelagd.",
    "Tiltaka bør evaluerast kvart halvår i samarbeid mellom skulen, heimen og PPT.",
    "Skulen har gjort eit godt arbeid med å prøve ut tiltak innanfor den tilpassa opplæringa.",
    "Vi tilrår at opplæringa vert gitt av pedagog med kompetanse i lese- og skrivevanskar.",
)
BULLETS = ("Korte økter med tydeleg start og slutt", "Lydstøtte og tilpassa lesetekstar",
           "Faste rutinar og visuell dagsplan", "Jamleg tilbakemelding på framgang", "Bruk av konkretar i matematikk")


def assessment(sections: int, seed: int = 1) -> str:
    """The body of an expert assessment, `sections` sections long, as the editor would send it."""
    from ppt_web.letters.sanitize import clean

    rng = random.Random(seed)
    parts = ['<p class="ql-align-justify">Pedagogisk-psykologisk teneste (PPT) har greidd ut om eleven har behov '
             "for spesialundervisning, jf. opplæringslova. Den sakkunnige vurderinga byggjer på "
             "tilvisinga, samtalar, observasjon og kartlegging.</p>"]
    for n in range(sections):
        parts.append(f"<h2>{n + 1}. {SECTIONS[n % len(SECTIONS)]}</h2>")
        for _ in range(3):
            parts.append("<p>" + " ".join(rng.sample(SENTENCES, 4)) + "</p>")
        kind = "bullet" if n % 2 else "ordered"
        items = "".join(f'<li data-list="{kind}">{b}</li>' for b in rng.sample(BULLETS, 3))
        parts.append(f"<ol>{items}</ol>")
        if n % 3 == 1:
            rows = "".join(f"<tr><td>{subject}</td><td>{rng.randint(1, 5)}</td><td>{who}</td></tr>"
                           for subject, who in (("Norsk", "Spesialpedagog"), ("Matematikk", "Lærar"),
                                                ("Engelsk", "Assistent")))
            parts.append(f"<table><tbody><tr><td><strong>Fag</strong></td><td><strong>Timar i veka</strong></td>"
                         f"<td><strong>Gitt av</strong></td></tr>{rows}</tbody></table>")
        parts.append('<p class="ql-indent-1">' + rng.choice(SENTENCES) + "</p>")
    return clean("".join(parts))


def letter(body: str):
    from ppt_web.letters.merge import Party
    from ppt_web.letters.pdf import LetterPage

    return LetterPage(
        title="Sakkunnig vurdering - spesialundervisning", body=body, case_number="2026/0417", post_type="U",
        day=date(2026, 12, 6), handler="Kari Handsamar", approver="Liv Leiar",
        legal_basis="offl. § 13 jf. fvl. § 13",
        letterhead={"name": "PPT Fjordbygd", "address": "Rådhusvegen 1\n6800 Førde", "org_number": "964 000 000",
                    "phone": "57 00 00 00", "email": "ppt@fjordbygd.kommune.no", "logo": ""},
        recipients=[Party("Ola Nordmann", "Fjordvegen 3", "6800", "Førde"),
                    Party("Eva Nordmann", "Dalen 9", "6800", "Førde")])


def find_sections(pages: int, seed: int) -> int:
    """The fewest sections whose letter has at least `pages` pages."""
    from ppt_web.letters.pdf import render

    def count(sections: int) -> int:
        return page_count(render(letter(assessment(sections, seed))))

    sections = max(1, round(4 * pages / count(4)))  # a first guess from a short one, then step to it
    while sections > 1 and count(sections - 1) >= pages:
        sections -= 1
    while sections < 200 and count(sections) < pages:
        sections += 1
    return sections


def page_count(data: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def timed(fn) -> tuple[float, bytes]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="warm runs of each render")
    parser.add_argument("--pages", type=int, default=10, help="the letter's length to aim for")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", default=None, help="write letter.pdf and bare.pdf into this folder")
    parser.add_argument("--find-sections", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from common import pct

    from ppt_web.letters import pdf

    pdf._quiet_progress_log()
    if args.find_sections:
        print(find_sections(args.pages, args.seed))
        return 0
    # The body's length is found in a child process, so the first render timed here is this process's
    # first: the cold cost a worker pays once (fonts looked up and loaded, WeasyPrint's caches filled).
    sections = int(subprocess.check_output([sys.executable, __file__, "--find-sections", "--pages", str(args.pages),
                                            "--seed", str(args.seed)], text=True).split()[-1])
    body = assessment(sections, args.seed)
    started = time.perf_counter()
    import weasyprint
    print(f"import weasyprint {weasyprint.__version__}: {time.perf_counter() - started:.2f} s")
    first_letter, data = timed(lambda: pdf.render(letter(body)))
    pages = page_count(data)
    print(f"body: {sections} sections, {len(body) / 1024:.0f} KiB of HTML; letter: {pages} pages, "
          f"{len(data) / 1024:.0f} KiB")
    if args.pages == 10:
        assert 9 <= pages <= 11, pages

    bare_first, bare = timed(lambda: weasyprint.HTML(string=body).write_pdf())
    letter_times, bare_times = [], []
    for _ in range(args.runs):
        letter_times.append(timed(lambda: pdf.render(letter(body)))[0])
        bare_times.append(timed(lambda: weasyprint.HTML(string=body).write_pdf())[0])
    if args.save:
        folder = Path(args.save)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "letter.pdf").write_bytes(data)
        (folder / "bare.pdf").write_bytes(bare)

    def line(name: str, first: float, warm: list[float], out: bytes) -> None:
        print(f"{name:<8} first {first * 1000:7.0f} ms   median {statistics.median(warm) * 1000:7.0f} ms   "
              f"p90 {pct(warm, .9) * 1000:7.0f} ms   {page_count(out):>2} pages  {len(out) / 1024:5.0f} KiB")

    print(f"{args.runs} warm runs each, alternating. first: the letter's is the process's first render (cold); "
          "the bare one comes after it")
    line("letter", first_letter, letter_times, data)
    line("bare", bare_first, bare_times, bare)
    ratio = statistics.median(letter_times) / statistics.median(bare_times)
    print(f"letter / bare (medians): {ratio:.2f}x; per page: {statistics.median(letter_times) / pages * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
