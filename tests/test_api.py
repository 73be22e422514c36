"""The JSON API under /api, route by route, against a real SQLite file through the runtime."""
from __future__ import annotations

import json

import pytest

ONE_KEYS = {"id", "flow", "status", "step", "state", "pending", "error", "created_at",
            "updated_at", "wake_at", "log_count",
            # issue 12: why it was cancelled, the last error while retrying, its clock; issue 16
            "cancel_reason", "last_error", "clock_offset", "flow_version", "held",
            "migrate_error"}
LIST_KEYS = {"id", "flow", "status", "step", "created_at", "updated_at", "wake_at",
             "flow_version", "held",   # issue 16
             "attributes"}            # issue 14: search attributes


def start(client, flow, id=None, state=None):
    body = {"flow": flow, **({"id": id} if id else {}), **({"state": state} if state else {})}
    response = client.post("/api/workflows", json=body)
    assert response.status_code == 201, response.json
    return response.json


def error_of(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    return response.json["error"]["message"]


# --- start, get, list ------------------------------------------------------------------------

def test_start_runs_until_it_ends_and_answers_the_workflow(client):
    response = client.post("/api/workflows", json={"flow": "simple", "id": "s1"})
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/api/workflows/s1")
    wf = response.json
    assert set(wf) == ONE_KEYS
    assert (wf["id"], wf["flow"], wf["status"], wf["step"]) == ("s1", "simple", "finished",
                                                                  "step_end")
    assert wf["state"]["computed"] == pytest.approx(3.141592653589793)
    assert wf["pending"] == [] and wf["wake_at"] is None
    assert wf["created_at"].endswith("Z")
    assert client.get("/api/workflows/s1").json == wf


def test_a_waiting_workflow_shows_its_open_wait_and_no_audit_log(client):
    wf = start(client, "guess_game", "g1")
    assert wf["status"] == "waiting"
    [wait] = wf["pending"]
    assert wait["type"] == "event" and wait["key"] == "event_ask_0"
    assert "number between 0-100" in wait["requestPayload"]["question"]
    assert "logs" not in wf and wf["log_count"] > 0


def test_start_without_id_makes_one_up(client):
    wf = start(client, "guess_game_2")
    assert wf["id"] and client.get(f"/api/workflows/{wf['id']}").status_code == 200


def test_list_filters_by_flow_status_and_id_and_pages_with_a_cursor(client, clock):
    for n in range(3):
        start(client, "simple", f"s{n}")
        clock.advance(1)
    for n in range(2):
        start(client, "guess_game", f"g{n}")
        clock.advance(1)

    everything = client.get("/api/workflows").json
    assert [i["id"] for i in everything["items"]] == ["g1", "g0", "s2", "s1", "s0"]
    assert everything["next_cursor"] is None
    assert all(set(item) == LIST_KEYS for item in everything["items"])

    assert {i["id"] for i in client.get("/api/workflows?flow=guess_game").json["items"]} == {
        "g0", "g1"}
    waiting = client.get("/api/workflows?status=waiting").json["items"]
    assert {i["status"] for i in waiting} == {"waiting"} and len(waiting) == 2
    both = client.get("/api/workflows?status=waiting&status=finished").json["items"]
    assert len(both) == 5
    assert [i["id"] for i in client.get("/api/workflows?q=s1").json["items"]] == ["s1"]

    first = client.get("/api/workflows?limit=2").json
    assert [i["id"] for i in first["items"]] == ["g1", "g0"] and first["next_cursor"]
    second = client.get(f"/api/workflows?limit=2&cursor={first['next_cursor']}").json
    assert [i["id"] for i in second["items"]] == ["s2", "s1"]
    third = client.get(f"/api/workflows?limit=2&cursor={second['next_cursor']}").json
    assert [i["id"] for i in third["items"]] == ["s0"] and third["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=sleeping", "limit=0", "limit=501", "limit=ten",
                                   "cursor=not-a-cursor"])
def test_list_refuses_bad_query_values(client, query):
    error_of(client.get(f"/api/workflows?{query}"), 422, "invalid")


# --- audit log and snapshot ------------------------------------------------------------------

