"""History on the pages (issue 15), without JavaScript: each visit in the audit log links to
its state and its diff, ``?at=<entry>`` shows the path and the state then, and Fork from here
is a real form (CSRF token, 303) with the state to edit first."""
from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup

from test_history import FLOWS, play_three_rounds, start


@pytest.fixture
def app(make_app):
    return make_app(**FLOWS)


def page(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_each_visit_in_the_audit_log_links_to_its_state_and_diff(client):
    play_three_rounds(client, "g")
    html = page(client.get("/workflows/g"))
    links = html.select("#audit-log .visit-links")
    assert [int(span["data-seq"]) for span in links] == list(range(8))
    row = html.select_one("#log-1")
    assert row.select_one(".visit-state")["href"] == "/workflows/g/visits/0"
    third = links[3]
    assert third.select_one(".visit-state")["href"] == "/workflows/g/visits/3"
    assert third.select_one(".visit-diff")["href"] == "/workflows/g/visits/3#diff"
    assert third.select_one(".visit-fork")["href"] == "/workflows/g/visits/3#fork"
    assert third.select_one(".visit-fork").text == "Fork from here"
    assert all(a["href"].startswith("/workflows/g?at=") for a in html.select(".as-of"))


def test_a_visit_page_shows_its_state_and_the_diff(client):
    start(client, "changing", "c1")
    html = page(client.get("/workflows/c1/visits/3"))
    assert html.select_one("#visit-step").text == "step_four"
    assert json.loads(html.select_one("#visit-state").text) == {
        "n": 3, "profile": {"name": "Grace", "tags": ["a", "b"], "address": {"city": "Paris"}}}
    rows = {(tr.select("td")[0].text, tr.select("td")[1].text)
            for tr in html.select("#diff tbody tr")}
    assert rows == {("temp", "removed"), ("n", "changed"), ("profile › tags", "changed"),
                    ("profile › address", "added")}
    assert html.select_one("#visit-previous")["href"] == "/workflows/c1/visits/2"
    assert html.select_one("#visit-as-of")["href"].startswith("/workflows/c1?at=")
    assert page(client.get("/workflows/c1/visits/5")).select_one("#diff-none")
    assert client.get("/workflows/c1/visits/42").status_code == 404


def test_fork_from_here_is_a_form_that_warns_and_takes_an_edited_state(client):
    play_three_rounds(client, "g")
    html = page(client.get("/workflows/g/visits/3"))
    form = html.select_one("form#fork-form")
    assert form["method"] == "post" and form["action"] == "/workflows/g/fork"
    assert "run again" in html.select_one("#fork-warning").text
    token = form.select_one("input[name=csrf_token]")["value"]
    state = json.loads(form.select_one("textarea[name=state]").text)
    assert state == client.get("/api/workflows/g/history/3").json["state"]
    # no token: refused
    assert client.post("/workflows/g/fork", data={"seq": "3"}).status_code == 400
    # not JSON: the form again, with the message and what was typed
    refused = client.post("/workflows/g/fork", data={"csrf_token": token, "seq": "3",
                                                     "state": "{oops"})
    assert refused.status_code == 422
    again = BeautifulSoup(refused.get_data(as_text=True), "html.parser")
    assert "not valid JSON" in again.select_one("#fork-form-error").text
    assert again.select_one("textarea[name=state]").text == "{oops"
    state["hint"] = "edited"
    done = client.post("/workflows/g/fork", data={"csrf_token": token, "seq": "3",
                                                  "id": "edited", "state": json.dumps(state)})
    assert done.status_code == 303 and done.headers["Location"] == "/workflows/edited"
    fork = page(client.get("/workflows/edited"))
    assert fork.select_one("#wf-origin a")["href"] == "/workflows/g/visits/3"
    assert "Forked g from visit 3" in fork.select_one(".notice").text
    assert json.loads(fork.select_one("#state-json").text)["hint"] == "edited"
    origin = page(client.get("/workflows/g"))
    assert [a.text for a in origin.select("#wf-forks a")] == ["edited"]


def test_the_page_as_of_an_entry_shows_the_path_then_and_the_state_then(client):
    play_three_rounds(client, "g")
    visits = client.get("/api/workflows/g/history").json["items"]
    at = visits[2]["log_n"]                  # the transition into the first step_check
    html = page(client.get(f"/workflows/g?at={at}"))
    assert f"As of entry {at} of" in html.select_one("#as-of-heading").text
    assert json.loads(html.select_one("#as-of-state").text) == visits[2]["state"]
    svg = str(html.select_one("#diagram"))
    now = str(page(client.get("/workflows/g")).select_one("#diagram"))
    assert svg != now                       # the path drawn is the one up to entry `at`
    assert html.select_one("#as-of-now")["href"] == "/workflows/g"
    assert page(client.get("/workflows/g?at=99999")).select_one("#as-of-heading")


def test_history_off_says_so_on_the_visit_page(make_app):
    client = make_app(TINYFLOW_HISTORY=False, **FLOWS).test_client()
    start(client, "changing", "c1")
    html = page(client.get("/workflows/c1/visits/5"))    # the current visit, not recorded
    assert "not recorded" in html.select_one("#visit-state").text
    assert json.loads(html.select_one("textarea[name=state]").text)["done"] == "yes"
    assert client.get("/workflows/c1/visits/2").status_code == 404
