"""Fuzzing with hypothesis: the snapshot loader, stored snapshots of any shape behind the API and
the pages, and the API and forms given any request. The promise checked: a clear answer (never
a 500, never an exception other than the documented ones), and nothing else disturbed."""
from __future__ import annotations

import itertools
import json
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp import runtime
from webapp.store import db

# TINYFLOW_FUZZ_SCALE=20 runs twenty times as many examples (a longer local run).
SCALE = float(os.environ.get("TINYFLOW_FUZZ_SCALE", "1"))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])
FLOWS = ["simple", "guess_game", "guess_game_2", "user_onboarding", "interval_payment"]
STEPS = ["step_begin", "step_play", "step_end", "step_process", "step_wait", "step_compute",
         "step_ask", "step_check", "step_cancel", "step_send_receipt", "nope", "<b>x</b>"]

scalars = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=16)
system_keys = st.builds(lambda seq, step, kind, key: f"{seq}:{step}:{kind}:{key}",
                        st.integers(0, 3), st.sampled_from(STEPS),
                        st.sampled_from(["timer", "event", "retry"]), st.text(max_size=6))
waits = st.fixed_dictionaries(
    {"type": st.sampled_from(["timer", "event"]) | json_values,
     "resumeId": st.text(max_size=6) | json_values},
    optional={"isDone": json_values, "resumeAfter": st.integers(0, 2 ** 45) | json_values,
              "timeoutAt": st.integers(0, 2 ** 45) | json_values, "timedOut": json_values,
              "requestPayload": json_values, "responsePayload": json_values,
              "retry": json_values, "attempt": json_values, "key": json_values,
              "closed": json_values})
log_entries = st.fixed_dictionaries(
    {"type": st.sampled_from(["transition", "cache", "interrupt_begin", "interrupt_end",
                              "action_error", "failed", "finished", "x"]) | st.text(max_size=6)},
    optional={"values": st.dictionaries(st.sampled_from(["from", "to", "key", "stepSeq",
                                                         "resumeId", "type", "closed"]),
                                        st.sampled_from(STEPS) | json_values, max_size=4),
              "_at": st.integers(0, 2 ** 45) | json_values,
              "_step": st.sampled_from(STEPS) | json_values})
snapshots = st.fixed_dictionaries({}, optional={
    "step": st.sampled_from(STEPS) | json_values,
    "state": st.dictionaries(st.text(max_size=10), json_values, max_size=5) | json_values,
    "cache": st.dictionaries(st.text(max_size=14) | st.just("_seq"), json_values, max_size=4)
    | json_values,
    "system": st.dictionaries(system_keys, waits | json_values, max_size=3) | json_values,
    "logs": st.lists(log_entries, max_size=5) | json_values,
    "status": st.sampled_from(["running", "waiting", "finished", "failed", "cancelled"])
    | json_values,
    "inbox": st.lists(st.fixed_dictionaries({"name": st.text(max_size=8),
                                             "payload": json_values}), max_size=2)
    | json_values,
    "error": st.fixed_dictionaries({"type": st.text(max_size=5),
                                    "message": st.text(max_size=5)}) | json_values,
})


def flow_class(app, name):
    with app.app_context():
        return runtime.registry()[name]


START = 1_723_991_733.5


def real_snapshots(app) -> list[tuple[str, dict]]:
    """Snapshots of the example flows in the states they really reach (JSON round-tripped)."""
    found = []
    for name in FLOWS:
        cls = flow_class(app, name)
        wf = cls(state={"userEmail": "a@b.c", "paymentIntervalMs": 1000}, now=START)
        for n in range(3):
            wf.run(START + n * 10)
            found.append((name, json.loads(json.dumps(wf.to_json()))))
            for wait in wf.pending():
                if wait["type"] == "event":
                    wf.resolve(wait["resumeId"], -1, now=START + n * 10)
            if name == "interval_payment" and n == 1:
                wf.send("add_usage", {"item": "x", "amount": 1}, now=START + 11)
    return found


