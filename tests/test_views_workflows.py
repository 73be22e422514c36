"""The workflow pages: the list, one workflow, their forms (CSRF, 303, htmx fragments, refused
values shown again) and their polling, against a real SQLite file through the runtime."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from bs4 import BeautifulSoup

from test_security import same_token
from webapp.views import workflows as views

HTMX = {"HX-Request": "true"}


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf(client) -> str:
    return page(client.get("/workflows")).select_one("input[name=csrf_token]")["value"]


def post(client, url, data=None, htmx=False):
    """Submit a form the way the page does: with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})},
                       headers=HTMX if htmx else {})


def start(client, flow, id, state=None):
    response = client.post("/api/workflows", json={"flow": flow, "id": id,
                                                   **({"state": state} if state else {})})
    assert response.status_code == 201, response.json
    return response.json


def api(client, id):
    return client.get(f"/api/workflows/{id}").json


# --- the list --------------------------------------------------------------------------------

def test_home_is_the_overview_linking_to_the_list(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Overview</h1>" in html and 'href="/workflows?flow=simple"' in html


def test_the_list_shows_each_workflow_at_a_glance(client, clock):
    start(client, "simple", "s1")
    clock.advance(120.5)     # row times add the real milliseconds its commits took
    start(client, "guess_game", "g1")
    start(client, "user_onboarding", "u1")
    html = page(client.get("/workflows"))

    row = html.select_one("#wf-g1")
    assert row.select_one(".col-flow").text == "guess_game"
    assert row.select_one(".col-id a")["href"] == "/workflows/g1"
    badge = row.select_one(".badge")
    assert badge.text == "waiting" and "status-waiting" in badge["class"]
    assert row.select_one(".col-step").text == "step_play"
    assert "event_ask_0" in row.select_one(".col-wait").text

    timer = html.select_one("#wf-u1 .col-wait")
    assert "timer due" in timer.text
    assert datetime.fromisoformat(timer.select_one("time")["datetime"]).timestamp() >= clock.now

    finished = html.select_one("#wf-s1")
    assert finished.select_one(".badge").text == "finished"
    updated = finished.select_one(".col-time time")
    assert updated.text == "2 min ago"
    assert updated["title"].endswith("UTC") and updated["datetime"].endswith("Z")

    assert html.select_one("#count-all b").text == "3"
    assert html.select_one("#count-waiting b").text == "2"
    assert html.select_one("#count-finished b").text == "1"


def test_filters_live_in_the_query_string(client):
    start(client, "simple", "s1")
    start(client, "simple", "s2")
    start(client, "guess_game", "g1")
    start(client, "guess_game_2", "h1")

    def ids(query):
        return {tr["data-id"] for tr in page(client.get(f"/workflows?{query}"))
                .select("tr.workflow-row")}

    assert ids("") == {"s1", "s2", "g1", "h1"}
    assert ids("flow=simple") == {"s1", "s2"}
    assert ids("flow=simple&flow=guess_game") == {"s1", "s2", "g1"}
    assert ids("status=waiting") == {"g1", "h1"}
    assert ids("status=waiting&status=finished") == {"s1", "s2", "g1", "h1"}
    assert ids("q=s2") == {"s2"}
    assert ids("flow=guess_game&status=finished") == set()

    html = page(client.get("/workflows?flow=guess_game&status=waiting&q=g"))
    assert html.select_one("#filter-flow input[value=guess_game]").has_attr("checked")
    assert not html.select_one("#filter-flow input[value=simple]").has_attr("checked")
    assert html.select_one("#filter-status input[value=waiting]").has_attr("checked")
    assert html.select_one("#filter-q")["value"] == "g"
    # counts follow the flow filter and the search, not the status filter
    assert html.select_one("#count-waiting b").text == "1"


def test_keyset_pages_link_to_each_other(client, clock, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for n in range(5):
        start(client, "simple", f"s{n}")
        clock.advance(1)
    seen = []
    url = "/workflows?flow=simple"
    while url:
        html = page(client.get(url))
        seen += [tr["data-id"] for tr in html.select("tr.workflow-row")]
        link = html.select_one("#next-page")
        url = link["href"] if link else None
        if url:
            assert "flow=simple" in url              # the filters stay on every page
    assert seen == ["s4", "s3", "s2", "s1", "s0"]


def test_the_list_polls_only_while_something_shown_can_change(client):
    start(client, "simple", "s1")
    results = page(client.get("/workflows")).select_one("#workflow-results")
    assert not results.has_attr("hx-trigger") and results["data-live"] == "false"

    start(client, "guess_game", "g1")
    results = page(client.get("/workflows")).select_one("#workflow-results")
    assert results["hx-trigger"] == "every 2s"
    poll = results["hx-get"]
    assert client.get(poll, headers=HTMX).status_code == 204       # nothing new: keep it

    client.post("/api/workflows/g1/cancel")
    fresh = client.get(poll, headers=HTMX)
    assert fresh.status_code == 200
    fragment = page(fresh)
    assert fragment.select_one("html") is None
    assert not fragment.select_one("#workflow-results").has_attr("hx-trigger")  # it stops


def test_htmx_gets_the_fragment_and_a_history_restore_the_page(client):
    start(client, "guess_game", "g1")
    fragment = client.get("/workflows", headers=HTMX)
    assert "HX-Request" in fragment.headers["Vary"]
    assert page(fragment).select_one("html") is None
    assert page(fragment).select_one("#workflow-results")
    restore = client.get("/workflows", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert page(restore).select_one("html") is not None
    assert "HX-Request" in client.get("/workflows").headers["Vary"]


def test_every_page_loads_htmx_pinned_from_its_cdn_and_sends_the_csrf_header(client, app):
    html = page(client.get("/workflows"))
    script = html.select_one("script[src*=htmx]")
    assert script["src"] == app.config["TINYFLOW_HTMX_URL"]
    assert script["src"].startswith("https://unpkg.com/htmx.org@2.0.4/")
    assert script["integrity"].startswith("sha384-") and script["crossorigin"] == "anonymous"
    # The header carries this page's token (another page's is signed at another second).
    token = html.select_one("input[name=csrf_token]")["value"]
    assert f'"X-CSRFToken": "{token}"' in html.body["hx-headers"]
    assert html.select_one("link[href$='diagram.css']")


# --- the start form --------------------------------------------------------------------------

def test_start_form_redirects_to_the_new_workflow(client):
    response = post(client, "/workflows", {"flow": "guess_game", "state": "{}", "id": "g1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/workflows/g1"
    html = page(client.get("/workflows/g1"))
    assert "Started guess_game workflow g1" in html.select_one(".notice").text
    assert api(client, "g1")["status"] == "waiting"


def test_start_form_with_htmx_sends_the_browser_to_the_workflow(client):
    response = post(client, "/workflows", {"flow": "simple", "state": '{"a": 1}', "id": "s1"},
                    htmx=True)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/workflows/s1"
    assert api(client, "s1")["state"]["a"] == 1


def test_start_form_without_an_id_makes_one(client):
    response = post(client, "/workflows", {"flow": "simple", "state": "", "id": " "})
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    assert api(client, new_id)["status"] == "finished"


@pytest.mark.parametrize("form, status, message", [
    ({"flow": "simple", "state": '{"a": <b>'}, 422, "not valid JSON"),
    ({"flow": "simple", "state": "[1, 2]"}, 422, "must be a JSON object"),
    ({"flow": "", "state": "{}"}, 422, "Choose a flow"),
    ({"flow": "nope", "state": "{}"}, 404, "no flow named 'nope'"),
])
def test_a_refused_start_shows_the_form_again_with_what_was_typed(client, form, status,
                                                                   message):
    response = post(client, "/workflows", form)
    assert response.status_code == status
    html = page(response)
    assert message in html.select_one("#start-form-error").text
    assert html.select_one("#start-state").text == form["state"]   # kept, and escaped
    assert "<b>" not in response.get_data(as_text=True).split("start-state")[1][:200]
    assert html.select_one("#workflow-results")                     # the whole page again


def test_a_refused_start_with_htmx_answers_only_the_form(client):
    response = post(client, "/workflows", {"flow": "simple", "state": "nope"}, htmx=True)
    assert response.status_code == 422
    html = page(response)
    assert html.select_one("html") is None
    assert html.select_one("form#start-form #start-form-error")
    assert html.select_one("#start-state").text == "nope"


def test_a_taken_id_is_refused_beside_the_form(client):
    start(client, "simple", "s1")
    response = post(client, "/workflows", {"flow": "simple", "state": "{}", "id": "s1"})
    assert response.status_code == 409
    assert "already exists" in page(response).select_one("#start-form-error").text


@pytest.mark.parametrize("token", [None, "forged"])
def test_forms_without_the_right_csrf_token_are_refused(client, token):
    csrf(client)                                           # the session has a token
    data = {"flow": "simple", "state": "{}", "id": "s1"}
    if token:
        data["csrf_token"] = token
    response = client.post("/workflows", data=data)
    assert response.status_code == 400
    assert "security token" in page(response).select_one("#problem").text
    assert client.get("/api/workflows/s1").status_code == 404      # nothing was started


def test_the_csrf_header_is_accepted_for_htmx(client):
    token = csrf(client)
    response = client.post("/workflows", data={"flow": "simple", "id": "s1"},
                           headers={**HTMX, "X-CSRFToken": token})
    assert response.headers["HX-Redirect"] == "/workflows/s1"


# --- one workflow ----------------------------------------------------------------------------

def test_the_workflow_page_reads_at_a_glance(client):
    start(client, "guess_game", "g1")
    response = client.get("/workflows/g1")
    assert response.status_code == 200
    html = page(response)
    assert html.select_one("#wf-id").text == "g1"
    assert html.select_one("#wf-status .badge").text == "waiting"
    assert html.select_one("#wf-step").text == "step_play"
    assert html.select_one("#summary time[datetime]")
    assert html.select_one("#diagram figure.diagram")                 # the step diagram
    form = html.select_one("form#event-form-event_ask_0")
    assert form["method"] == "post" and form["action"] == "/workflows/g1/events"
    assert form["hx-post"] == "/workflows/g1/events"
    assert "number between 0-100" in form.select_one(".question").text
    assert form.select_one("label[for=event-form-event_ask_0-value]")
    assert same_token(client.application, form.select_one("input[name=csrf_token]")["value"],
                      csrf(client))
    state = html.select_one("#state-json").text
    assert '"number": ' in state and state.startswith("{\n  ")       # indented JSON
    download = client.get(html.select_one("#download-snapshot")["href"])
    assert download.headers["Content-Disposition"] == "attachment; filename=g1.json"
    assert download.json == client.get("/api/workflows/g1/snapshot").json
    assert html.select_one("#cancel-form") and not html.select_one("#retry-form")


def test_an_unknown_workflow_is_a_404_page(client):
    response = client.get("/workflows/nope")
    assert response.status_code == 404
    assert "no workflow 'nope'" in page(response).select_one("#problem").text


@pytest.mark.parametrize("typed, sent", [("42", 42), ("hello", "hello"), ('"42"', "42"),
                                         ('{"a": [1]}', {"a": [1]})])
def test_the_event_value_is_json_when_it_parses_and_text_otherwise(client, typed, sent):
    start(client, "guess_game", "g1")
    post(client, "/workflows/g1/events", {"name": "event_ask_0", "value": typed,
                                          "form": "event-form-event_ask_0"})
    log = client.get("/api/workflows/g1/snapshot").json["system"]
    [answer] = [w["responsePayload"] for w in log.values() if w.get("isDone")]
    assert answer == sent


def test_sending_an_event_redirects_back_without_htmx(client):
    number = start(client, "guess_game", "g1")["state"]["number"]
    response = post(client, "/workflows/g1/events", {"name": "event_ask_0",
                                                     "value": str(number)})
    assert response.status_code == 303 and response.headers["Location"] == "/workflows/g1"
    assert api(client, "g1")["step"] == "step_end"
    assert "Event “event_ask_0” sent" in page(client.get("/workflows/g1")).text


def test_sending_an_event_with_htmx_answers_the_updated_block(client):
    number = start(client, "guess_game", "g1")["state"]["number"]
    wrong = 100 if number < 50 else 0
    response = post(client, "/workflows/g1/events", {"name": "event_ask_0",
                                                     "value": str(wrong)}, htmx=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    html = page(response)
    assert html.select_one("html") is None
    live = html.select_one("#workflow-live")
    assert "event_ask_0" in live.select_one(".notice").text
    assert f"value {wrong} is" in live.select_one("#event-form-event_ask_1 .question").text


def test_a_handler_refusal_shows_the_form_again_with_the_message(client):
    start(client, "interval_payment", "p1")
    response = post(client, "/workflows/p1/events", {
        "name": "add_usage", "value": "<i>lots</i>", "form": "handler-form-add_usage"})
    assert response.status_code == 422
    html = page(response)
    form = html.select_one("#handler-form-add_usage")
    assert "add_usage needs" in form.select_one("[role=alert]").text
    field = form.select_one("input[name=value]")
    assert field["value"] == "<i>lots</i>"
    assert field["aria-invalid"] == "true"                    # and says which message is its
    # ... which message is its, then (issue 12) the flow's example payload as help
    assert field["aria-describedby"].split() == [form.select_one("[role=alert]")["id"],
                                                 field["id"] + "-help"]
    assert "<i>lots</i>" not in response.get_data(as_text=True)          # escaped
    assert html.select_one("html") is not None                            # the whole page


def test_a_refusal_with_htmx_answers_the_block_with_the_message(client):
    start(client, "interval_payment", "p1")
    response = post(client, "/workflows/p1/events", {
        "name": "add_usage", "value": "3", "form": "handler-form-add_usage"}, htmx=True)
    assert response.status_code == 422
    html = page(response)
    assert html.select_one("html") is None
    assert html.select_one("#workflow-live #handler-form-add_usage [role=alert]")


def test_handlers_have_forms_that_change_the_state(client):
    start(client, "interval_payment", "p1")
    html = page(client.get("/workflows/p1"))
    assert {f["id"] for f in html.select("#events form")} >= {
        "handler-form-add_usage", "handler-form-cancel", "send-event-form"}
    post(client, "/workflows/p1/events", {"name": "add_usage",
                                          "value": '{"item": "seats", "amount": 3}'})
    assert api(client, "p1")["state"]["currentUsages"] == [{"item": "seats", "amount": 3}]


def test_an_event_to_a_closed_workflow_says_why_at_the_top(client):
    start(client, "simple", "s1")
    response = post(client, "/workflows/s1/events", {"name": "x", "value": "1",
                                                     "form": "send-event-form"})
    assert response.status_code == 409
    assert page(response).select_one("#action-error").text      # its form is not shown


def test_a_nameless_event_is_refused(client):
    start(client, "guess_game", "g1")
    response = post(client, "/workflows/g1/events", {"name": " ", "value": "1"})
    assert response.status_code == 422
    assert "name" in page(response).select_one("#send-event-form-error").text


def test_timer_forms_fire_and_advance(client):
    wf = start(client, "user_onboarding", "u1", {"userEmail": "ada@example.com"})
    [timer] = wf["pending"]
    html = page(client.get("/workflows/u1"))
    fire = html.select_one(f"#fire-{timer['resumeId']}")
    due = fire.select_one("time")["datetime"]
    assert datetime.fromisoformat(due).timestamp() == timer["resumeAfter"] / 1000
    assert html.select_one("#advance-form label[for=advance-seconds]")

    response = post(client, fire["action"])
    assert response.status_code == 303
    assert api(client, "u1")["pending"][0]["key"] == "wait_before_end"

    response = post(client, "/workflows/u1/timers/advance", {"seconds": "abc"})
    assert response.status_code == 422
    html = page(response)
    assert "number of seconds" in html.select_one("#advance-form-error").text
    assert html.select_one("#advance-seconds")["value"] == "abc"

    response = post(client, "/workflows/u1/timers/advance", {"seconds": "5"}, htmx=True)
    assert page(response).select_one("#workflow-live")["data-status"] == "finished"


def test_firing_a_timer_that_closed_meanwhile_says_so(client):
    start(client, "user_onboarding", "u1")
    response = post(client, "/workflows/u1/timers/gone/fire")
    assert response.status_code == 404
    assert "no open timer" in page(response).select_one("#action-error").text


def test_cancel_asks_first_and_keeps_the_reason(client):
    start(client, "guess_game", "g1")
    html = page(client.get("/workflows/g1"))
    confirm = html.select_one("details#cancel")
    assert not confirm.has_attr("open") and confirm.select_one("#cancel-form button")
    response = post(client, "/workflows/g1/cancel", {"reason": "bored"})
    assert response.status_code == 303
    snapshot = client.get("/api/workflows/g1/snapshot").json
    assert snapshot["status"] == "cancelled"
    assert any(e["type"] == "cancelled" and e["values"]["reason"] == "bored"
               for e in snapshot["logs"])
    html = page(client.get("/workflows/g1"))
    assert not html.select_one("#cancel-form") and not html.select_one("#events")


def test_a_failed_workflow_shows_its_error_and_can_be_retried(client, clock):
    start(client, "flaky_payment", "f1", {"amount": 5})
    for _ in range(5):
        clock.advance(60)
        client.post("/api/workflows/f1/timers/advance", json={"seconds": 0})
    html = page(client.get("/workflows/f1"))
    assert html.select_one("#wf-status .badge").text == "failed"
    assert "ProviderDown" in html.select_one("#wf-error").text
    assert html.select_one("details#retry #retry-form")
    response = post(client, "/workflows/f1/retry", htmx=True)
    assert response.status_code == 200
    assert page(response).select_one("#workflow-live")["data-status"] == "waiting"
    response = post(client, "/workflows/f1/retry")
    assert response.status_code == 409                  # not failed any more


def test_the_workflow_page_polls_while_it_runs_and_stops_when_it_ends(client):
    start(client, "guess_game", "g1")
    live = page(client.get("/workflows/g1")).select_one("#workflow-live")
    assert live["hx-trigger"] == "every 2s" and live["hx-swap"] == "outerHTML"
    assert client.get(live["hx-get"], headers=HTMX).status_code == 204
    client.post("/api/workflows/g1/cancel")
    changed = client.get(live["hx-get"], headers=HTMX)
    assert changed.status_code == 200
    assert not page(changed).select_one("#workflow-live").has_attr("hx-trigger")


def test_html_in_state_and_payloads_is_shown_as_text(client):
    evil = "<script>alert(1)</script>"
    start(client, "guess_game", "g1", {"note": evil})
    post(client, "/workflows/g1/events", {"name": "event_ask_0", "value": evil})
    start(client, "interval_payment", "p1")
    post(client, "/workflows/p1/events", {"name": "add_usage",
                                          "value": f'{{"item": "{evil}", "amount": 1}}'})
    for url in ("/workflows/g1", "/workflows/p1", "/workflows"):
        body = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in body
    html = page(client.get("/workflows/g1"))
    assert evil in html.select_one("#state-json").text
    assert evil in html.select_one("#event-form-event_ask_1 .question").text
    html = page(client.get("/workflows/p1?type=add_usage"))
    assert evil in html.select_one("#audit-log .col-values").text


# --- the audit log ---------------------------------------------------------------------------

def test_audit_log_entries_are_linkable_filterable_and_paginated(client, monkeypatch):
    monkeypatch.setattr(views, "LOG_PAGE_SIZE", 3)
    wf = start(client, "simple", "s1")
    html = page(client.get("/workflows/s1"))
    rows = html.select("#audit-log tr.log-entry")
    assert [r["id"] for r in rows] == ["log-1", "log-2", "log-3"]
    assert rows[1].select_one("a")["href"].endswith("#log-2")
    seen = len(rows)
    link = html.select_one("#log-next-page")
    while link:
        html = page(client.get(link["href"].split("#")[0]))
        rows = html.select("#audit-log tr.log-entry")
        assert client.get(rows[0].select_one("a")["href"].split("#")[0]).status_code == 200
        seen += len(rows)
        link = html.select_one("#log-next-page")
    assert seen == wf["log_count"]

    html = page(client.get("/workflows/s1?type=transition"))
    types = {r.select_one(".col-type").text for r in html.select("#audit-log tr.log-entry")}
    assert types == {"transition"}
    assert html.select_one("#log-type option[selected]").text == "transition"
    html = page(client.get("/workflows/s1?step=step_end"))
    steps = {r.select("td")[2].text for r in html.select("#audit-log tr.log-entry")}
    assert steps == {"step_end"}


# --- the diagram alone -----------------------------------------------------------------------

def test_the_diagram_alone_as_svg_and_dot(client):
    start(client, "guess_game", "g1")
    svg = client.get("/workflows/g1/diagram.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data
    dot = client.get("/workflows/g1/diagram.dot")
    assert dot.status_code == 200 and dot.mimetype == "text/vnd.graphviz"
    assert re.search(r"step_begin\s*->\s*step_play", dot.get_data(as_text=True))
    assert client.get("/workflows/nope/diagram.svg").status_code == 404


def test_a_form_submitted_twice_is_delivered_once(client):
    start(client, "interval_payment", "p1")
    form = page(client.get("/workflows/p1")).select_one("#handler-form-add_usage")
    data = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
    data["value"] = '{"item": "seats", "amount": 1}'
    other = page(client.get("/workflows/p1")).select_one("#handler-form-cancel")
    assert other.select_one("[name=idempotency_key]")["value"] != data["idempotency_key"]
    for _ in range(2):                                  # a double click, or a resent page
        assert client.post(form["action"], data=data).status_code == 303
    assert api(client, "p1")["state"]["currentUsages"] == [{"item": "seats", "amount": 1}]


def test_ids_with_slashes_are_refused_at_start_saying_why(client):
    # An id with '/' would be shadowed by the routes under it (".../snapshot", ".../logs"):
    # refused, on the page and in the API, and nothing is stored.
    response = post(client, "/workflows", {"flow": "guess_game", "id": "orders/7"})
    assert response.status_code == 422
    assert "cannot contain '/'" in page(response).select_one("#start-form").text
    assert client.post("/api/workflows", json={"flow": "guess_game", "id": "orders/7"}
                       ).status_code == 422
    assert client.get("/api/workflows").json["items"] == []


def test_the_download_works_when_the_api_needs_a_token(make_app):
    client = make_app(TINYFLOW_AUTH_TOKEN="s3cret").test_client()
    client.post("/api/workflows", json={"flow": "simple", "id": "s1"},
                headers={"Authorization": "Bearer s3cret"})
    href = page(client.get("/workflows/s1")).select_one("#download-snapshot")["href"]
    assert client.get(href).json["status"] == "finished"
