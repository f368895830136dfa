"""A figure's chart as a small SVG drawn on the server, without JavaScript.

The app's Content-Security-Policy (style-src 'self') blocks <style> elements and style attributes, so
the SVG uses presentation attributes (fill, stroke, font-size) and classes styled in app.css only.
Greyscale and colour-blind readers tell series apart by solid fills of clearly different lightness
(neighbours in a stack alternate dark and light; a sixth and seventh series get one simple hatch each)
and, for lines, by marker shapes and dashes; a legend names them. Solid fills keep a printed PDF small: a
pattern fill on every bar made one year's print view 4 MB. The text alternative is the SVG's <title> and <desc>
(the figure's note and a sentence on the highest value), and the table beside the chart has every
number. Every text that comes from data is escaped.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

from flask_babel import format_decimal
from flask_babel import gettext as _
from markupsafe import Markup, escape

from .export import key_text, number_text
from .figures import Chart, Figure

WIDTH = 640
TIME_KEY = re.compile(r"\d{4}-(\d{2}|Q[1-4]|W\d{2})")
MAX_TICK_LABELS = 16
LABEL_CHARS = 30  # a longer row label (a school, an error message) is cut with "…"; the table has it whole

# Series fills: (fill, pattern). Shades of one blue, their greyscale lightness about 45 apart (49, 187,
# 94, 227, 141), alternating dark and light so stacked neighbours contrast; then two hatches on white and
# on the middle shade, the only patterns (one path each), for the sixth and seventh series.
SWATCHES = (
    ("#0b3c5d", None),
    ("#9cc3de", None),
    ("#1f6fa8", None),
    ("#d5e6f3", None),
    ("#4f9fd6", None),
    ("#ffffff", "diagonal"),
    ("#4f9fd6", "diagonal-back"),
)
DASHES = (None, "6 3", "2 3", "8 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")


def _id(figure: Figure, name: str) -> str:
    return f"chart-{re.sub(r'[^a-zA-Z0-9-]', '', figure.key)}-{name}"


def _num(value: float) -> str:
    """A coordinate: two decimals at most, no exponent."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def text_width(text: str, size: float = 11.0) -> float:
    """About how wide a text is drawn, in px (an average sans-serif letter is 0.56 em)."""
    return len(text) * size * 0.56