def test_logs_are_paginated_and_filtered(client):
    wf = start(client, "simple", "s1")
    page = client.get("/api/workflows/s1/logs?limit=2").json
    assert [e["n"] for e in page["items"]] == [1, 2]
    assert {"type", "values", "_at", "_step"} <= set(page["items"][0])
    rest = client.get(f"/api/workflows/s1/logs?cursor={page['next_cursor']}").json
    assert len(page["items"]) + len(rest["items"]) == wf["log_count"]
    assert rest["next_cursor"] is None
    transitions = client.get("/api/workflows/s1/logs?type=transition").json["items"]
    assert transitions and {e["type"] for e in transitions} == {"transition"}
    at_end = client.get("/api/workflows/s1/logs?step=step_end").json["items"]
    assert at_end and {e["_step"] for e in at_end} == {"step_end"}
    error_of(client.get("/api/workflows/nope/logs"), 404, "not_found")


def test_snapshot_is_the_whole_document_and_downloads(client):
    wf = start(client, "simple", "s1")
    doc = client.get("/api/workflows/s1/snapshot").json
    assert {"step", "state", "cache", "system", "logs", "status"} <= set(doc)
    assert len(doc["logs"]) == wf["log_count"]
    assert isinstance(doc["logs"][0]["_at"], int)          # epoch ms inside the snapshot
    download = client.get("/api/workflows/s1/snapshot?download=1")
    assert download.headers["Content-Disposition"] == 'attachment; filename=s1.json'
    assert json.loads(download.data) == doc


# --- events ----------------------------------------------------------------------------------

def test_an_event_answers_the_wait_and_the_workflow_runs_on(client):
    number = start(client, "guess_game", "g1")["state"]["number"]
    wrong = 100 if number < 50 else 0
    wf = client.post("/api/workflows/g1/events", json={"name": "event_ask_0",
                                                       "payload": wrong}).json
    [wait] = wf["pending"]
    assert wait["key"] == "event_ask_1"
    assert f"value {wrong} is" in wait["requestPayload"]["question"]
    wf = client.post("/api/workflows/g1/events", json={"name": "event_ask_1",
                                                       "payload": number}).json
    assert wf["step"] == "step_end"
    wf = client.post("/api/workflows/g1/events", json={"name": "event_congratulation"}).json
    assert wf["status"] == "finished"


def test_the_same_idempotency_key_is_delivered_once(client):
    start(client, "interval_payment", "p1")
    usage = {"name": "add_usage", "payload": {"item": "seats", "amount": 2},
             "idempotency_key": "order-7"}
    first = client.post("/api/workflows/p1/events", json=usage)
    second = client.post("/api/workflows/p1/events", json=usage)
    assert first.status_code == second.status_code == 200
    assert second.json["state"]["currentUsages"] == [{"item": "seats", "amount": 2}]


def test_an_event_nobody_waits_for_goes_to_the_inbox(client):
    start(client, "guess_game", "g1")
    response = client.post("/api/workflows/g1/events", json={"name": "later", "payload": 1})
    assert response.status_code == 200
    assert "later" in json.dumps(client.get("/api/workflows/g1/snapshot").json["inbox"])


def test_a_handler_that_refuses_is_422_and_changes_nothing(client):
    before = start(client, "interval_payment", "p1")
    message = error_of(client.post("/api/workflows/p1/events",
                                   json={"name": "add_usage", "payload": "lots"}), 422, "invalid")
    assert "add_usage needs" in message
    assert client.get("/api/workflows/p1").json["log_count"] == before["log_count"]


def test_events_to_a_finished_workflow_are_409(client):
    start(client, "simple", "s1")
    error_of(client.post("/api/workflows/s1/events", json={"name": "x"}), 409, "conflict")


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 7},
                                  {"name": "x", "idempotency_key": 5}])
def test_an_event_of_the_wrong_shape_is_422(client, body):
    start(client, "guess_game", "g1")
    error_of(client.post("/api/workflows/g1/events", json=body), 422, "invalid")


# --- timers ----------------------------------------------------------------------------------

