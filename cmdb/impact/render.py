"""Pictures of a blast radius: DOT text, SVG drawn here (no Graphviz needed) and a
self-contained HTML page with the SVG inline.

CIs are coloured by state (down red, degraded amber, unaffected grey; the
starting CIs dark red) and business services are drawn with a thick blue
border. The SVG layout is layered by depth: the starting CIs on the left,
each further column one step upstream.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from cmdb.impact.radius import BUSINESS_SERVICE, BlastRadius, ReachedCI
from cmdb.model import Relationship

__all__ = ["MAX_DRAWN", "to_dot", "to_html", "to_svg"]

MAX_DRAWN = 400
"""The most CIs a picture draws (nearest first); the rest are counted in the caption."""

FILL = {"start": "#8e1b1b", "down": "#e74c3c", "degraded": "#f5a623", "unaffected": "#d5dbdb", "": "#aed6f1"}
TEXT = {"start": "#ffffff", "down": "#ffffff", "degraded": "#1b1b1b", "unaffected": "#1b1b1b", "": "#1b1b1b"}
SERVICE_STROKE = "#1f4e9c"


def _drawn(radius: BlastRadius) -> tuple[list[ReachedCI], list[Relationship], int]:
    shown = radius.reached[:MAX_DRAWN]
    keep = {*radius.start_ids, *(r.ci_id for r in shown)}
    edges: dict[tuple[str, str, str], Relationship] = {}
    for r in shown:
        for rel in r.path:
            if rel.from_id in keep and rel.to_id in keep:
                edges.setdefault(rel.key, rel)
    return shown, [edges[k] for k in sorted(edges)], len(radius.reached) - len(shown)


def _label(ci_id: str, name: str, limit: int = 28) -> str:
    text = name or ci_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or ci_id
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(radius: BlastRadius) -> str:
    what = "blast radius" if radius.direction == "in" else "dependencies"
    when = f" as of {radius.as_of:%Y-%m-%d %H:%M}" if radius.as_of else ""
    return f"{what} of {', '.join(radius.start_ids)}{when}, depth {radius.max_depth}"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(radius: BlastRadius) -> str:
    """Graphviz DOT text: edges point from the dependent to what it needs."""
    shown, edges, hidden = _drawn(radius)
    lines = [
        "digraph blast_radius {",
        f"  label={_dot_quote(_title(radius) + (f' ({hidden} more not drawn)' if hidden else ''))};",
        "  rankdir=RL;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#7f8c8d"];',
    ]
    for ci_id in radius.start_ids:
        ci = radius.starts.get(ci_id)
        extra = ", penwidth=3, color=" + _dot_quote(SERVICE_STROKE) if ci and ci.type == BUSINESS_SERVICE else ""
        lines.append(
            f"  {_dot_quote(ci_id)} [label={_dot_quote(_label(ci_id, ci.name if ci else ''))}, "
            f"fillcolor={_dot_quote(FILL['start'])}, fontcolor={_dot_quote(TEXT['start'])}{extra}];"
        )
    for r in shown:
        state = r.state or ""
        service = r.ci is not None and r.ci.type == BUSINESS_SERVICE
        attrs = [
            f"label={_dot_quote(_label(r.ci_id, r.ci.name if r.ci else ''))}",
            f"fillcolor={_dot_quote(FILL[state])}",
            f"fontcolor={_dot_quote(TEXT[state])}",
            f"tooltip={_dot_quote(f'{r.ci_id} depth {r.depth} {state} {r.reason}'.strip())}",
        ]
        if service:
            attrs += ["shape=doubleoctagon", "penwidth=3", f"color={_dot_quote(SERVICE_STROKE)}"]
        lines.append(f"  {_dot_quote(r.ci_id)} [{', '.join(attrs)}];")
    for rel in edges:
        lines.append(f"  {_dot_quote(rel.from_id)} -> {_dot_quote(rel.to_id)} [label={_dot_quote(rel.type)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout(radius: BlastRadius, shown: Sequence[ReachedCI]) -> tuple[dict[str, tuple[float, float]], float, float]:
    columns: dict[int, list[str]] = {0: list(radius.start_ids)}
    for r in shown:
        columns.setdefault(r.depth, []).append(r.ci_id)
    width, height, gap_x, gap_y = 190.0, 30.0, 70.0, 12.0
    tallest = max(len(ids) for ids in columns.values())
    total_height = tallest * (height + gap_y) + 60
    positions: dict[str, tuple[float, float]] = {}
    for depth, ids in sorted(columns.items()):
        offset = (total_height - len(ids) * (height + gap_y)) / 2
        for i, ci_id in enumerate(ids):
            positions[ci_id] = (20 + depth * (width + gap_x), offset + i * (height + gap_y))
    total_width = 40 + (max(columns) + 1) * (width + gap_x)
    return positions, total_width, total_height


def to_svg(radius: BlastRadius) -> str:
    """An SVG picture, laid out in columns by depth (no Graphviz)."""
    shown, edges, hidden = _drawn(radius)
    positions, total_width, total_height = _layout(radius, shown)
    w, h = 190.0, 30.0
    esc = html.escape
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="blast-radius" width="{total_width:.0f}" '
            f'height="{total_height + 30:.0f}" viewBox="0 0 {total_width:.0f} {total_height + 30:.0f}" '
            'font-family="Helvetica, Arial, sans-serif" font-size="11">'
        ),
        _MARKER,
        f'<text x="20" y="20" font-size="14" font-weight="bold">{esc(_title(radius))}'
        + (f" ({hidden} more not drawn)" if hidden else "")
        + "</text>",
    ]
    for rel in edges:
        x1, y1 = positions[rel.from_id]
        x2, y2 = positions[rel.to_id]
        # From the dependent's left side to the dependency's right side (dependents sit further right).
        sx, sy, tx, ty = x1, y1 + h / 2, x2 + w, y2 + h / 2
        if x1 < x2:
            sx, tx = x1 + w, x2
        parts.append(
            f'<path class="edge" data-from="{esc(rel.from_id)}" data-to="{esc(rel.to_id)}" '
            f'd="M {sx:.1f} {sy:.1f} C {(sx + tx) / 2:.1f} {sy:.1f}, {(sx + tx) / 2:.1f} {ty:.1f}, {tx:.1f} {ty:.1f}" '
            f'fill="none" stroke="#95a5a6" stroke-width="1.2" marker-end="url(#arrow)"><title>{esc(rel.type)}</title></path>'
        )

    def node(ci_id: str, name: str, state: str, service: bool, tip: str) -> None:
        x, y = positions[ci_id]
        stroke = f'stroke="{SERVICE_STROKE}" stroke-width="3"' if service else 'stroke="#566573" stroke-width="0.8"'
        parts.append(
            f'<g class="ci state-{state or "none"}{" service" if service else ""}" data-id="{esc(ci_id)}">'
            f"<title>{esc(tip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.0f}" height="{h:.0f}" rx="6" fill="{FILL[state]}" {stroke}/>'
            f'<text x="{x + 8:.1f}" y="{y + 19:.1f}" fill="{TEXT[state]}">{esc(_label(ci_id, name))}</text></g>'
        )

    for ci_id in radius.start_ids:
        ci = radius.starts.get(ci_id)
        node(ci_id, ci.name if ci else "", "start", bool(ci and ci.type == BUSINESS_SERVICE), f"{ci_id} (start)")
    for r in shown:
        service = r.ci is not None and r.ci.type == BUSINESS_SERVICE
        tip = f"{r.ci_id}\ndepth {r.depth}" + (f"\n{r.state}: {r.reason}" if r.state else "")
        node(r.ci_id, r.ci.name if r.ci else "", r.state or "", service, tip)
    legend_y = total_height + 10
    x = 20.0
    for label, state in (("start", "start"), ("down", "down"), ("degraded", "degraded"), ("unaffected", "unaffected")):
        parts.append(
            f'<rect x="{x:.0f}" y="{legend_y:.0f}" width="14" height="14" fill="{FILL[state]}" stroke="#566573"/>'
            f'<text x="{x + 18:.0f}" y="{legend_y + 11:.0f}">{label}</text>'
        )
        x += 100
    parts.append(
        f'<rect x="{x:.0f}" y="{legend_y:.0f}" width="14" height="14" fill="#ffffff" stroke="{SERVICE_STROKE}" '
        f'stroke-width="3"/><text x="{x + 18:.0f}" y="{legend_y + 11:.0f}">business service</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


_MARKER = (
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#7f8c8d"/></marker></defs>'
)

_MARKER = (
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
    'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#7f8c8d"/></marker></defs>'
)

_SCRIPT = """
const rows = document.querySelectorAll('tbody tr');
document.getElementById('filter').addEventListener('input', (e) => {
  const q = e.target.value.toLowerCase();
  rows.forEach((r) => { r.style.display = r.textContent.toLowerCase().includes(q) ? '' : 'none'; });
});
document.querySelectorAll('g.ci').forEach((g) => {
  g.addEventListener('mouseenter', () => {
    const id = g.dataset.id;
    document.querySelectorAll('path.edge').forEach((p) => {
      if (p.dataset.from === id || p.dataset.to === id) { p.setAttribute('stroke', '#1f4e9c'); p.setAttribute('stroke-width', '2.5'); }
    });
  });
  g.addEventListener('mouseleave', () => {
    document.querySelectorAll('path.edge').forEach((p) => { p.setAttribute('stroke', '#95a5a6'); p.setAttribute('stroke-width', '1.2'); });
  });
});
"""


def to_html(radius: BlastRadius) -> str:
    """A self-contained page: the SVG inline, the services, and a filterable table of every CI."""
    esc = html.escape
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{esc(str(v))}</td>"
            for v in (r["depth"], r["id"], r["name"], r["type"], r["state"], r["owner"], r["reason"], r["path"])
        )
        + "</tr>"
        for r in radius.records()
    )
    services = "".join(
        f"<li><b>{esc(s.ci.name if s.ci else s.ci_id)}</b> ({esc(s.ci_id)}){' - ' + esc(s.state) if s.state else ''}</li>"
        for s in radius.services
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(_title(radius))}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #1b1b1b; }}
.picture {{ overflow: auto; border: 1px solid #d5dbdb; margin: 1em 0; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border-bottom: 1px solid #eaeded; padding: 3px 8px; text-align: left; vertical-align: top; }}
g.ci {{ cursor: default; }}
</style></head>
<body>
<h1>{esc(_title(radius))}</h1>
<p>{len(radius.reached)} CIs reached{" (truncated)" if radius.truncated else ""},
{len(radius.services)} business services, owners: {esc(", ".join(radius.owners) or "none")}.</p>
<h2>Business services</h2><ul>{services or "<li>none</li>"}</ul>
<div class="picture">{to_svg(radius)}</div>
<h2>Every CI reached</h2>
<input id="filter" placeholder="filter" size="40">
<table><thead><tr><th>depth</th><th>id</th><th>name</th><th>type</th><th>state</th><th>owner</th><th>reason</th><th>path</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""
