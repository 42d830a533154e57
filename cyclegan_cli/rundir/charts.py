"""Line charts as inline SVG for the run report (no plotting library, no scripts, no fonts to
fetch): a few kilobytes each, sharp at any zoom, readable on a phone.

A series longer than :data:`MAX_POINTS` is drawn from bucket means, so a run of a million steps
makes a chart as small as one of a thousand.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_POINTS = 400  # points drawn per series
# Okabe–Ito: told apart with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 14, 50, 44  # plot margins (title and legend on top)
CHAR = 8.5  # legend text width per character, roughly


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False


def thin(x: Sequence[float], y: Sequence[float], limit: int = MAX_POINTS
         ) -> tuple[list[float], list[float]]:
    """At most ``limit`` points: the means of equal runs of consecutive points."""
    n = len(x)
    if n <= limit:
        return list(x), list(y)
    edges = [round(i * n / limit) for i in range(limit + 1)]
    xs, ys = [], []
    for a, b in zip(edges, edges[1:], strict=False):
        if b > a:
            xs.append(sum(x[a:b]) / (b - a))
            ys.append(sum(y[a:b]) / (b - a))
    return xs, ys


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers (1, 2 or 5 × 10^k apart) covering [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten (with 2× and 5× between them when the range is short) covering [low, high]."""
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    mantissas = (1, 2, 5) if hi - lo <= 2 else (1,)
    return [m * 10.0 ** k for k in range(lo, hi + 1) for m in mantissas
            if low / 1.0001 <= m * 10.0 ** k <= high * 1.0001] or [low, high]


def label(value: float) -> str:
    """A tick label: short, without trailing zeros."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.4g}"


def wants_log(series: Sequence[Series]) -> bool:
    """Log scale where it helps: every value positive and spanning more than 20×."""
    values = [v for s in series for v in s.y if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def line_chart(series: Sequence[Series], title: str, *, x_label: str = "step",
               log_y: bool | None = None) -> str:
    """An ``<svg>`` element with one line per series, axes, ticks and a legend (``log_y=None``
    chooses with :func:`wants_log`)."""
    drawn = [(s, *thin(s.x, s.y)) for s in series if len(s.x)]
    drawn = [(s, [a for a, b in zip(xs, ys, strict=True) if math.isfinite(b)],
              [b for b in ys if math.isfinite(b)]) for s, xs, ys in drawn]
    drawn = [d for d in drawn if d[1]]
    esc = html.escape
    if not drawn:
        return (f'<svg class="chart" viewBox="0 0 {WIDTH} 60" role="img"><title>{esc(title)}'
                f'</title><text x="8" y="34">{esc(title)}: nothing logged yet</text></svg>')
    log = wants_log(series) if log_y is None else bool(log_y and wants_log(series))
    xs_all = [v for _, xs, _ in drawn for v in xs]
    ys_all = [v for _, _, ys in drawn for v in ys]
    x0, x1 = min(xs_all), max(xs_all)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if log:
        y0, y1 = min(ys_all), max(ys_all)
        yticks = log_ticks(y0, y1)
        y0, y1 = min(y0, *yticks), max(y1, *yticks)
        tr = math.log10
    else:
        lo, hi = min(ys_all), max(ys_all)
        if hi == lo:
            lo, hi = lo - (abs(lo) or 1) * 0.1, hi + (abs(hi) or 1) * 0.1
        yticks = nice_ticks(lo, hi)
        y0, y1 = min(lo, yticks[0]), max(hi, yticks[-1])

        def tr(v: float) -> float:
            return v

    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ty0, ty1 = tr(y0), tr(y1)
    span = (ty1 - ty0) or 1.0

    def px(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return TOP + ph - (tr(v) - ty0) / span * ph

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>',
             f'<text x="8" y="20" class="t">{esc(title)}'
             f'{" (log scale)" if log else ""}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>']
    for v in yticks:
        y = py(v)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{label(v)}</text>')
    for v in nice_ticks(x0, x1):
        if x0 <= v <= x1:
            x = px(v)
            parts.append(f'<text x="{x:.1f}" y="{TOP + ph + 18}" text-anchor="middle">'
                         f'{label(v)}</text>')
    parts.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
                 f'{esc(x_label)}</text>')
    legend_x = LEFT
    for i, (s, xs, ys) in enumerate(drawn):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(xs, ys, strict=True))
        if len(xs) == 1:
            parts.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="3" '
                         f'fill="{colour}"/>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"{dash}/>')
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="{TOP - 14}" '
                     f'y2="{TOP - 14}" stroke="{colour}" stroke-width="3"{dash}/>'
                     f'<text x="{legend_x + 22}" y="{TOP - 9}">{esc(s.label)}</text>')
        legend_x += 36 + CHAR * len(s.label)
    parts.append("</svg>")
    return "".join(parts)
