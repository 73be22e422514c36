"""Flow statistics (issue 13): exact figures on known paths, kept in each commit on SQLite
and PostgreSQL, equal to a full recount of the audit logs; the API, the CLI, the setting."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from webapp.diagram.history import read_log
from webapp.cli import main
from webapp.runtime import Runtime
from webapp.runtime.counters import RATIO, bucket, bucket_value
from webapp.runtime.stats import percentile
from webapp.store import STAT

FLOWS = ["flows", "stats_flows"]


@pytest.fixture
def rt(any_db_url, clock):
    made = Runtime(any_db_url, flows=FLOWS, clock=clock)
    yield made
    made.store.dispose()


def counters(rt) -> set:
    """Every non-zero counter row, as a set (order-free)."""
    with rt.context():
        rows = rt.store.session.execute(STAT.select()).all()
        rt.store.end()
    return {(r.flow, r.kind, r.period, r.a, r.b, r.n, r.v) for r in rows if r.n or r.v}


def recounted(rt) -> set:
    rt.rebuild_stats()
    return counters(rt)


def test_known_paths_give_exact_figures(rt, clock):
    rt.start("branchy", id="to-a")
    clock.advance(2)                            # 2 s in step_start
    rt.send("to-a", "go", "a")                  # step_a sleeps 60 s
    rt.start("branchy", id="to-b")
    clock.advance(5)
    rt.send("to-b", "go", "b")                  # 5 s in step_start, then ends at once
    rt.start("branchy", id="loop")
    clock.advance(1)
    rt.send("loop", "go", "again")              # back to step_start: waiting again
    rt.start("branchy", id="broken")
    rt.send("broken", "go", "fail")             # fails in step_b
    rt.start("branchy", id="gone")
    clock.advance(3)
    rt.cancel("gone")                           # cancelled in step_start after 3 s
    rt.start("simple", id="s")
    clock.advance(60)
    rt.advance("to-a", 60)                      # step_a's timer fires: finished

    stats = rt.flow_stats("branchy")
    assert stats["workflows"] == 5
    assert stats["statuses"] == {"running": 0, "waiting": 1, "finished": 2, "failed": 1,
                                 "cancelled": 1}
    steps = stats["steps"]
    assert list(steps) == ["step_start", "step_a", "step_b", "step_end"]
    assert {name: s["visits"] for name, s in steps.items()} == {
        "step_start": 6, "step_a": 1, "step_b": 2, "step_end": 2}
    assert {name: s["now"] for name, s in steps.items()} == {
        "step_start": 1, "step_a": 0, "step_b": 1, "step_end": 0}
    assert steps["step_b"]["failed"] == 1
    assert {(t["from"], t["to"]): t["count"] for t in stats["transitions"]} == {
        (None, "step_start"): 5, ("step_start", "step_a"): 1, ("step_start", "step_b"): 2,
        ("step_start", "step_start"): 1, ("step_a", "step_end"): 1, ("step_b", "step_end"): 1,
        ("step_end", None): 2}
    # Time in step_start: visits that ended took 2 s, 5 s, 1 s, 0 s (fail) and 3 s (cancel).
    start = steps["step_start"]["time_ms"]
    assert start["count"] == 5 and start["mean"] == 2200.0
    assert start["p50"] == pytest.approx(2000, rel=0.05)
    assert start["p95"] == pytest.approx(5000, rel=0.05)
    # step_a: entered at 2 s, its timer (due at 62 s) fired by the advance at 71 s.
    assert steps["step_a"]["time_ms"]["p50"] == pytest.approx(69_000, rel=0.05)
    # The open visits (the loop waiting again, the failed step_b) are not timed yet.
    assert steps["step_b"]["time_ms"]["count"] == 1
    assert rt.flow_stats("simple")["transitions"][-1] == {"from": "step_end", "to": None,
                                                          "count": 1}
    activity = rt.flow_activity("branchy")
    assert [(i["started"], i["finished"], i["failed"], i["cancelled"])
            for i in activity["items"]] == [(5, 2, 1, 1)]
    assert activity["items"][0]["t"] == "2024-08-18T14:00:00Z"
    before = counters(rt)
    assert recounted(rt) == before              # what a full read of every log gives


def test_retry_keeps_the_visit_and_counts_each_failure(rt, clock, tmp_path):
    rt.start("branchy", id="r")
    rt.send("r", "go", "fail")
    clock.advance(10)
    rt.retry("r")                                # fails again, 10 s later
    stats = rt.flow_stats("branchy")
    assert stats["statuses"]["failed"] == 1
    assert stats["steps"]["step_b"]["visits"] == 1   # one visit, retried
    assert rt.flow_activity("branchy")["items"][0]["failed"] == 2
    rt.cancel("r")
    stats = rt.flow_stats("branchy")
    assert stats["steps"]["step_b"]["now"] == 0 and stats["statuses"]["cancelled"] == 1
    assert stats["steps"]["step_b"]["time_ms"]["p50"] == pytest.approx(10_000, rel=0.05)
    before = counters(rt)
    assert recounted(rt) == before


def test_the_window_selects_workflows_by_creation_day(rt, clock):
    rt.start("simple", id="early")
    clock.advance(3 * 86400)
    rt.start("simple", id="late")
    late_day = rt.get("late")["created_at"][:10] + "T00:00:00Z"
    assert late_day == "2024-08-21T00:00:00Z"
    assert rt.flow_stats("simple")["workflows"] == 2
    window = rt.flow_stats("simple", since="2024-08-21T15:00Z")    # from its whole day
    assert window["workflows"] == 1 and window["since"] == late_day
    assert window["steps"]["step_end"]["visits"] == 1
    assert rt.flow_stats("simple", until="2024-08-20")["workflows"] == 1
    assert rt.flow_stats("simple", since="2024-08-18", until="2024-08-21T00:00Z")[
        "workflows"] == 1
    assert rt.flow_stats("simple", since="2000-01-01", until="2000-01-02")["workflows"] == 0
    days = rt.flow_activity("simple", "day")["items"]
    assert [i["started"] for i in days] == [1, 0, 0, 1]      # gaps filled, oldest first
    assert days[0]["t"] == "2024-08-18T00:00:00Z"
    hours = rt.flow_activity("simple", "hour")["items"]
    assert len(hours) == 73 and hours[0]["started"] == hours[-1]["started"] == 1
    assert rt.flow_activity("simple", "hour", since="2024-08-21T14:00Z")["items"] == [
        {"t": "2024-08-21T14:00:00Z", "started": 1, "finished": 1, "failed": 0,
         "cancelled": 0}]


def test_imported_and_scheduled_workflows_count(rt, clock):
    finished = rt.start("simple", id="orig")
    snapshot = rt.snapshot("orig")
    rt.import_snapshots([["copy-1", snapshot], ["copy-2", snapshot]], flow="simple")
    assert finished["status"] == "finished"
    stats = rt.flow_stats("simple")
    assert stats["workflows"] == 3 and stats["steps"]["step_end"]["visits"] == 3
    rt.add_schedule("tick", "simple", "* * * * *")
    clock.advance(61)
    assert rt.fire_due_schedules() == 1                 # its row and log inserted, not run
    fired = rt.flow_stats("simple")
    assert fired["workflows"] == 4 and fired["steps"]["step_begin"]["now"] == 1
    rt.run_due()
    ran = rt.flow_stats("simple")
    assert ran["statuses"]["finished"] == 4 and ran["steps"]["step_begin"]["now"] == 0
    before = counters(rt)
    assert recounted(rt) == before


def test_a_step_s_visits_are_the_edges_into_it_and_the_visits_without_one():
    """Visits are not counted apart: each begins with an edge into its step, except one
    begun by a transition whose step before is unknown (a log that does not begin at its
    start), counted as an ``enter``."""
    from webapp.runtime import counters
    from webapp.runtime.stats import summarise

    tally = counters.Tally("f")
    entries = [{"type": "transition", "_step": "b", "_at": 1_000, "values": {"to": "b"}},
               {"type": "transition", "_step": "b", "_at": 2_000,
                "values": {"from": "b", "to": "b"}},
               {"type": "finished", "_step": "b", "_at": 3_000}]
    counters.deltas(tally, 0, None, ("finished", "b"), entries, None)
    rows = [(r["kind"], r["a"], r["b"], r["n"], r["v"]) for r in tally.rows()
            if r["period"] == counters.ALL]
    assert ("enter", "b", "", 1, 0) in rows and not [r for r in rows if r[0] == "visit"]
    answer = summarise(None, rows)
    assert answer["steps"]["b"]["visits"] == 2                     # the enter, and b -> b
    assert {(t["from"], t["to"]): t["count"] for t in answer["transitions"]} == {
        ("b", "b"): 1, ("b", None): 1}


def test_a_page_of_percentiles_is_within_five_percent():
    times = [1, 3, 7, 12, 50, 120, 400, 999, 2500, 10_000, 86_400_000]
    for t in times:
        assert abs(bucket_value(bucket(t)) - t) / t < RATIO ** 0.5 - 1 + 1e-9
    many = [i * 37 % 5000 + 1 for i in range(1000)]
    histogram: dict[int, int] = {}
    for t in many:
        histogram[bucket(t)] = histogram.get(bucket(t), 0) + 1
    ordered = sorted(many)
    for p in (0.5, 0.95):
        exact = ordered[max(0, -(-int(p * 1000)) - 1)]
        assert percentile(histogram, p) == pytest.approx(exact, rel=0.05)


def test_api_answers_and_errors(make_app, clock):
    app = make_app(TINYFLOW_FLOWS=FLOWS)
    client = app.test_client()
    client.post("/api/workflows", json={"flow": "branchy", "id": "x"})
    answer = client.get("/api/flows/branchy/stats").json
    assert answer["flow"] == "branchy" and answer["steps"]["step_start"]["now"] == 1
    assert set(answer["steps"]["step_start"]["time_ms"]) >= {"mean", "p50", "p95"}
    assert client.get("/api/flows/branchy/activity?bucket=day").json["bucket"] == "day"
    for url, status in [("/api/flows/nope/stats", 404), ("/api/flows/nope/activity", 404),
                        ("/api/flows/branchy/stats?since=yesterday", 422),
                        ("/api/flows/branchy/stats?since=2024-08-19&until=2024-08-18", 422),
                        ("/api/flows/branchy/activity?bucket=week", 422)]:
        response = client.get(url)
        assert response.status_code == status, url
        assert set(response.json["error"]) == {"code", "message"}


def test_stats_off_keeps_nothing_and_rebuild_recounts(make_app, monkeypatch, clock):
    monkeypatch.setenv("TINYFLOW_STATS", "off")
    app = make_app(TINYFLOW_FLOWS=FLOWS)
    rt = app.extensions["tinyflow"]
    assert rt.settings["TINYFLOW_STATS"] is False
    rt.start("simple", id="quiet")
    assert rt.flow_stats("simple")["workflows"] == 0
    assert rt.flow_stats("simple")["recording"] is False
    cli = app.test_cli_runner()
    result = cli.invoke(main, args=["stats", "rebuild"])
    assert result.exit_code == 0 and "1 workflow" in result.output, result.output
    assert rt.flow_stats("simple")["workflows"] == 1
    shown = cli.invoke(main, args=["stats", "show", "simple"])
    assert json.loads(shown.output)["statuses"]["finished"] == 1


# -- the property: maintained figures == a full recount, over random workflows -------------

ACTIONS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(
    ["a", "b", "again", "fail", "cancel", "retry", "advance", "start"]),
    st.integers(0, 5000)), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ACTIONS)
def test_maintained_figures_equal_a_full_recount(tmp_path_factory, actions):
    from fakeclock import FakeClock
    clock = FakeClock()
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.sqlite'}"
    rt = Runtime(url, flows=FLOWS, clock=clock)
    try:
        started = set()
        for which, what, ms in actions:
            id = f"w{which}"
            clock.advance(ms / 1000)
            try:
                if id not in started or what == "start":
                    if id not in started:
                        rt.start("branchy", id=id)
                        started.add(id)
                elif what == "cancel":
                    rt.cancel(id)
                elif what == "retry":
                    rt.retry(id)
                elif what == "advance":
                    rt.advance(id, 61)
                else:
                    rt.send(id, "go", what)
            except Exception as error:      # 409 and the like: a move not possible now
                assert getattr(error, "status", None) in (404, 409, 422), error
        kept = counters(rt)
        stats = rt.flow_stats("branchy")
        # An independent count: the diagrams' reading of each audit log.
        visits: dict[str, int] = {}
        taken: dict[tuple, int] = {}
        for id in started:
            h = read_log(rt.snapshot(id)["logs"])
            for name, f in h.steps.items():
                visits[name] = visits.get(name, 0) + f.visits
            for pair, n in h.taken.items():
                taken[pair] = taken.get(pair, 0) + n
        assert {k: v["visits"] for k, v in stats["steps"].items() if v["visits"]} == visits
        assert {(t["from"], t["to"]): t["count"] for t in stats["transitions"]
                if t["from"] and t["to"]} == taken
        assert stats["workflows"] == len(started)
        assert recounted(rt) == kept
    finally:
        rt.store.dispose()


def test_concurrent_writers_keep_exact_counts(rt, clock):
    """Threads starting and moving workflows at once (row locks on PostgreSQL, the busy
    timeout on SQLite): the counters still equal the recount."""
    import threading

    errors = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                id = f"t{n}-{i}"
                rt.start("branchy", id=id)
                rt.send(id, "go", "b" if i % 2 else "again")
                rt.start("simple")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = rt.flow_stats("branchy")
    assert stats["workflows"] == 32
    assert stats["statuses"]["finished"] == 16 and stats["steps"]["step_start"]["now"] == 16
    assert rt.flow_stats("simple")["statuses"]["finished"] == 32
    before = counters(rt)
    assert recounted(rt) == before
