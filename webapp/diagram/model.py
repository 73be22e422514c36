"""The neutral graph model of a diagram, built from a flow's static transitions and one
workflow's audit log (``build``) or from the flow alone (``static``); ``dot`` draws it."""
from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine.workflow import ACTIVE
from .history import StepFacts, read_keys, read_log
from .render import renderer
from .words import failure_text, plural, wait_badge, wait_text

log = logging.getLogger("webapp.diagram")

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


@dataclass
class FleetFacts:
    """One step over every workflow of a flow: how many are there ``now`` (running,
    waiting or failed), how many of those ``failed``, its time per visit (ms; None when no
    visit ended yet) and its ``heat`` (0-4: p95 against the slowest step's)."""

    now: int = 0
    failed: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    timed: int = 0                  # visits that ended (their times make the figures)
    heat: int = 0


# Heat levels: a step's p95 at least this share of the slowest step's p95 (log-spaced, as
# times in step spread over orders of magnitude).
HEAT_SHARES = (0.5, 0.1, 0.01)


def heat(p95: float | None, slowest: float | None) -> int:
    """4 (hottest) to 1 by ``p95`` against ``slowest`` (HEAT_SHARES), 0 when untimed."""
    if p95 is None or not slowest:
        return 0
    share = p95 / slowest
    return next((4 - i for i, least in enumerate(HEAT_SHARES) if share >= least), 1)


@dataclass
class Node:
    """One step as drawn: its facts, classes, and what the page says about it."""

    name: str
    facts: StepFacts
    classes: tuple[str, ...] = ("step",)
    notes: tuple[str, ...] = ()     # where the workflow is, in full: tooltip and table
    badge: tuple[str, ...] = ()     # the same, short: label lines
    href: str | None = None
    fleet: FleetFacts | None = None  # a flow's statistics: the step over all its workflows

    @property
    def summary(self) -> str:
        """Where the workflow is, in words: "current; waiting for event event_ask"."""
        return "; ".join((["current"] if "current" in self.classes else []) + list(self.notes))