def test_fire_a_timer_then_advance_the_clock_to_the_end(client):
    wf = start(client, "user_onboarding", "u1", {"userEmail": "ada@example.com"})
    [timer] = wf["pending"]
    assert timer["type"] == "timer" and timer["key"] == "wait_before_promotion_email"
    assert wf["wake_at"] is not None
    wf = client.post(f"/api/workflows/u1/timers/{timer['resumeId']}/fire").json
    [timer] = wf["pending"]
    assert timer["key"] == "wait_before_end"
    wf = client.post("/api/workflows/u1/timers/advance", json={"seconds": 5}).json
    assert wf["status"] == "finished" and wf["pending"] == []


def test_firing_a_timer_that_is_not_open_is_404(client):
    start(client, "user_onboarding", "u1")
    error_of(client.post("/api/workflows/u1/timers/nope/fire"), 404, "not_found")


@pytest.mark.parametrize("seconds", [-1, "10", True, None])
def test_advance_needs_a_number_of_seconds(client, seconds):
    start(client, "user_onboarding", "u1")
    error_of(client.post("/api/workflows/u1/timers/advance", json={"seconds": seconds}),
             422, "invalid")


# --- cancel and retry ------------------------------------------------------------------------

def test_cancel_then_cancel_again_is_409(client):
    start(client, "guess_game", "g1")
    wf = client.post("/api/workflows/g1/cancel", json={"reason": "bored"}).json
    assert wf["status"] == "cancelled" and wf["pending"] == []
    error_of(client.post("/api/workflows/g1/cancel"), 409, "conflict")


def test_retry_a_failed_workflow_and_not_another(client, clock):
    wf = start(client, "flaky_payment", "f1", {"amount": 5})
    for _ in range(5):              # each attempt fails; its retry timer fires a minute later
        if wf["status"] == "failed":
            break
        clock.advance(60)
        wf = client.post("/api/workflows/f1/timers/advance", json={"seconds": 0}).json
    assert wf["status"] == "failed"
    assert wf["error"]["type"] == "ProviderDown" and wf["error"]["key"] == "charge_card"
    wf = client.post("/api/workflows/f1/retry").json
    assert wf["status"] == "waiting"                   # on the first new attempt's retry timer
    assert wf["error"] is None
    start(client, "simple", "s1")
    error_of(client.post("/api/workflows/s1/retry"), 409, "conflict")


# --- errors ----------------------------------------------------------------------------------

def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/api/workflows", data="{flow: simple",
                           content_type="application/json")
    assert "not JSON" in error_of(response, 400, "bad_request")


@pytest.mark.parametrize("body", [[1, 2], {"flow": 3}, {"flow": "simple", "state": [1]},
                                  {"flow": "simple", "id": ""}])
def test_json_of_the_wrong_shape_is_422(client, body):
    error_of(client.post("/api/workflows", json=body), 422, "invalid")


def test_unknown_things_are_404(client):
    error_of(client.get("/api/workflows/nope"), 404, "not_found")
    error_of(client.get("/api/workflows/nope/snapshot"), 404, "not_found")
    error_of(client.post("/api/workflows", json={"flow": "nope"}), 404, "not_found")
    error_of(client.post("/api/workflows/nope/events", json={"name": "x"}), 404, "not_found")
    error_of(client.get("/api/no-such-route"), 404, "not_found")


def test_a_taken_id_is_409(client):
    start(client, "simple", "s1")
    error_of(client.post("/api/workflows", json={"flow": "simple", "id": "s1"}), 409, "conflict")