def tick_decimals(ticks: Sequence[float]) -> int:
    """As many decimals as the tick step needs (0.05: two), so no two tick labels are the same."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return next((d for d in range(5) if abs(round(step, d) - step) < 1e-9), 4)


def tick_text(tick: float, decimals: int) -> str:
    return format_decimal(round(tick, decimals), format="#,##0" + ("." + "0" * decimals if decimals else ""))


def nice_ticks(top: float, whole: bool, wanted: int = 5) -> list[float]:
    """Axis ticks from 0 to at least top, at a round step (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / wanted
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    count = math.ceil(top / step - 1e-9)
    return [i * step for i in range(count + 1)]


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _values(figure: Figure) -> tuple[list[str], list[list[float | None]]]:
    """The rows' x labels (as shown) and, per series, its values (None: no value)."""
    chart = figure.chart
    assert chart is not None
    x = figure.column(chart.x)
    columns = [figure.column(key) for key in chart.series]
    rows = [row for i, row in enumerate(figure.rows) if i not in figure.chart_exclude]
    labels = [str(row[x]) if row[x] is not None else "" for row in rows]
    series = [[None if row[c] is None else float(row[c]) for row in rows] for c in columns]
    return labels, series


def _is_empty(series: Sequence[Sequence[float | None]], kinds: Sequence[str]) -> bool:
    """Nothing to draw: no value at all, or counts that are all 0 (a rate of 0 % is a value)."""
    return not any(v is not None and (v or kind != "count") for values, kind in zip(series, kinds, strict=True)
                   for v in values)


def _patterns(figure: Figure, count: int) -> list[str]:
    """<defs> with the hatches the series use (most series have a solid fill and need none)."""
    out = []
    for i in range(min(count, len(SWATCHES))):
        base, kind = SWATCHES[i]
        if kind is None:
            continue
        d = "M0,8 L8,0" if kind == "diagonal" else "M0,0 L8,8"
        out.append(f'<pattern id="{_id(figure, f"p{i}")}" patternUnits="userSpaceOnUse" width="8" height="8">'
                   f'<rect width="8" height="8" fill="{base}"/><path d="{d}" stroke="#1b1f24" stroke-width="1.5"/>'
                   f"</pattern>")
    return out


def _fill(figure: Figure, i: int) -> str:
    base, kind = SWATCHES[i % len(SWATCHES)]
    return base if kind is None else f"url(#{_id(figure, f'p{i % len(SWATCHES)}')})"


def _marker(shape: str, x: float, y: float, fill: str) -> str:
    if shape == "circle":
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3.5" fill="{fill}" stroke="#1b1f24"/>'
    if shape == "square":
        return f'<rect x="{_num(x - 3.5)}" y="{_num(y - 3.5)}" width="7" height="7" fill="{fill}" stroke="#1b1f24"/>'
    if shape == "triangle":
        return (f'<path d="M{_num(x)},{_num(y - 4.5)} L{_num(x + 4.5)},{_num(y + 3.5)} '
                f'L{_num(x - 4.5)},{_num(y + 3.5)} Z" fill="{fill}" stroke="#1b1f24"/>')
    return (f'<path d="M{_num(x)},{_num(y - 5)} L{_num(x + 5)},{_num(y)} L{_num(x)},{_num(y + 5)} '
            f'L{_num(x - 5)},{_num(y)} Z" fill="{fill}" stroke="#1b1f24"/>')


LINE_INKS = ("#0b5c8a", "#1b1f24", "#8a5a00", "#1e6b34")


def _legend(figure: Figure, names: list[str], y: float, line: bool) -> tuple[list[str], float]:
    """One entry per series in rows across the width; returns the parts and the height used."""
    if len(names) < 2 and not line:
        return [], 0.0
    parts, x, row_y = [], 8.0, y
    for i, name in enumerate(names):
        width = 28 + 7 * min(len(name), LABEL_CHARS)
        if x + width > WIDTH and x > 8:
            x, row_y = 8.0, row_y + 18
        if line:
            dash = DASHES[i % len(DASHES)]
            parts.append(f'<line x1="{_num(x)}" y1="{_num(row_y)}" x2="{_num(x + 18)}" y2="{_num(row_y)}" '
                         f'stroke="{LINE_INKS[i % len(LINE_INKS)]}" stroke-width="2"'
                         + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
            parts.append(_marker(MARKERS[i % len(MARKERS)], x + 9, row_y, LINE_INKS[i % len(LINE_INKS)]))
        else:
            parts.append(f'<rect x="{_num(x)}" y="{_num(row_y - 6)}" width="16" height="12" class="chart-swatch" '
                         f'fill="{_fill(figure, i)}" stroke="#1b1f24" stroke-width="0.5"/>')
        parts.append(f'<text x="{_num(x + 22)}" y="{_num(row_y + 4)}" class="chart-legend">'
                     f"{escape(_short(name))}</text>")
        x += width
    return parts, row_y - y + 18


def _summary(figure: Figure, labels: list[str], series: list[list[float | None]], names: list[str]) -> str:
    """One sentence on the highest value (a stacked chart: the highest total)."""
    chart = figure.chart
    assert chart is not None
    kind = figure.columns[figure.column(chart.series[0])].kind
    if chart.kind == "stacked":
        totals = [sum(v or 0 for v in values) for values in zip(*series, strict=True)]
        best = max(range(len(totals)), key=lambda i: totals[i])
        return _("The highest total is %(value)s, in %(label)s.", value=number_text(totals[best], kind),
                 label=key_text(labels[best]))
    best_value, best_label, best_name = None, "", ""
    for name, values in zip(names, series, strict=True):
        for label, value in zip(labels, values, strict=True):
            if value is not None and (best_value is None or value > best_value):
                best_value, best_label, best_name = value, label, name
    if len(series) == 1:
        return _("The highest value is %(value)s, in %(label)s.", value=number_text(best_value, kind),
                 label=key_text(best_label))
    return _("The highest value is %(value)s (%(series)s), in %(label)s.", value=number_text(best_value, kind),
             series=best_name, label=key_text(best_label))


def _open(figure: Figure, height: float, title: str, desc: str) -> list[str]:
    tid, did = _id(figure, "title"), _id(figure, "desc")
    kind = escape(figure.chart.kind if figure.chart else "none")
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
            f'viewBox="0 0 {WIDTH} {_num(height)}" width="{WIDTH}" height="{_num(height)}" role="img" '
            f'aria-labelledby="{tid} {did}" font-family="sans-serif" font-size="12">',
            f'<title id="{tid}">{escape(title)}</title>', f'<desc id="{did}">{escape(desc)}</desc>']


def render(figure: Figure) -> Markup:
    """The figure's chart as inline SVG markup; an empty figure is a short "No data in this period"."""
    chart = figure.chart
    title = str(figure.title)
    note = str(figure.note or "")
    if chart is None or not figure.rows:
        return _empty(figure, title, note)
    labels, series = _values(figure)
    if _is_empty(series, [figure.columns[figure.column(key)].kind for key in chart.series]):
        return _empty(figure, title, note)
    names = [str(figure.columns[figure.column(key)].label) for key in chart.series]
    desc = " ".join(part for part in (note, _summary(figure, labels, series, names)) if part)
    horizontal = chart.kind != "line" and not all(TIME_KEY.fullmatch(label) for label in labels if label)
    if horizontal:
        return _horizontal(figure, chart, labels, series, names, title, desc)
    return _vertical(figure, chart, labels, series, names, title, desc)


def _empty(figure: Figure, title: str, note: str) -> Markup:
    text = _("No data in this period")
    parts = _open(figure, 48, title, " ".join(p for p in (note, text) if p))
    parts.append(f'<text x="{WIDTH // 2}" y="28" text-anchor="middle" class="chart-empty">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _top(chart: Chart, series: list[list[float | None]]) -> float:
    if chart.kind == "stacked":
        top = max((sum(v or 0 for v in values) for values in zip(*series, strict=True)), default=0.0)
    else:
        top = max((v for values in series for v in values if v is not None), default=0.0)
    if chart.reference is not None:
        top = max(top, float(chart.reference))
    return top


def _unit_kind(figure: Figure, chart: Chart) -> str:
    return figure.columns[figure.column(chart.series[0])].kind


def _vertical(figure: Figure, chart: Chart, labels: list[str], series: list[list[float | None]],
              names: list[str], title: str, desc: str) -> Markup:
    """Rows along the x axis (months, quarters, weeks): bars, stacked or grouped bars, or lines."""
    kind = _unit_kind(figure, chart)
    ticks = nice_ticks(_top(chart, series), whole=kind == "count")
    decimals = tick_decimals(ticks)
    first_label = key_text(labels[0], short=True) if labels else ""
    # the first x label, rotated 35°, reaches left of its bar by its width's cosine: room for it
    left = max(56.0, math.ceil(text_width(first_label) * math.cos(math.radians(35))) + 4.0)
    right, top_pad, plot_h = 128.0 if chart.reference is not None else 16.0, 24.0, 200.0
    plot_w = WIDTH - left - right
    n = len(labels)
    band = plot_w / n
    scale = plot_h / ticks[-1]
    base = top_pad + plot_h
    legend, legend_h = _legend(figure, names, base + 62, chart.kind == "line")
    height = base + 56 + legend_h + 8
    parts = _open(figure, height, title, desc)
    parts.append("<defs>" + "".join(_patterns(figure, len(series))) + "</defs>")
    if chart.unit:
        parts.append(f'<text x="4" y="14" class="chart-unit">{escape(str(chart.unit))}</text>')
    for tick in ticks:
        y = base - tick * scale
        parts.append(f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(left + plot_w)}" y2="{_num(y)}" '
                     f'class="chart-grid" stroke="#d9dee4"/>')
        parts.append(f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" class="chart-tick">'
                     f"{escape(tick_text(tick, decimals))}</text>")
    every = max(1, math.ceil(n / MAX_TICK_LABELS))
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = left + band * (i + 0.5)
        parts.append(f'<text x="{_num(x)}" y="{_num(base + 14)}" text-anchor="end" class="chart-tick" '
                     f'transform="rotate(-35 {_num(x)} {_num(base + 14)})">'
                     f"{escape(key_text(label, short=True))}</text>")
    if chart.kind == "line":
        for s, values in enumerate(series):
            ink, dash = LINE_INKS[s % len(LINE_INKS)], DASHES[s % len(DASHES)]
            points = [(left + band * (i + 0.5), base - v * scale) if v is not None else None
                      for i, v in enumerate(values)]
            segment: list[tuple[float, float]] = []
            for point in [*points, None]:
                if point is not None:
                    segment.append(point)
                    continue
                if len(segment) > 1:
                    parts.append(f'<polyline points="{" ".join(f"{_num(x)},{_num(y)}" for x, y in segment)}" '
                                 f'fill="none" stroke="{ink}" stroke-width="2"'
                                 + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
                segment = []
            if n <= 60:
                parts.extend(_marker(MARKERS[s % len(MARKERS)], x, y, ink) for x, y in (p for p in points if p))
    else:
        gap = band * (0.25 if n > 1 else 0.4)
        for i in range(n):
            x0 = left + band * i + gap / 2
            width = band - gap
            stack = 0.0
            for s, values in enumerate(series):
                value = values[i]
                if not value:
                    continue
                if chart.kind == "grouped" and len(series) > 1:
                    w = width / len(series)
                    x, y, h = x0 + w * s, base - value * scale, value * scale
                else:
                    w = width
                    x, y, h = x0, base - (stack + value) * scale, value * scale
                    stack += value
                parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.5))}" height="{_num(h)}" '
                             f'fill="{_fill(figure, s)}" stroke="#1b1f24" stroke-width="{0.5 if w > 3 else 0}">'
                             f"<title>{escape(key_text(labels[i]))}, {escape(names[s])}: "
                             f"{escape(number_text(value, kind))}</title></rect>")
    parts.append(f'<line x1="{_num(left)}" y1="{_num(base)}" x2="{_num(left + plot_w)}" y2="{_num(base)}" '
                 f'stroke="#1b1f24"/>')
    if chart.reference is not None:
        y = base - float(chart.reference) * scale
        parts.append(f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(left + plot_w)}" y2="{_num(y)}" '
                     f'stroke="#a01c1c" stroke-width="1.5" stroke-dasharray="6 4" class="chart-ref"/>')
        parts.append(f'<text x="{_num(left + plot_w + 4)}" y="{_num(y + 4)}" class="chart-ref-label">'
                     f"{escape(_short(str(chart.reference_label)))}</text>")
    parts.extend(legend)
    parts.append("</svg>")
    return Markup("".join(parts))


