"""The plan's DAG as a static, self-contained SVG (no JavaScript needed to see it).

Layout: one column per topological layer (``PlanStage.layer``), left to right; within a
column the stages are ordered by a few barycenter sweeps (the classic Sugiyama heuristic)
to reduce edge crossings, keeping the stages of one ``use`` group next to each other.
Every piece of user text goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from .._values import format_duration
from ..compiler._plan import Plan, PlanStage

__all__ = ["Box", "Layout", "count_crossings", "layout_plan", "order_layers", "plan_to_svg"]

_BOX_HEIGHT = 46
_ROW_GAP = 30
_COLUMN_GAP = 70
_MARGIN = 24
_CHAR_WIDTH = 7.4          # average width of a 13px sans-serif character, for sizing boxes
_MIN_BOX_WIDTH = 120
_MAX_LABEL_CHARS = 34
_SWEEPS = 4
_DUMMY_HEIGHT = 8          # a routing point of an edge that skips layers
_BAND_LABEL = 22           # room above a group band for its label
_BAND_GAP = 34

_EDGE = "#94a3b8"
_CRITICAL = "#dc2626"


@dataclass(frozen=True, slots=True, kw_only=True)
class Box:
    """Where one stage is drawn."""

    name: str
    x: float
    y: float
    width: float
    height: float
    layer: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    boxes: tuple[Box, ...]
    columns: tuple[tuple[str, ...], ...]   # stage names per layer, in drawing order (top to bottom)
    unit_columns: tuple[tuple[str, ...], ...]   # the same with the routing points of long edges
    unit_edges: tuple[tuple[str, str], ...]     # edges between adjacent columns, after splitting
    #: (before, after) -> routing points (x_left, y, x_right) of an edge that skips layers
    waypoints: Mapping[tuple[str, str], tuple[tuple[float, float, float], ...]]
    bands: tuple[tuple[str, float, float], ...]  # (top-level group or "", top y, height)
    width: float
    height: float

    def box(self, name: str) -> Box:
        for box in self.boxes:
            if box.name == name:
                return box
        raise KeyError(name)


def _mean(values: Sequence[float], fallback: float) -> float:
    return sum(values) / len(values) if values else fallback


def order_layers(
    layers: Sequence[Sequence[str]],
    edges: Iterable[tuple[str, str]],
    bands: Mapping[str, int] | None = None,
) -> list[list[str]]:
    """Order the names inside each layer to reduce crossings (barycenter sweeps, best kept).

    ``bands`` maps a name to its band (0 when absent): a layer is sorted by band first, so
    the stages of one ``use`` group stay together and their rectangle holds no stranger.
    """
    bands = bands or {}
    edge_list = list(edges)
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for before, after in edge_list:
        succs.setdefault(before, []).append(after)
        preds.setdefault(after, []).append(before)
    order = [sorted(layer, key=lambda n: bands.get(n, 0)) for layer in layers]

    def sort_layer(layer: list[str], neighbours: Mapping[str, list[str]]) -> list[str]:
        pos = {name: float(i) for column in order for i, name in enumerate(column)}
        bary = {
            name: _mean([pos[n] for n in neighbours.get(name, ()) if n in pos], pos[name]) for name in layer
        }
        return sorted(layer, key=lambda name: (bands.get(name, 0), bary[name], pos[name]))

    best = [list(layer) for layer in order]
    best_crossings = count_crossings(best, edge_list)
    for _ in range(_SWEEPS):
        for i in range(1, len(order)):
            order[i] = sort_layer(order[i], preds)
        for i in range(len(order) - 2, -1, -1):
            order[i] = sort_layer(order[i], succs)
        crossings = count_crossings(order, edge_list)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in order], crossings
    return best


def count_crossings(order: Sequence[Sequence[str]], edges: Iterable[tuple[str, str]]) -> int:
    """Crossings between edges joining adjacent layers (callers split longer edges first)."""
    where = {name: (li, i) for li, layer in enumerate(order) for i, name in enumerate(layer)}
    by_gap: dict[int, list[tuple[int, int]]] = {}
    for before, after in edges:
        if before not in where or after not in where:
            continue
        (la, ia), (lb, ib) = where[before], where[after]
        if lb == la + 1:
            by_gap.setdefault(la, []).append((ia, ib))
    total = 0
    for segments in by_gap.values():
        for k, (a1, b1) in enumerate(segments):
            for a2, b2 in segments[k + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _label(name: str) -> str:
    return name if len(name) <= _MAX_LABEL_CHARS else name[: _MAX_LABEL_CHARS - 1] + "…"


def _box_width(stage: PlanStage) -> float:
    detail = len(format_duration(stage.estimate_s)) + (len(format_duration(stage.slack_s)) + 9) * (
        stage.slack_s > 0
    )
    text = max(len(_label(stage.name)), detail)
    return max(_MIN_BOX_WIDTH, text * _CHAR_WIDTH + 28)


def _edges(plan: Plan) -> list[tuple[str, str]]:
    names = {s.name for s in plan.stages}
    return [(before, s.name) for s in plan.stages for before in s.after if before in names]


def _dummy(before: str, after: str, layer: int) -> str:
    # NUL cannot occur in a stage name, so a routing point never collides with a stage.
    return f"\0{before}\0{after}\0{layer}"


def layout_plan(plan: Plan) -> Layout:
    """Place every stage of ``plan``: columns by layer, one horizontal band per top-level
    ``use`` group, rows by barycenter order; edges that skip layers get routing points."""
    stages = {s.name: s for s in plan.stages}
    band_keys: list[str] = []
    for stage in plan.stages:
        key = stage.group[0] if stage.group else ""
        if key not in band_keys:
            band_keys.append(key)
    band_of = {s.name: band_keys.index(s.group[0] if s.group else "") for s in plan.stages}
    layer_of = {s.name: s.layer for s in plan.stages}
    # Split every edge that skips layers into unit edges through routing points.
    unit_edges: list[tuple[str, str]] = []
    routes: dict[tuple[str, str], list[str]] = {}
    for before, after in _edges(plan):
        chain = [before]
        for layer in range(layer_of[before] + 1, layer_of[after]):
            point = _dummy(before, after, layer)
            layer_of[point] = layer
            band_of[point] = band_of[before] if band_of[before] == band_of[after] else band_of[after]
            chain.append(point)
        chain.append(after)
        routes[(before, after)] = chain
        unit_edges.extend(pairwise(chain))
    by_layer: dict[int, list[str]] = {}
    for name in layer_of:
        by_layer.setdefault(layer_of[name], []).append(name)
    keys = sorted(by_layer)
    columns = order_layers([by_layer[k] for k in keys], unit_edges, band_of)

    def height_of(name: str) -> float:
        return _BOX_HEIGHT if name in stages else _DUMMY_HEIGHT

    # Band heights: the tallest stack of any column within the band.
    band_height = [0.0] * len(band_keys)
    for column in columns:
        for band in range(len(band_keys)):
            items = [n for n in column if band_of[n] == band]
            if items:
                stack = sum(height_of(n) for n in items) + _ROW_GAP * (len(items) - 1)
                band_height[band] = max(band_height[band], stack)
    band_top: list[float] = []
    y = float(_MARGIN)
    for band, key in enumerate(band_keys):
        y += _BAND_LABEL if key else 0
        band_top.append(y)
        y += band_height[band] + _BAND_GAP
    height = y - _BAND_GAP + _MARGIN
    column_width = [
        max((_box_width(stages[n]) for n in column if n in stages), default=_MIN_BOX_WIDTH / 2)
        for column in columns
    ]
    places: dict[str, tuple[float, float, float, float]] = {}
    x = float(_MARGIN)
    for index, column in enumerate(columns):
        for band in range(len(band_keys)):
            items = [n for n in column if band_of[n] == band]
            stack = sum(height_of(n) for n in items) + _ROW_GAP * (len(items) - 1)
            y = band_top[band] + (band_height[band] - stack) / 2
            for name in items:
                width = _box_width(stages[name]) if name in stages else column_width[index]
                left = x + (column_width[index] - width) / 2
                places[name] = (left, y, width, height_of(name))
                y += height_of(name) + _ROW_GAP
        x += column_width[index] + _COLUMN_GAP
    boxes = tuple(
        Box(name=name, x=places[name][0], y=places[name][1], width=places[name][2],
            height=places[name][3], layer=layer_of[name])
        for name in stages
    )
    waypoints = {
        edge: tuple(
            (places[p][0], places[p][1] + places[p][3] / 2, places[p][0] + places[p][2])
            for p in chain[1:-1]
        )
        for edge, chain in routes.items()
    }
    bands = tuple(
        (key, band_top[band], band_height[band]) for band, key in enumerate(band_keys)
    )
    return Layout(
        boxes=boxes,
        columns=tuple(tuple(n for n in column if n in stages) for column in columns),
        unit_columns=tuple(tuple(column) for column in columns),
        unit_edges=tuple(unit_edges),
        waypoints=waypoints,
        bands=bands,
        width=(x - _COLUMN_GAP + _MARGIN) if columns else 2.0 * _MARGIN,
        height=height,
    )


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _group_rects(plan: Plan, layout: Layout) -> list[str]:
    boxes = {b.name: b for b in layout.boxes}
    members: dict[tuple[str, ...], list[Box]] = {}
    for stage in plan.stages:
        for depth in range(1, len(stage.group) + 1):
            members.setdefault(stage.group[:depth], []).append(boxes[stage.name])
    band_span = {key: (top, height) for key, top, height in layout.bands}
    out: list[str] = []
    # Outer groups first so that inner ones are drawn on top of them.
    for prefix, group_boxes in sorted(members.items(), key=lambda item: len(item[0])):
        pad = 14.0 if len(prefix) == 1 else 8.0
        x0 = min(b.x for b in group_boxes) - pad
        x1 = max(b.x + b.width for b in group_boxes) + pad
        if len(prefix) == 1:   # the whole band, so routing points inside it stay inside
            top, height = band_span[prefix[0]]
            y0, y1 = top - _BAND_LABEL + 2, top + height + pad
        else:
            y0 = min(b.y for b in group_boxes) - pad - 14
            y1 = max(b.y + b.height for b in group_boxes) + pad
        label = ".".join(prefix)
        out.append(
            f'<g class="group"><title>{_attr("use … as " + label)}</title>'
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="10" '
            f'fill="#eef2ff" fill-opacity="0.75" stroke="#a5b4fc" stroke-dasharray="5 3"/>'
            f'<text x="{x0 + 9:.1f}" y="{y0 + 14:.1f}" font-size="11" font-weight="600" '
            f'fill="#4338ca">{_attr(label)}</text></g>'
        )
    return out


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    bend = max((x2 - x1) / 2, 12)
    return f"C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


def _edge_path(a: Box, b: Box, waypoints: Sequence[tuple[float, float, float]]) -> str:
    x, y = a.x + a.width, a.y + a.height / 2
    parts = [f"M{x:.1f},{y:.1f}"]
    for left, mid, right in waypoints:
        parts.append(_curve(x, y, left, mid))
        parts.append(f"L{right:.1f},{mid:.1f}")
        x, y = right, mid
    parts.append(_curve(x, y, b.x - 2, b.y + b.height / 2))
    return " ".join(parts)


def plan_to_svg(plan: Plan, *, id_prefix: str = "alfred") -> str:
    """The plan's DAG as an ``<svg>`` element; ``id_prefix`` keeps ids unique when several share a page."""
    prefix = "".join(c if c.isalnum() or c in "-_" else "-" for c in id_prefix) or "alfred"
    if not plan.stages:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" class="alfred-dag" width="200" height="40" '
            'viewBox="0 0 200 40" role="img" aria-label="empty workflow">'
            '<text x="12" y="25" font-family="sans-serif" font-size="13" fill="#64748b">no stages</text>'
            "</svg>"
        )
    layout = layout_plan(plan)
    boxes = {b.name: b for b in layout.boxes}
    path = plan.critical_path
    critical_edges = set(pairwise(path))
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="alfred-dag" width="{layout.width:.0f}" '
        f'height="{layout.height:.0f}" viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" role="img" '
        f'aria-label="{_attr("stage graph of workflow " + plan.workflow)}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">',
        "<defs>",
    ]
    for kind, colour in (("edge", _EDGE), ("crit", _CRITICAL)):
        parts.append(
            f'<marker id="{prefix}-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    parts.append("</defs>")
    parts.extend(_group_rects(plan, layout))
    edges = sorted(_edges(plan), key=lambda e: e in critical_edges)   # critical edges drawn last, on top
    for before, after in edges:
        critical = (before, after) in critical_edges
        colour, width, kind = (_CRITICAL, 2.5, "crit") if critical else (_EDGE, 1.4, "edge")
        d = _edge_path(boxes[before], boxes[after], layout.waypoints.get((before, after), ()))
        parts.append(
            f'<path class="edge{" critical" if critical else ""}" d="{d}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}" marker-end="url(#{prefix}-arrow-{kind})">'
            f"<title>{_attr(before + ' → ' + after)}</title></path>"
        )
    on_path = set(path)
    for stage in plan.stages:
        box = boxes[stage.name]
        if stage.name in on_path:
            fill, stroke, stroke_width = "#fee2e2", _CRITICAL, 2.2
        elif stage.critical:
            fill, stroke, stroke_width = "#fff1f2", "#f87171", 1.5
        else:
            fill, stroke, stroke_width = "#ffffff", "#64748b", 1.2
        detail = format_duration(stage.estimate_s)
        if stage.slack_s > 0:
            detail += f" · slack {format_duration(stage.slack_s)}"
        agents = ", ".join(stage.agents) or "—"
        tooltip = f"{stage.name}\nagent: {agents}\nestimate: {format_duration(stage.estimate_s)}"
        cx = box.x + box.width / 2
        parts.append(
            f'<g class="stage{" critical" if stage.name in on_path else ""}" '
            f'data-stage="{_attr(stage.name)}">'
            f"<title>{_attr(tooltip)}</title>"
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" rx="7" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"/>'
            f'<text x="{cx:.1f}" y="{box.y + 19:.1f}" text-anchor="middle" font-size="13" font-weight="600" '
            f'fill="#0f172a">{_attr(_label(stage.name))}</text>'
            f'<text x="{cx:.1f}" y="{box.y + 36:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#475569">{_attr(detail)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
