"""The statistics charts: SVG the CSP lets through (no style, no script), a text alternative, escaped
labels, series told apart without colour, an empty figure's text, and many rows still readable."""
from __future__ import annotations

import math
import re

import pytest
from flask_babel import force_locale
from lxml import etree

from ppt_web.statistics import charts
from ppt_web.statistics.figures import Chart, Column, Figure

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def english(app):
    with app.test_request_context(), force_locale("en"):
        yield


def parse(markup) -> etree._Element:
    root = etree.fromstring(str(markup).encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return root


def figure(kind: str, rows: list[tuple], series=("a",), x_kind="label", **chart) -> Figure:
    columns = [Column("x", "Row", x_kind), *(Column(key, f"Series {key}") for key in series)]
    return Figure("test-" + kind, "A title", columns, rows, Chart(kind, "x", tuple(series), **chart),
                  note="What is counted.")


def months(n: int, start: int = 2017) -> list[str]:
    return [f"{start + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


def check_safe(root) -> None:
    """Nothing the Content-Security-Policy blocks, and nothing that runs."""
    for element in root.iter():
        assert "style" not in element.attrib, element.tag
        assert not any(name.startswith("on") for name in element.attrib), element.tag
        assert etree.QName(element).localname not in ("style", "script", "foreignObject")


@pytest.mark.parametrize("kind", ["bar", "stacked", "grouped", "line"])
def test_every_kind_is_valid_svg_with_a_text_alternative(english, kind):
    """role=img, labelled by its <title> and <desc>; the desc is the note and the highest value."""
    series = ("a",) if kind == "bar" else ("a", "b", "c")
    rows = [(m, *(i + j for j in range(len(series)))) for i, m in enumerate(months(6))]
    root = parse(charts.render(figure(kind, rows, series)))
    check_safe(root)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == "A title"
    assert desc.text.startswith("What is counted.") and "highest" in desc.text and "June 2017" in desc.text
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]


def test_labels_are_escaped(english):
    """A school named "<b>&" is text in the chart, not markup."""
    root = parse(charts.render(figure("bar", [("<b>&", 7), ("Skule 'A' \"B\"", 3)])))
    check_safe(root)
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "<b>&" in texts and not list(root.iter("b")) and not list(root.iter(f"{SVG}b"))


def _lightness(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_series_differ_by_shade_light_to_dark(english):
    """Stacked series each get a solid fill of clearly different lightness (readable in greyscale, and
    small in a PDF: no pattern fills for the first series), and the legend shows the same fills."""
    rows = [(m, 3, 2, 1, 4) for m in months(4)]
    root = parse(charts.render(figure("stacked", rows, ("a", "b", "c", "d"))))
    assert not root.findall(f".//{SVG}pattern")
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    fills = list(dict.fromkeys(r.get("fill") for r in bars))
    assert len(fills) == 4 and all(re.fullmatch(r"#[0-9a-f]{6}", f) for f in fills)
    grey = sorted(_lightness(f) for f in fills)
    assert all(b - a >= 35 for a, b in zip(grey, grey[1:], strict=False)), grey
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-legend"]
    assert legend == ["Series a", "Series b", "Series c", "Series d"]
    swatches = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-swatch"]
    assert swatches == fills


def test_many_series_use_at_most_two_small_patterns(english):
    """Eight series: the shades run out, so at most two series get a simple pattern, each drawn once."""
    series = tuple("abcdefgh")
    rows = [(m, *range(1, 9)) for m in months(3)]
    root = parse(charts.render(figure("stacked", rows, series)))
    patterns = root.findall(f".//{SVG}pattern")
    assert len(patterns) <= 2
    for pattern in patterns:
        assert len(list(pattern)) <= 2


def test_small_decimal_axes_have_distinct_tick_labels(english):
    """A 0..0.2 axis: 0, 0.05, 0.1, 0.15, 0.2 (or the like), never 0, 0, 0.1, 0.2, 0.2."""
    columns = [Column("x", "Week", "label"), Column("rate", "Rate", "percent")]
    rows = [(f"2026-W{w:02d}", w / 100) for w in range(1, 21)]
    root = parse(charts.render(Figure("rate", "Rate", columns, rows, Chart("line", "x", ("rate",)))))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick" and not t.get("transform")]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks


def test_rows_the_chart_excludes_are_not_drawn_nor_described(english):
    """chart_exclude: "Others" (a remainder) stays in the table but not in the chart or its <desc>."""
    f = figure("bar", [("Skule A", 7), ("Skule B", 3), ("Others", 90)])
    f.chart_exclude = frozenset({2})
    root = parse(charts.render(f))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Others" not in texts and "90" not in texts and "Skule A" in texts
    desc = root.find(f"{SVG}desc").text
    assert "Others" not in desc and "90" not in desc and "7" in desc


def test_the_first_rotated_label_is_not_cut_off(english):
    """52 weeks: the first label, rotated, ends inside the chart (its width estimated from its length)."""
    rows = [(f"2026-W{w:02d}", w) for w in range(1, 53)]
    root = parse(charts.render(figure("bar", rows)))
    first = next(t for t in root.iter(f"{SVG}text") if t.get("transform"))
    width = charts.text_width(first.text) * math.cos(math.radians(35))
    assert float(first.get("x")) - width >= 0, (first.text, first.get("x"), width)


def test_line_series_differ_by_marker_and_dash(english):
    """Lines: a different marker shape and dash per series, and a legend."""
    rows = [(m, 1 + i, 2 + i, None if i == 2 else 3) for i, m in enumerate(months(5))]
    root = parse(charts.render(figure("line", rows, ("a", "b", "c"))))
    lines = root.findall(f"{SVG}polyline")
    assert len({line.get("stroke-dasharray") for line in lines}) == 3
    assert root.findall(f"{SVG}circle") and root.findall(f"{SVG}rect") and root.findall(f"{SVG}path")
    assert len(lines) == 4  # the third series is broken where it has no value


def test_the_reference_line_is_dashed_and_labelled(english):
    """The waiting threshold: a dashed line with its label."""
    rows = [("2026-Q1", 40, 60, 100), ("2026-Q2", 30, 95, 130)]
    root = parse(charts.render(figure("grouped", rows, ("a", "b", "c"), x_kind="label", reference=90.0,
                                      reference_label="Threshold: 90 days", unit="days")))
    ref = [line for line in root.iter(f"{SVG}line") if line.get("class") == "chart-ref"]
    assert len(ref) == 1 and ref[0].get("stroke-dasharray")
    assert "Threshold: 90 days" in [t.text for t in root.iter(f"{SVG}text")]


def test_an_empty_figure_says_so(english):
    """No rows, or only zeros: a short text instead of an empty axis."""
    for rows in ([], [(m, 0) for m in months(3)], [(m, None) for m in months(3)]):
        root = parse(charts.render(figure("bar", rows)))
        check_safe(root)
        assert [t.text for t in root.iter(f"{SVG}text")] == ["No data in this period"]
        assert "No data in this period" in root.find(f"{SVG}desc").text
        assert not root.findall(f"{SVG}rect")


def test_ten_years_of_months_stay_readable(english):
    """120 months: 120 thin bars, at most 16 axis labels, every one a month name."""
    rows = [(m, i % 17) for i, m in enumerate(months(120))]
    root = parse(charts.render(figure("bar", rows)))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == sum(1 for _m, v in rows if v)
    ticks = [t for t in root.iter(f"{SVG}text") if t.get("transform")]
    assert 8 <= len(ticks) <= charts.MAX_TICK_LABELS


def test_categories_are_drawn_as_horizontal_bars_with_their_values(english):
    """Schools or statuses: one row each, the value at the bar's end, long names cut (the table has them)."""
    rows = [("A very long name of a school in the municipality of somewhere", 12), ("Kort", 3)]
    root = parse(charts.render(figure("bar", rows)))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "12" in texts and "3" in texts
    assert any(t and t.endswith("…") and len(t) == charts.LABEL_CHARS for t in texts)


def test_axis_ticks_are_round():
    assert charts.nice_ticks(7, whole=True) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(130, whole=True) == [0, 50, 100, 150]
    assert charts.nice_ticks(1, whole=True) == [0, 1]
    assert charts.nice_ticks(0.8, whole=False)[-1] >= 0.8
    assert charts.nice_ticks(0, whole=True) == [0, 1]


def test_a_rate_of_zero_is_drawn_not_called_empty(english):
    """0 % errors in a week with jobs is a value (a count of 0 everywhere is not)."""
    columns = [Column("x", "Week", "label"), Column("rate", "Rate", "percent")]
    rows = [("2026-W01", None), ("2026-W02", 0.0), ("2026-W03", 0.0)]
    root = parse(charts.render(Figure("rate", "Rate", columns, rows, Chart("line", "x", ("rate",)))))
    assert "No data in this period" not in [t.text for t in root.iter(f"{SVG}text")]
    assert root.findall(f"{SVG}polyline")