@dataclass
class Diagram:
    """A flow or workflow to draw: the neutral model, before any DOT.

    ``edges`` lists ``(from, to, count)``, taken transitions first (``count`` is ``None``
    where it cannot be known, and a lower bound when ``path_known`` is false); ``nodes`` has
    each step's facts, in drawing order; ``first`` is where the start marker points;
    ``ends`` lists ``(step, kind, tooltip)`` end markers (``kind``: finished, cancelled, or
    possible in a flow's static graph); ``notes`` says what the history cannot tell.
    """

    flow: str
    first: str
    edges: list[tuple[str, str, int | None]]
    notes: list[str]
    nodes: list[Node] = field(default_factory=list)
    history: bool = True            # False for a flow's static graph
    path_known: bool = True         # False when the history cannot say every transition
    ends: list[tuple[str, str, str]] = field(default_factory=list)
    # A flow's statistics (``fleet``): how many workflows started, and finished at each step.
    starts: int | None = None
    end_counts: dict[str, int] = field(default_factory=dict)
    slowest_ms: float | None = None

    @property
    def fleet(self) -> bool:
        return self.starts is not None

    @property
    def max_count(self) -> int:
        return max([1, self.starts or 0, *self.end_counts.values(),
                    *(n or 0 for _, _, n in self.edges)])

    @property
    def dot(self) -> str:
        from .dot import to_dot
        return to_dot(self)

    def svg(self) -> str:
        """The SVG, ready to inline in a page (raises DiagramError). A graph of more than
        MAX_DRAWN_STEPS steps is not laid out (Graphviz runs out of stack or time on it):
        its summary is drawn instead."""
        if len(self.nodes) > MAX_DRAWN_STEPS:
            return self.summary_svg()
        return renderer.render(self.dot)

    def summary_svg(self) -> str:
        """A small SVG that says what the diagram holds, for a graph too large to draw: the
        tables say the rest."""
        taken = sum(1 for _, _, n in self.edges if n)
        lines = [f"{plural(len(self.nodes), 'step')} and {plural(taken, 'transition')} "
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
          now_ms: float | None = None, of_entries: int | None = None) -> Diagram:
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
        now_ms: the workflow's clock (epoch ms): a running or waiting workflow's current
            visit is timed until then, not until its last log entry.
        of_entries: how many entries the whole log holds, when ``logs`` is only its last
            ones (a long history): the diagram says so, and its counts are of those.
    """
    spec = flow_cls.__workflow__
    status = str(status or "running")
    logs = list(logs)
    h = read_log(logs, now_ms if status in ACTIVE else None)
    first = h.first or spec.first_step
    notes: list[str] = []
    if of_entries is not None and of_entries > len(logs):
        h.complete = False
        notes.append(f"Drawn from the last {len(logs):,} of {of_entries:,} audit-log entries: "
                     "the counts are of those, and earlier transitions may be missing.")
    if h.audit_off and snapshot:
        missing = read_keys(h, snapshot, spec.first_step, step)
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
            notes_here.append(failure_text(error))
            badge.append(f"failed: {(error or {}).get('type') or 'error'}")
        if name == step and waiting:
            classes.append("waiting")
            notes_here.extend([wait_text(p) for p in pending] or ["waiting"])
            badge.extend(wait_badge(pending))
        if name == step and status == "finished":
            notes_here.append("finished here")
        if name == step and status == "cancelled":
            notes_here.append("cancelled here" + (f": {h.cancel_reason}" if h.cancel_reason
                                                  else ""))
        nodes.append(Node(name, facts, tuple(classes), tuple(notes_here), tuple(badge),
                          href=link(name) if link else None))

    ends = []
    if step in order and status == "finished":
        ends.append((step, "finished", "Finished"))
    elif step in order and status == "cancelled":
        ends.append((step, "cancelled",
                     f"Cancelled: {h.cancel_reason}" if h.cancel_reason else "Cancelled"))
    return Diagram(spec.name, first, edges, notes, nodes, history=True, path_known=h.complete,
                   ends=ends)


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
    ends = []
    if spec.transitions is not None:
        ends = [(name, "possible", "The workflow finishes") for name in spec.steps
                if not spec.transitions.get(name)]
    return Diagram(spec.name, spec.first_step, edges, notes, nodes, history=False,
                   path_known=False, ends=ends)


def fleet(flow_cls, stats: dict, link: Callable[[str], str] | None = None) -> Diagram:
    """Draw every workflow of a flow at once from its statistics (``stats``: the answer of
    ``GET /api/flows/<name>/stats``): each transition with how often it was taken (the
    possible ones never taken, faint), each step with its visits, workflows there now, failed
    ones and time per visit, coloured by its p95 against the slowest step's."""
    spec = flow_cls.__workflow__
    notes: list[str] = []
    possible = _static_edges(spec)
    if possible is None:
        notes.append(NO_STATIC_NOTE)
        possible = []
    taken: dict[tuple[str, str], int] = {}
    starts, end_counts = 0, {}
    for item in stats["transitions"]:
        a, b, n = item["from"], item["to"], item["count"]
        if a is None and b is not None:
            starts += n
        elif b is None and a is not None:
            end_counts[a] = end_counts.get(a, 0) + n
        elif a is not None:
            taken[(a, b)] = taken.get((a, b), 0) + n
    edges = [(a, b, n) for (a, b), n in taken.items()]
    edges += [(a, b, 0) for a, b in possible if (a, b) not in taken]
    steps = stats["steps"]
    order = list(dict.fromkeys([*spec.steps, *steps, *(x for pair in taken for x in pair)]))
    strangers = [name for name in order if name not in spec.steps]
    if strangers:
        notes.append(f"Steps not in the flow {spec.name} (any more): {', '.join(strangers)}; "
                     "its code changed after some of its workflows ran.")
    slowest = max((s["time_ms"]["p95"] for s in steps.values()
                   if s["time_ms"]["p95"] is not None), default=None)
    nodes = []
    for name in order:
        s = steps.get(name) or {"visits": 0, "now": 0, "failed": 0,
                                "time_ms": {"mean": None, "p50": None, "p95": None, "count": 0}}
        t = s["time_ms"]
        f = FleetFacts(now=s["now"], failed=s.get("failed", 0), mean_ms=t["mean"],
                       p50_ms=t["p50"], p95_ms=t["p95"], timed=t.get("count", 0),
                       heat=heat(t["p95"], slowest))
        facts = StepFacts(name, visits=s["visits"],
                          total_ms=None if t["mean"] is None else t["mean"] * f.timed)
        facts.in_flow = name in spec.steps
        classes = ["step"] + (["visited"] if s["visits"] else []) + (
            ["occupied"] if f.now else []) + (["failed"] if f.failed else []) + (
            [f"heat-{f.heat}"] if f.heat else [])
        nodes.append(Node(name, facts, tuple(classes), href=link(name) if link else None,
                          fleet=f))
    ends = [(step, "finished", f"Finished here: {n}") for step, n in end_counts.items()]
    if not ends and spec.transitions is not None:     # nothing finished yet: where it can
        ends = [(name, "possible", "The workflow finishes") for name in spec.steps
                if not spec.transitions.get(name)]
    return Diagram(spec.name, spec.first_step, edges, notes, nodes, history=True,
                   path_known=True, ends=ends, starts=starts, end_counts=end_counts,
                   slowest_ms=slowest)


def _static_edges(spec) -> list[tuple[str, str]] | None:
    if spec.transitions is None:
        return None
    return [(a, b) for a in spec.steps for b in spec.transitions.get(a, ())]