def paths(node, prefix=()):
    """Every place inside a JSON document, as key paths."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, list) else ()
    for key, child in items:
        yield prefix + (key,)
        yield from paths(child, prefix + (key,))


def mutated(data, doc):
    """``doc`` with a few places replaced by any JSON value, or removed (drawn from ``data``)."""
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        places = list(paths(doc))
        if not places:
            break
        path = data.draw(st.sampled_from(places), label="place")
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), label="remove") and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values | st.sampled_from(STEPS), label="value")
    return doc


# --- the engine's loader ---------------------------------------------------------------------

def any_snapshot(app, data) -> tuple[str, dict]:
    """A real snapshot with a few places changed, or (less often) one made up from nothing."""
    if data.draw(st.integers(0, 3), label="from nothing") == 0:
        return (data.draw(st.sampled_from(FLOWS), label="flow"),
                json.loads(json.dumps(data.draw(snapshots, label="snapshot"))))
    flow, doc = data.draw(st.sampled_from(real_snapshots(app)), label="real")
    return flow, mutated(data, json.loads(json.dumps(doc)))


@settings(max_examples=int(400 * SCALE), **SETTINGS)
@given(data=st.data(), now=st.floats(0, 4e9))
def test_the_loader_takes_a_snapshot_or_refuses_it_with_value_error(app, data, now):
    flow, data = any_snapshot(app, data)
    cls = flow_class(app, flow)
    try:
        wf = cls.from_json(data)
    except ValueError:
        return
    wf.pending()
    wf.wake_at()
    wf.run(now)                            # step code that fails fails the workflow, no more
    assert json.loads(json.dumps(wf.to_json()))["status"] == wf.status


# --- any stored snapshot, behind the API and the pages ---------------------------------------

ids = itertools.count()


@settings(max_examples=int(60 * SCALE), **SETTINGS)
@given(data=st.data())
def test_any_imported_snapshot_gets_clear_answers_everywhere(app, clock, data):
    flow, doc = any_snapshot(app, data)
    client = app.test_client()
    id = f"fz-{next(ids)}"
    with app.app_context():
        try:   # without a flow, the import infers it (from whatever the snapshot holds)
            runtime.import_snapshots([[id, doc]], flow=data.draw(st.sampled_from([flow, None])))
        except (runtime.Invalid, runtime.NotFound):
            return
        finally:
            db.session.rollback()
    base = f"/api/workflows/{quote(id)}"
    calls = [("get", base, None), ("get", f"{base}/snapshot", None),
             ("get", f"{base}/logs", None), ("get", f"/workflows/{id}", None),
             ("get", f"/workflows/{id}/diagram.svg", None), ("get", "/workflows", None),
             ("post", f"{base}/events", {"name": "event_ask_0", "payload": 1}),
             ("post", f"{base}/events", {"name": "cancel"}),
             ("post", f"{base}/timers/advance", {"seconds": 3600}),
             ("post", f"{base}/retry", None), ("post", f"{base}/cancel", None)]
    for method, url, body in calls:
        response = getattr(client, method)(url, json=body)
        assert response.status_code < 500, (url, response.get_data(as_text=True)[:500])
        if url.startswith("/api/") and response.status_code >= 400:
            assert response.json["error"]["code"] in {"not_found", "conflict", "invalid",
                                                      "broken", "bad_request"}, response.json
    clock.advance(3600)
    with app.app_context():
        runtime.run_due()                  # a runner survives it too
        db.session.rollback()
        assert client.get("/workflows").status_code == 200


# --- any request -----------------------------------------------------------------------------

SEGMENTS = st.sampled_from(["g", "nope", "%FF", "..", "%2e%2e", "a/b", "<x>", "", " "])
API_PATHS = st.sampled_from([
    "/api/workflows", "/api/workflows/{}", "/api/workflows/{}/snapshot",
    "/api/workflows/{}/logs", "/api/workflows/{}/events", "/api/workflows/{}/timers/{}/fire",
    "/api/workflows/{}/timers/advance", "/api/workflows/{}/cancel",
    "/api/workflows/{}/retry", "/api/flows", "/api/{}"])
PAGE_PATHS = st.sampled_from([
    "/workflows", "/workflows/{}", "/workflows/{}/events", "/workflows/{}/cancel",
    "/workflows/{}/retry", "/workflows/{}/timers/advance", "/workflows/{}/timers/{}/fire",
    "/workflows/{}/diagram.svg", "/workflows/{}/snapshot.json", "/flows/{}", "/login"])
bodies = (st.none() | json_values.map(json.dumps)
          | st.dictionaries(st.sampled_from(["flow", "name", "payload", "state", "id",
                                             "idempotency_key", "seconds", "reason"]),
                            json_values | st.sampled_from(FLOWS), max_size=4).map(json.dumps)
          | st.binary(max_size=40))
queries = st.dictionaries(st.sampled_from(["limit", "cursor", "status", "flow", "q", "type",
                                           "step", "v", "download"]),
                          st.text(max_size=8), max_size=3)


@pytest.fixture
def fuzzed(app):
    with app.app_context():
        runtime.start("guess_game", id="g")
        runtime.start("user_onboarding", id="u")
    return app


@settings(max_examples=int(250 * SCALE), **SETTINGS)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=API_PATHS,
       parts=st.tuples(SEGMENTS, SEGMENTS), body=bodies, query=queries,
       typed=st.sampled_from(["application/json", "text/plain", None]))
def test_the_api_answers_any_request_clearly(fuzzed, method, path, parts, body, query, typed):
    client = fuzzed.test_client()
    response = client.open(path.format(*parts), method=method, data=body, query_string=query,
                           content_type=typed)
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if 300 <= response.status_code < 400:   # "//" in a path: redirected to the single slash
        return
    assert response.is_json
    if response.status_code >= 400:
        error = response.json["error"]
        assert set(error) == {"code", "message"} and error["code"] in {
            "bad_request", "not_found", "method_not_allowed", "conflict", "invalid",
            "too_large", "broken"}
    assert client.get("/api/workflows/g").status_code == 200


@settings(max_examples=int(150 * SCALE), **SETTINGS)
@given(method=st.sampled_from(["GET", "POST"]), path=PAGE_PATHS,
       parts=st.tuples(SEGMENTS, SEGMENTS), query=queries,
       form=st.dictionaries(st.sampled_from(["flow", "name", "value", "state", "id", "seconds",
                                             "reason", "form", "idempotency_key", "token"]),
                            st.text(max_size=20) | json_values.map(json.dumps), max_size=4),
       htmx=st.booleans())
def test_the_pages_answer_any_form_clearly(fuzzed, method, path, parts, query, form, htmx):
    client = fuzzed.test_client()
    token = json.loads(client.get("/flows").get_data(as_text=True).split("hx-headers='")[1]
                       .split("'")[0])["X-CSRFToken"]
    response = client.open(path.format(*parts), method=method, query_string=query,
                           data={**form, "csrf_token": token} if method == "POST" else None,
                           headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert client.get("/workflows/g").status_code == 200
