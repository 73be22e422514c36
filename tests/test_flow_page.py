"""The flow page (one graph over all its workflows), its SVG, and the overview at /."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup

from webapp import diagram
from webapp.cli import CLI_FLOWS

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


@pytest.fixture
def fleet_app(make_app, clock):
    """Five branchy workflows on known paths, and three simple ones."""
    app = make_app(TINYFLOW_FLOWS=[*CLI_FLOWS, "stats_flows"])
    rt = app.extensions["tinyflow"]
    for i, choice in enumerate(["b", "b", "a", "fail", None]):
        rt.start("branchy", id=f"w{i}")
        clock.advance(2 + 10 * i)
        if choice:
            rt.send(f"w{i}", "go", choice)
    for _ in range(3):
        rt.start("simple")
    return app


def svg_of(html: BeautifulSoup):
    root = ET.fromstring(str(html.select_one("#fleet .diagram-svg svg")))
    return root, {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("id")}


def texts(g) -> list[str]:
    return [(t.text or "").strip() for t in g.iter(f"{SVG}text")]


def test_the_graph_has_counts_on_its_edges_and_steps(fleet_app):
    response = fleet_app.test_client().get("/flows/branchy")
    assert response.status_code == 200
    html = page(response)
    root, by_id = svg_of(html)
    assert "fleet" in root.find(f"{SVG}g").get("class").split()
    steps = {id[5:] for id in by_id if id.startswith("step-")}
    assert steps == {"step_start", "step_a", "step_b", "step_end"}
    label = lambda id: " ".join(texts(by_id[id]))  # noqa: E731
    assert texts(by_id["edge-step_start-step_b"]) == ["3"]
    assert texts(by_id["edge-start"]) == ["5"]                  # five started
    assert texts(by_id["edge-step_end-end"]) == ["2"]           # two finished (w2 sleeps)
    assert "taken" in by_id["edge-step_start-step_a"].get("class")
    assert "possible" in by_id["edge-step_start-step_start"].get("class")   # never taken
    assert "6 visits" not in label("step-step_start")
    assert "5 visits · 1 now" in label("step-step_start")
    assert "⚠ 1 failed" in label("step-step_b")
    assert {"failed", "occupied"} <= set(by_id["step-step_b"].get("class").split())
    assert "p50" in label("step-step_start") and "p95" in label("step-step_start")
    # Wider the more it is taken.
    width = lambda id: float(next(by_id[id].iter(f"{SVG}path")).get("stroke-width", 1))  # noqa: E731
    assert width("edge-step_start-step_b") > width("edge-step_start-step_a")
    # The slowest step (by p95) is the hottest, and the legend says what the scale means.
    assert "heat-4" in by_id["step-step_start"].get("class")
    assert "slowest step" in html.select_one("#heat-legend").text


def test_each_step_links_its_now_to_the_filtered_list(fleet_app):
    html = page(fleet_app.test_client().get("/flows/branchy"))
    _, by_id = svg_of(html)
    link = next(by_id["step-step_b"].iter(f"{SVG}a")).get(f"{XLINK}href")
    row = html.select_one('#fleet-steps tr[data-step="step_b"]')
    assert row.select_one("a.now-link")["href"] == link
    parts = urlsplit(link)
    assert parts.path == "/workflows"
    assert parse_qs(parts.query) == {"flow": ["branchy"], "step": ["step_b"]}
    assert row.select_one('[data-col="now"]').text.strip() == "1"
    assert row.select_one('[data-col="visits"]').text.strip() == "3"
    assert "1" in row.select_one('[data-col="failed"]').text


def test_the_table_twin_and_the_activity_chart(fleet_app):
    html = page(fleet_app.test_client().get("/flows/branchy"))
    start = html.select_one('#fleet-steps tr[data-step="step_start"]')
    assert start.select_one('[data-col="timed"]').text.strip() == "4"
    transitions = [[td.text.strip() for td in tr.select("td")]
                   for tr in html.select("#fleet-transitions tbody tr")]
    assert ["start", "step_start", "5"] in transitions and ["step_end", "end", "2"] in transitions
    chart = html.select_one("#activity svg.chart")
    assert chart is not None and chart.select_one("title").text.startswith("Workflows of")
    assert not chart.select("script, style") and not chart.select("[style]")
    rows = [[td.text.strip() for td in tr.select("td")]
            for tr in html.select("#activity-table tbody tr")]
    assert rows == [["2024-08-18 14:00", "5", "2", "1", "0"]]
    # The count axis is labelled with distinct whole numbers reaching the peak (5 started).
    labels = [int(t.text.replace(",", "")) for t in chart.select('text[text-anchor="end"]')]
    assert sorted(labels) == sorted(set(labels)) and min(labels) == 0 and max(labels) >= 5


@pytest.mark.parametrize("top, ticks", [(1, [0, 1]), (4, [0, 1, 2, 3, 4]), (5, [0, 2, 4, 6]),
                                        (12, [0, 5, 10, 15]), (1234, [0, 500, 1000, 1500])])
def test_the_count_axis_ticks_are_whole_numbers(top, ticks):
    from webapp.views.charts import count_ticks
    assert count_ticks(top) == ticks


def test_the_window_form_and_a_bad_value(fleet_app):
    client = fleet_app.test_client()
    form = page(client.get("/flows/branchy")).select_one("form#window-form")
    assert form["method"] == "get" and {i["name"] for i in form.select("input")} == {
        "since", "until"}
    later = page(client.get("/flows/branchy?since=2024-08-19"))
    assert "All 0 workflows" in later.select_one("#fleet-heading").text
    response = client.get("/flows/branchy?since=last+week")
    assert response.status_code == 422
    bad = page(response)
    assert "ISO 8601" in bad.select_one("#window-problem").text
    assert bad.select_one("#window-since")["value"] == "last week"
    assert "All 5 workflows" in bad.select_one("#fleet-heading").text


def test_the_page_stays_inside_the_csp(fleet_app):
    response = fleet_app.test_client().get("/flows/branchy")
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    html = page(response)
    assert not html.select("[style]") and not html.select("style")
    assert not [s for s in html.select("script") if not s.get("src")]


def test_the_overview_lists_every_flow(fleet_app):
    client = fleet_app.test_client()
    response = client.get("/")
    assert response.status_code == 200
    html = page(response)
    row = html.select_one('#overview tr[data-flow="branchy"]')
    assert row.select_one('a.flow-graph-link')["href"] == "/flows/branchy"
    assert row.select_one('a.flow-list-link')["href"] == "/workflows?flow=branchy"
    assert row.select_one('a[data-status="finished"]').text.strip() == "2"
    assert row.select_one('a[data-status="failed"]')["href"] == (
        "/workflows?flow=branchy&status=failed")
    assert row.select_one('[data-activity="started"]').text == "5"
    assert row.select_one("svg.chart-small title").text.startswith("branchy in the last")
    assert html.select_one('#overview tr[data-flow="simple"] [data-activity="finished"]').text == "3"
    assert {a.text for a in html.select("header nav a")} >= {"Workflows", "Flows"}


def test_the_fleet_model_draws_a_flow_with_no_workflows(fleet_app):
    from flows.guess_game_2 import GuessGame2
    empty = {"flow": "guess_game_2", "workflows": 0, "statuses": {}, "transitions": [],
             "steps": {}}
    d = diagram.fleet(GuessGame2, empty)
    root = ET.fromstring(d.svg())
    classes = {g.get("id"): g.get("class") for g in root.iter(f"{SVG}g") if g.get("id")}
    assert all("possible" in c for id, c in classes.items() if id.startswith("edge-step"))
