"""The flows pages: every registered flow with its docstring, steps, static graph and start."""
from __future__ import annotations

from bs4 import BeautifulSoup


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_flows_page_shows_each_registered_flow(client, app):
    response = client.get("/flows")
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = page(response)
    shown = {a["data-flow"] for a in html.select("article.flow")}
    assert {"simple", "guess_game", "guess_game_2", "user_onboarding",
            "interval_payment"} <= shown
    simple = html.select_one("#flow-simple")
    assert "Computes pi once" in simple.select_one(".doc").text
    steps = [li.select_one("code").text for li in simple.select("ol.steps > li")]
    assert steps == ["step_begin", "step_compute", "step_end"]
    assert "first" in simple.select_one("#flow-simple-step-step_begin").text
    assert simple.select_one("figure.diagram")                         # the static graph
    payment = html.select_one("#flow-interval_payment")
    assert [c.text for c in payment.select(".handlers code")] == ["add_usage", "cancel"]


def test_docstring_backticks_become_code(client):
    html = page(client.get("/flows/guess_game_2"))
    assert html.select_one("#flow-guess_game_2 .doc code").text == "event_ask"


def test_one_flow_has_its_own_page(client):
    html = page(client.get("/flows/guess_game"))
    # Its own page: the flow name is the page's h1 (axe: page-has-heading-one, issue 12)
    assert html.select_one("#flow-guess_game h1").text.strip() == "guess_game"
    assert len(html.select("article.flow")) == 1


def test_an_unknown_flow_is_404(client):
    response = client.get("/flows/nope")
    assert response.status_code == 404
    assert "nope" in page(response).select_one("#problem").text


def test_the_start_button_starts_one_and_goes_to_it(client):
    html = page(client.get("/flows"))
    form = html.select_one("form#start-guess_game")
    assert form["method"] == "post"
    data = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    assert data["flow"] == "guess_game" and data["csrf_token"]
    response = client.post(form["action"], data=data)
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/api/workflows/{new_id}").json["status"] == "waiting"


def test_start_with_a_state_preselects_the_flow(client):
    html = page(client.get("/flows"))
    link = html.select_one("#flow-user_onboarding a[href*='start=']")["href"]
    form = page(client.get(link.split("#")[0])).select_one("#start-flow option[selected]")
    assert form["value"] == "user_onboarding"
