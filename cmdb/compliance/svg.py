"""Small inline-SVG charts for self-contained HTML reports (no scripts, no CDN).

Each function returns one ``<svg>`` element of a fixed size, so a report's
layout (and a screenshot of it) is predictable.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "SEVERITY_COLOURS", "bar_chart", "donut_chart", "line_chart"]

PALETTE: tuple[str, ...] = ("#2f6db5", "#e07b39", "#3a9e5f", "#8e44ad", "#c0392b", "#16a085", "#d4ac0d", "#7f8c8d")
SEVERITY_COLOURS: dict[str, str] = {
    "critical": "#8b0000",
    "high": "#d35400",
    "medium": "#f1c40f",
    "low": "#3498db",
    "info": "#95a5a6",
}
TEXT = "#222222"
GRID = "#dddddd"


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}" if value == int(value) else f"{value:,.1f}"


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(data: Sequence[tuple[str, float]], *, width: int = 600, height: int = 280, colour: str = PALETTE[0], unit: str = "") -> str:
    """Horizontal bars, largest first as given; at most 10 bars."""
    rows = list(data)[:10]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    if not rows:
        parts.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="{TEXT}" font-size="14">no data</text></svg>')
        return "".join(parts)
    label_w, right = 200, 70
    top, gap = 10, 6
    bar_h = min(36, max(8, (height - top - 10 - gap * (len(rows) - 1)) // len(rows)))
    peak = max((v for _, v in rows), default=0.0) or 1.0
    span = width - label_w - right
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(2, int(span * value / peak)) if value > 0 else 0
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h / 2 + 4:.0f}" text-anchor="end" fill="{TEXT}" font-size="12">{escape(_short(label))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}"><title>{escape(label)}: {_fmt(value)}{unit}</title></rect>'
            f'<text x="{label_w + w + 6}" y="{y + bar_h / 2 + 4:.0f}" fill="{TEXT}" font-size="12">{_fmt(value)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, float]], *, width: int = 600, height: int = 280, colour: str = PALETTE[3]) -> str:
    """A line over time (labels are the x-axis ticks); a single point is drawn as a dot."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    if not points:
        parts.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="{TEXT}" font-size="14">no history yet</text></svg>')
        return "".join(parts)
    left, right, top, bottom = 50, 20, 15, 40
    peak = max(v for _, v in points) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    for k in range(5):
        y = top + plot_h * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT}" font-size="11">{_fmt(peak * (4 - k) / 4)}</text>'
        )
    n = len(points)
    coords = [
        (left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), top + plot_h * (1 - v / peak)) for i, (_, v) in enumerate(points)
    ]
    area = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(
        f'<polygon points="{coords[0][0]:.1f},{top + plot_h} {area} {coords[-1][0]:.1f},{top + plot_h}" fill="{colour}" fill-opacity="0.25"/>'
    )
    parts.append(f'<polyline points="{area}" fill="none" stroke="{colour}" stroke-width="3"/>')
    for (x, y), (label, value) in zip(coords, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{escape(label)}: {_fmt(value)}</title></circle>')
    step = max(1, n // 6)
    for i in range(0, n, step):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(
            f'<text x="{coords[i][0]:.1f}" y="{height - bottom + 18}" text-anchor="{anchor}" fill="{TEXT}" font-size="11">{escape(points[i][0])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def donut_chart(data: Sequence[tuple[str, float]], *, colours: dict[str, str] | None = None, width: int = 600, height: int = 280) -> str:
    """Shares of a whole as a ring with a legend."""
    rows = [(label, value) for label, value in data if value > 0]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    total = sum(v for _, v in rows)
    if not total:
        parts.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="{TEXT}" font-size="14">none</text></svg>')
        return "".join(parts)
    cx, cy, r, stroke = 150, height / 2, 90, 46
    circumference = 2 * 3.141592653589793 * r
    offset = 0.0
    for i, (label, value) in enumerate(rows):
        colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
        length = circumference * value / total
        parts.append(
            f'<circle cx="{cx}" cy="{cy:.0f}" r="{r}" fill="none" stroke="{colour}" stroke-width="{stroke}" '
            f'stroke-dasharray="{length:.2f} {circumference - length:.2f}" stroke-dashoffset="{-offset:.2f}" '
            f'transform="rotate(-90 {cx} {cy:.0f})"><title>{escape(label)}: {_fmt(value)}</title></circle>'
        )
        offset += length
        y = 40 + i * 26
        parts.append(
            f'<rect x="320" y="{y - 12}" width="16" height="16" fill="{colour}"/>'
            f'<text x="344" y="{y + 1}" fill="{TEXT}" font-size="13">{escape(_short(label, 22))}: {_fmt(value)} ({100 * value / total:.0f}%)</text>'
        )
    parts.append(f'<text x="{cx}" y="{cy + 6:.0f}" text-anchor="middle" fill="{TEXT}" font-size="20" font-weight="bold">{_fmt(total)}</text>')
    parts.append("</svg>")
    return "".join(parts)