def _horizontal(figure: Figure, chart: Chart, labels: list[str], series: list[list[float | None]],
                names: list[str], title: str, desc: str) -> Markup:
    """Rows down the side (schools, handlers, statuses, messages), bars to the right, values at their end."""
    kind = _unit_kind(figure, chart)
    ticks = nice_ticks(_top(chart, series), whole=kind == "count")
    decimals = tick_decimals(ticks)
    left, right, top_pad = 200.0, 56.0, 24.0
    plot_w = WIDTH - left - right
    n = len(labels)
    row_h = 22.0 if chart.kind != "grouped" or len(series) == 1 else 10.0 * len(series) + 8
    plot_h = row_h * n
    scale = plot_w / ticks[-1]
    base = top_pad + plot_h
    legend, legend_h = _legend(figure, names, base + 34, False)
    height = base + 24 + legend_h + 8
    parts = _open(figure, height, title, desc)
    parts.append("<defs>" + "".join(_patterns(figure, len(series))) + "</defs>")
    if chart.unit:
        parts.append(f'<text x="{_num(left)}" y="14" class="chart-unit">{escape(str(chart.unit))}</text>')
    for tick in ticks:
        x = left + tick * scale
        parts.append(f'<line x1="{_num(x)}" y1="{_num(top_pad)}" x2="{_num(x)}" y2="{_num(base)}" '
                     f'class="chart-grid" stroke="#d9dee4"/>')
        parts.append(f'<text x="{_num(x)}" y="{_num(base + 14)}" text-anchor="middle" class="chart-tick">'
                     f"{escape(tick_text(tick, decimals))}</text>")
    for i, label in enumerate(labels):
        y0 = top_pad + row_h * i
        shown = key_text(label)
        parts.append(f'<text x="{_num(left - 6)}" y="{_num(y0 + row_h / 2 + 4)}" text-anchor="end" '
                     f'class="chart-label">{escape(_short(shown))}</text>')
        stack = 0.0
        inner = row_h - 6
        for s, values in enumerate(series):
            value = values[i]
            if value is None:
                continue
            if chart.kind == "grouped" and len(series) > 1:
                h = inner / len(series)
                x, y, w = left, y0 + 3 + h * s, value * scale
            else:
                h = inner
                x, y, w = left + stack * scale, y0 + 3, value * scale
                stack += value
            if value:
                parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
                             f'fill="{_fill(figure, s)}" stroke="#1b1f24" stroke-width="0.5">'
                             f"<title>{escape(shown)}, {escape(names[s])}: {escape(number_text(value, kind))}"
                             f"</title></rect>")
            if chart.kind == "grouped" and len(series) > 1:
                parts.append(f'<text x="{_num(x + w + 4)}" y="{_num(y + h / 2 + 3)}" font-size="9" '
                             f'class="chart-value">{escape(number_text(value, kind))}</text>')
        if chart.kind != "grouped" or len(series) == 1:
            total = sum(v or 0 for v in (values[i] for values in series))
            parts.append(f'<text x="{_num(left + total * scale + 4)}" y="{_num(y0 + row_h / 2 + 4)}" '
                         f'class="chart-value">{escape(number_text(total, kind))}</text>')
    parts.append(f'<line x1="{_num(left)}" y1="{_num(top_pad)}" x2="{_num(left)}" y2="{_num(base)}" stroke="#1b1f24"/>')
    if chart.reference is not None:
        x = left + float(chart.reference) * scale
        parts.append(f'<line x1="{_num(x)}" y1="{_num(top_pad)}" x2="{_num(x)}" y2="{_num(base)}" '
                     f'stroke="#a01c1c" stroke-width="1.5" stroke-dasharray="6 4" class="chart-ref"/>')
        parts.append(f'<text x="{_num(x)}" y="{_num(top_pad - 6)}" text-anchor="middle" class="chart-ref-label">'
                     f"{escape(_short(str(chart.reference_label)))}</text>")
    parts.extend(legend)
    parts.append("</svg>")
    return Markup("".join(parts))
