"""A diagram's model drawn as Graphviz DOT: styles by role, labels, tooltips, edge widths.

All user data reaches the DOT through ``_text()``: backslashes and "<...>" made literal.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable

import graphviz

from .words import duration, plural, stats

# Node names in the DOT: a step keeps its own name when that is a plain identifier (always so
# for Python methods); anything else (user data from old logs) gets a synthetic name starting
# with "~", as do the start and end markers, so no step can clash with them.
_START, _END = "~start", "~end"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LABEL_MAX = 40

# Light-mode colours written into the DOT, so a downloaded SVG reads well without our CSS;
# static/diagram.css overrides them by class on the page (light and dark).
_FONT = "Helvetica,Arial,sans-serif"
_INK, _EDGE, _MUTED, _FAINT = "#1f2937", "#334155", "#6b7280", "#a3acb9"
_FILL = {"current": "#dbeafe", "failed": "#fee2e2", "waiting": "#fef3c7", "visited": "#f1f5f9",
         "step": "#ffffff"}
_STROKE = {"current": "#1d4ed8", "failed": "#b91c1c", "waiting": "#b45309", "visited": "#475569",
           "step": _FAINT}


def to_dot(d) -> str:
    """The DOT source of diagram ``d`` (a ``model.Diagram``)."""
    g = _graph(d.flow, "history fleet" if d.fleet else "history" if d.history else "static")
    names = _node_names([node.name for node in d.nodes])
    most = d.max_count if d.fleet else None
    _start(g, names[d.first], taken=d.history and (not d.fleet or bool(d.starts)),
           count=d.starts, most=most)
    for node in d.nodes:
        if d.fleet:
            _fleet_node(g, names[node.name], node)
        else:
            _node(g, names[node.name], node, history=d.history)
    for a, b, n in d.edges:
        if d.history:
            _edge(g, names[a], names[b], a, b, n, exact=d.path_known, most=most)
        else:
            _edge(g, names[a], names[b], a, b, None, static=True)
    for i, (step, kind, tooltip) in enumerate(d.ends):
        _end(g, names[step], step, kind, tooltip, add_node=i == 0,
             count=d.end_counts.get(step) if d.fleet else None, most=most)
    return g.source


# Heat fills (light mode; static/diagram.css sets both modes): a sequential orange scale.
_HEAT = {1: "#fff7ed", 2: "#fed7aa", 3: "#fdba74", 4: "#f97316"}


def _width(count: int, most: int | None) -> str:
    """Pen width of an edge taken ``count`` times: on a log scale, relative to the most
    taken edge of the graph when ``most`` is given (a flow's statistics), else absolute."""
    if most:
        return f"{1.0 + 4.0 * math.log1p(count) / math.log1p(most):.1f}"
    return f"{1.2 + min(3.3, 0.8 * math.log2(count)):.1f}"


def _fleet_node(g: graphviz.Digraph, dot_name: str, node) -> None:
    """A step over every workflow: visits, how many are there now (and failed), p50/p95."""
    f, fleet, classes = node.facts, node.fleet, node.classes
    label, tip = [_short(node.name)], [node.name, plural(f.visits or 0, "visit")]
    label.append(plural(f.visits or 0, "visit") + (f" · {fleet.now:,} now" if fleet.now
                                                    else ""))
    tip.append(f"{fleet.now:,} workflow(s) here now (running, waiting or failed)")
    if fleet.p95_ms is not None:
        label.append(f"p50 {duration(fleet.p50_ms)} · p95 {duration(fleet.p95_ms)}")
        tip.append(f"time per visit: mean {duration(fleet.mean_ms)}, p50 "
                   f"{duration(fleet.p50_ms)}, p95 {duration(fleet.p95_ms)} "
                   f"(of {plural(fleet.timed, 'visit')} that ended)")
    if fleet.failed:
        label.append(f"⚠ {fleet.failed:,} failed")
        tip.append(f"{fleet.failed:,} workflow(s) failed here")
    if not f.in_flow:
        label.append("(not in the flow)")
    fill = _HEAT.get(fleet.heat, _FILL["visited" if f.visits else "step"])
    attrs = {"id": _text(f"step-{node.name}"), "class": " ".join(classes),
             "label": _text(*label), "tooltip": _text(*tip), "fillcolor": fill,
             "color": _STROKE["failed" if fleet.failed else "visited" if f.visits else "step"]}
    if fleet.failed:
        attrs.update(style="rounded,filled,bold", penwidth="2")
    if fleet.now:
        attrs["peripheries"] = "2"       # workflows are here: a double border
    if not f.visits:
        attrs["fontcolor"] = _MUTED
    if not f.in_flow:
        attrs["style"] = "rounded,filled,dashed"
    if node.href:
        attrs["href"] = _text(node.href)
    g.node(dot_name, **attrs)


def _node_names(order: Iterable[str]) -> dict[str, str]:
    return {name: name if _IDENT.match(name) else f"~{i}" for i, name in enumerate(order)}




def _text(*lines: str) -> str:
    """A DOT escString showing ``lines``, one per line, without control characters."""
    parts = []
    for line in lines:
        line = _CONTROL.sub("", str(line).replace("\r\n", "\n").replace("\t", " "))
        parts.append(line.replace("\\", "\\\\").replace("\n", "\\n"))
    return graphviz.nohtml("\\n".join(parts))


def _short(text: str, limit: int = _LABEL_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _graph(flow_name: str, kind: str) -> graphviz.Digraph:
    return graphviz.Digraph(
        _text(f"Steps of {flow_name}"),
        graph_attr={"class": kind, "bgcolor": "transparent", "rankdir": "TB", "pad": "0.1",
                    "nodesep": "0.35", "ranksep": "0.4", "fontname": _FONT},
        # The margin leaves room for the name, which the stylesheet sets in bold.
        node_attr={"fontname": _FONT, "fontsize": "12", "shape": "box",
                   "style": "rounded,filled", "margin": "0.2,0.06", "fontcolor": _INK},
        edge_attr={"fontname": _FONT, "fontsize": "11", "fontcolor": _MUTED,
                   "arrowsize": "0.7"},
    )


def _node(g: graphviz.Digraph, dot_name: str, node, *, history: bool) -> None:
    f, classes = node.facts, node.classes
    role = next((c for c in ("failed", "waiting", "current", "visited") if c in classes), "step")
    label, tip = [_short(node.name)], [node.name]
    if history:
        if stats(f):
            label.append(stats(f))
        tip.append(stats(f, long=True) or "not visited")
        if f.entries:
            tip.append(plural(f.entries, "log entry", "log entries"))
        if f.errors:
            tip.append(plural(f.errors, "failed action attempt"))
    label.extend(_short(line) for line in node.badge)
    tip.extend(node.notes)
    if not f.in_flow:
        label.append("(not in the flow)")
    attrs = {"id": _text(f"step-{node.name}"), "class": " ".join(classes),
             "label": _text(*label), "tooltip": _text(*tip),
             "fillcolor": _FILL[role], "color": _STROKE[role]}
    if "current" in classes:
        attrs.update(peripheries="2", penwidth="1.6")   # a double border: not colour alone
    if "failed" in classes:
        attrs["style"] = "rounded,filled,bold"
    if not f.in_flow:
        attrs["style"] = "rounded,filled,dashed"
    if history and "visited" not in classes:
        attrs["fontcolor"] = _MUTED
    if node.href:
        attrs["href"] = _text(node.href)
    g.node(dot_name, **attrs)


def _edge(g, tail: str, head: str, a: str, b: str, count: int | None, *,
          exact: bool = True, static: bool = False, most: int | None = None) -> None:
    attrs = {"id": _text(f"edge-{a}-{b}")}
    if count:
        times = plural(count, "time") if exact else f"at least {plural(count, 'time')}"
        attrs.update({
            "class": "taken", "label": f" {count:,} " if exact else f" ≥{count:,} ",
            "color": _EDGE, "penwidth": _width(count, most),
            "tooltip": _text(f"{a} → {b}: taken {times}"),
        })
    elif static:
        attrs.update({"class": "possible", "color": _MUTED, "tooltip": _text(f"{a} → {b}")})
    else:
        attrs.update({
            "class": "possible", "style": "dashed", "color": _FAINT, "arrowhead": "vee",
            "tooltip": _text(f"{a} → {b}: possible, "
                             + ("never taken" if count == 0 else "unknown whether taken")),
        })
    g.edge(tail, head, **attrs)


def _start(g, first: str, *, taken: bool, count: int | None = None,
           most: int | None = None) -> None:
    g.node(_START, id="start", **{"class": "start"}, label="", tooltip="start",
           shape="circle", style="filled", width="0.18", fixedsize="true",
           fillcolor=_EDGE, color=_EDGE)
    counted = {"label": f" {count:,} ", "penwidth": _width(count, most),
               "tooltip": f"started: {count:,}"} if count else {}
    g.edge(_START, first, id="edge-start", **{"class": ("taken" if taken else "possible")
                                              + " start"}, color=_EDGE,
           **({"tooltip": "start"} | counted))


def _end(g, tail: str, step_name: str, kind: str, tooltip: str, *,
         add_node: bool = True, count: int | None = None, most: int | None = None) -> None:
    """The end marker: ``kind`` is finished, cancelled, or possible (in a static graph)."""
    if add_node and kind == "cancelled":
        g.node(_END, id="end", **{"class": "end cancelled"}, tooltip=_text(tooltip),
               label="cancelled", shape="octagon", fontsize="10", style="filled",
               fillcolor=_FILL["visited"], color=_INK, margin="0.04,0.02")
    elif add_node:
        g.node(_END, id="end", **{"class": "end"}, tooltip=_text(tooltip), label="",
               shape="doublecircle", style="filled", fillcolor=_EDGE, color=_EDGE,
               width="0.14", fixedsize="true")
    counted = {"label": f" {count:,} ", "penwidth": _width(count, most),
               "tooltip": _text(tooltip)} if count else {}
    g.edge(tail, _END, id=_text(f"edge-{step_name}-end"), color=_EDGE,
           **{"class": ("possible" if kind == "possible" else "taken") + " end"}, **counted)