def test_a_wrong_method_is_405_as_json(client):
    response = client.delete("/api/workflows")
    error_of(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_a_body_too_large_is_413(make_app):
    client = make_app(TINYFLOW_MAX_PAYLOAD=1024).test_client()
    big = {"flow": "simple", "state": {"text": "x" * 2000}}
    error_of(client.post("/api/workflows", json=big), 413, "too_large")
    assert client.post("/api/workflows", json={"flow": "simple"}).status_code == 201


def test_no_csrf_token_is_needed_but_a_configured_bearer_token_is(make_app):
    client = make_app(TINYFLOW_AUTH_TOKEN="s3cret").test_client()
    response = client.post("/api/workflows", json={"flow": "simple"})
    error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error_of(client.post("/api/workflows", json={"flow": "simple"},
                         headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    ok = client.post("/api/workflows", json={"flow": "simple"},
                     headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201


# --- flows -----------------------------------------------------------------------------------

def test_flows_lists_each_registered_flow(client):
    flows = {f["name"]: f for f in client.get("/api/flows").json}
    assert {"simple", "guess_game", "guess_game_2", "user_onboarding",
            "interval_payment"} <= set(flows)
    simple = flows["simple"]
    assert set(simple) == {"name", "doc", "steps", "first_step", "transitions", "events",
                           "version", "compatible_versions", "migrates"}      # issue 16
    assert len(simple["version"]) == 8 and simple["compatible_versions"] == []
    assert simple["events"] == {}
    assert flows["interval_payment"]["events"]["add_usage"] == {
        "handler": "add_usage", "example": {"item": "coffee", "amount": 3}}
    assert simple["steps"] == ["step_begin", "step_compute", "step_end"]
    assert simple["first_step"] == "step_begin"
    assert simple["transitions"] == {"step_begin": ["step_compute"],
                                     "step_compute": ["step_end"], "step_end": []}
    assert simple["doc"].startswith("Computes pi once")


# --- issue 12: no quiet answers ------------------------------------------------------------------

@pytest.mark.parametrize("path, body, field", [
    ("/api/workflows", {"flow": "simple", "stat": {}}, "stat"),
    ("/api/workflows/g1/events", {"name": "event_ask_0", "paylaod": 5}, "paylaod"),
    ("/api/workflows/g1/timers/advance", {"seconds": 1, "unit": "h"}, "unit"),
    ("/api/workflows/g1/cancel", {"why": "bored"}, "why"),
    ("/api/workflows/g1/retry", {"now": 1}, "now"),
])
def test_an_unknown_field_is_422_naming_it(client, path, body, field):
    start(client, "guess_game", "g1")
    message = error_of(client.post(path, json=body), 422, "invalid")
    assert repr(field) in message
    assert client.get("/api/workflows/g1").json["status"] == "waiting"      # nothing done


def test_an_event_answer_says_how_it_was_delivered(client, clock):
    start(client, "guess_game", "g1")
    answer = client.post("/api/workflows/g1/events", json={"name": "event_ask_0", "payload": 1,
                                                           "idempotency_key": "k1"}).json
    assert answer["delivered"] == "wait"
    again = client.post("/api/workflows/g1/events", json={"name": "event_ask_0", "payload": 1,
                                                          "idempotency_key": "k1"}).json
    assert again["delivered"] == "duplicate"
    # Nothing waits for it: kept in the inbox, not delivered, and the answer says so.
    kept = client.post("/api/workflows/g1/events", json={"name": "later"}).json
    assert kept["delivered"] == "inbox"
    start(client, "interval_payment", "p1")
    handled = client.post("/api/workflows/p1/events", json={
        "name": "add_usage", "payload": {"item": "tea", "amount": 1}}).json
    assert handled["delivered"] == "handler"


def test_the_answer_has_the_cancel_reason_and_the_last_error_while_retrying(client, clock):
    start(client, "guess_game", "g1")
    wf = client.post("/api/workflows/g1/cancel", json={"reason": "bored"}).json
    assert wf["cancel_reason"] == "bored"
    assert client.get("/api/workflows/g1").json["cancel_reason"] == "bored"
    wf = start(client, "flaky_payment", "f1", {"amount": 5})
    assert wf["status"] == "waiting" and wf["error"] is None
    assert wf["last_error"]["type"] == "ProviderDown"
    assert "unreachable" in wf["last_error"]["message"]
    assert wf["last_error"]["attempt"] == 1 and wf["last_error"]["next_attempt_at"].endswith("Z")
    assert wf["cancel_reason"] is None and wf["clock_offset"] == 0


def test_advance_answers_the_workflows_clock(client, clock):
    start(client, "interval_payment", "p1", {"paymentIntervalMs": 900_000})
    wf = client.post("/api/workflows/p1/timers/advance", json={"seconds": 3600}).json
    assert wf["state"]["_cycle"] == 4 and wf["clock_offset"] == 3600
