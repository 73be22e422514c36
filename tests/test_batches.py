"""Batches: made through the API, the pages and the command line, carried out by runners in
chunks, each workflow acted on at most once, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from test_views_workflows import csrf, page
from webapp import runtime
from webapp.cli import main
from webapp.runtime import Runner
from webapp.store import EVENT_KEY, db

FLOWS = ["flows", "runtime_flows", "batch_flows", "search_flows"]


@pytest.fixture
def rt_app(make_app, any_db_url):
    return make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)


@pytest.fixture
def api(rt_app):
    return rt_app.test_client()


def start(api, flow, id, state=None):
    response = api.post("/api/workflows", json={"flow": flow, "id": id,
                                                **({"state": state} if state else {})})
    assert response.status_code == 201, response.json
    return response.json


def run_all(app, **options) -> int:
    """Settle every batch as a runner's passes do; how many passes it took."""
    with app.app_context():
        rt = runtime.current()
        passes = 0
        while rt.run_batches(owner="test-runner", **options):
            passes += 1
        return passes


def log_types(api, id):
    return [e["type"] for e in api.get(f"/api/workflows/{id}/logs?limit=500").json["items"]]


def make_batch(api, **body):
    response = api.post("/api/batches", json=body)
    assert response.status_code == 202, response.json
    return response.json


# --- the API -----------------------------------------------------------------------------------

def test_a_cancel_batch_by_filter_cancels_the_matching_ones_once_and_keeps_every_reason(
        rt_app, api):
    for i in range(7):
        start(api, "tally", f"t{i}")
    start(api, "simple", "s1")                          # finished: not matched by the filter
    api.post("/api/workflows/t6/cancel", json={"reason": "earlier"})
    batch = make_batch(api, action="cancel", filter={"flow": ["tally"]}, reason="tidy up")
    assert {k: batch[k] for k in ("action", "status", "total", "done", "skipped", "failed",
                                  "finished_at", "reason")} == {
        "action": "cancel", "status": "running", "total": 7, "done": 0, "skipped": 0,
        "failed": 0, "finished_at": None, "reason": "tidy up"}
    start(api, "tally", "t7")                           # after: the set was fixed already
    assert run_all(rt_app, chunk=3) == 3                # 7 items in chunks of 3
    done = api.get(f"/api/batches/{batch['id']}").json
    assert (done["status"], done["done"], done["skipped"], done["failed"]) == (
        "finished", 6, 1, 0)
    assert done["finished_at"] is not None
    for i in range(6):
        wf = api.get(f"/api/workflows/t{i}").json
        assert (wf["status"], wf["cancel_reason"]) == ("cancelled", "tidy up")
        assert log_types(api, f"t{i}").count("cancelled") == 1
    assert api.get("/api/workflows/t7").json["status"] == "waiting"
    skipped = api.get(f"/api/batches/{batch['id']}/items?outcome=skipped").json
    assert skipped == {"items": [{"id": "t6", "outcome": "skipped",
                                  "message": "cannot cancel a cancelled workflow"}],
                       "next_cursor": None}
    assert api.get("/api/workflows/s1").json["status"] == "finished"


def test_a_bulk_cancel_keeps_the_flow_statistics_a_recount_gives(rt_app, api):
    from test_stats import counters, recounted
    rt = rt_app.extensions["tinyflow"]
    for i in range(5):
        start(api, "tally", f"t{i}")
    make_batch(api, action="cancel", filter={"flow": ["tally"]}, reason="tidy up")
    run_all(rt_app, chunk=2)
    kept = counters(rt)
    assert api.get("/api/flows/tally/stats").json["statuses"]["cancelled"] == 5
    assert kept == recounted(rt)


def test_a_batch_by_a_search_attribute_acts_on_what_matched_when_it_was_made(rt_app, api):
    start(api, "account", "pro-1", {"plan": {"tier": "pro"}, "amount": 3})
    start(api, "account", "pro-2", {"plan": {"tier": "pro"}, "amount": "3"})
    start(api, "account", "free-1", {"plan": {"tier": "free"}, "amount": 3})
    start(api, "ledger", "l1", {"amount": 3})
    batch = make_batch(api, action="cancel", reason="pro plans end",
                       filter={"flow": "account", "state": {"plan.tier": "pro"}})
    assert batch["total"] == 2
    assert batch["filter"] == {"flow": ["account"], "state": {"plan.tier": "pro"}}
    # The set is fixed: an account that becomes pro afterwards is not in it.
    assert api.post("/api/workflows/free-1/events", json={
        "name": "set", "payload": {"plan": {"tier": "pro"}}}).status_code == 200
    run_all(rt_app)
    assert {i: api.get(f"/api/workflows/{i}").json["status"]
            for i in ("pro-1", "pro-2", "free-1", "l1")} == {
        "pro-1": "cancelled", "pro-2": "cancelled", "free-1": "waiting", "l1": "waiting"}
    # A value that parses as JSON is that JSON: the number 3, in both flows that declare it
    # (no flow chosen), and not the text "3".
    numbers = make_batch(api, action="send", event={"name": "close"},
                         filter={"state": {"amount": 3}})
    assert numbers["total"] == 3          # pro-1 (cancelled: skipped), free-1, l1
    run_all(rt_app)
    items = api.get(f"/api/batches/{numbers['id']}/items").json["items"]
    assert [(i["id"], i["outcome"]) for i in items] == [
        ("free-1", "done"), ("l1", "done"), ("pro-1", "skipped")]


def test_a_batch_by_a_step_takes_only_the_workflows_at_that_step(rt_app, api):
    start(api, "account", "open-1")
    start(api, "account", "closed-1")
    api.post("/api/workflows/closed-1/events", json={"name": "close"})
    start(api, "account", "open-2")
    batch = make_batch(api, action="cancel", filter={"flow": "account", "step": "step_open"})
    assert batch["total"] == 2
    assert api.post("/api/batches", json={"action": "cancel", "filter": {
        "flow": "account", "step": "step_nowhere"}}).status_code == 422


def test_a_bulk_cancel_that_loses_its_race_leaves_the_workflow_to_the_next_pass(rt_app, api):
    """A workflow that changed between the chunk's read and its write (an event came in) is
    not overwritten: its item stays to do, and the next pass cancels what it has become, once,
    and the statistics still equal a recount."""
    from test_stats import counters, recounted
    for i in range(3):
        start(api, "tally", f"t{i}")
    batch = make_batch(api, action="cancel", filter={"flow": "tally"})
    with rt_app.app_context():
        rt = runtime.current()
        settle, raced = rt.store.settle, []

        def settle_after_a_ping(*args, **kwargs):
            if not raced:
                raced.append(runtime.send("t1", "ping"))      # commits t1: a new version
            return settle(*args, **kwargs)
        rt.store.settle = settle_after_a_ping
        try:
            assert rt.run_batches(owner="test-runner") == 2   # t1's change was stale
            assert rt.batch(batch["id"]).status == "running"
            assert rt.run_batches(owner="test-runner") == 1
        finally:
            rt.store.settle = settle
    done = api.get(f"/api/batches/{batch['id']}").json
    assert (done["status"], done["done"], done["skipped"], done["failed"]) == (
        "finished", 3, 0, 0)
    t1 = api.get("/api/workflows/t1").json
    assert (t1["status"], t1["state"]["pings"]) == ("cancelled", 1)     # the ping was kept
    assert log_types(api, "t1").count("cancelled") == 1
    assert counters(rt_app.extensions["tinyflow"]) == recounted(rt_app.extensions["tinyflow"])


def test_a_held_workflow_is_skipped_by_a_send_and_cancelled_by_a_cancel(rt_app, api):
    from sqlalchemy import update
    from webapp.store import WORKFLOW
    start(api, "tally", "held")
    start(api, "tally", "free")
    with rt_app.app_context():                 # started on a version the code does not accept
        db.session.execute(update(WORKFLOW).where(WORKFLOW.c.id == "held")
                           .values(flow_version="gone"))
        db.session.commit()
    assert api.get("/api/workflows/held").json["held"]
    send = make_batch(api, action="send", ids=["held", "free"], event={"name": "ping"})
    run_all(rt_app)
    items = {i["id"]: i for i in api.get(f"/api/batches/{send['id']}/items").json["items"]}
    assert items["free"]["outcome"] == "done"
    assert items["held"]["outcome"] == "skipped" and "gone" in items["held"]["message"]
    cancel = make_batch(api, action="cancel", ids=["held", "free"], confirm=True)
    run_all(rt_app)
    answer = api.get(f"/api/batches/{cancel['id']}").json
    assert (answer["done"], answer["skipped"], answer["failed"]) == (2, 0, 0)
    assert api.get("/api/workflows/held").json["status"] == "cancelled"
    assert log_types(api, "held").count("cancelled") == 1


def test_a_batch_by_ids_skips_what_is_not_there_or_not_in_a_state_for_it(rt_app, api):
    start(api, "tally", "a")
    start(api, "simple", "done-one")
    batch = make_batch(api, action="cancel", ids=["a", "done-one", "ghost", "a"])
    assert batch["total"] == 3                          # each id once
    run_all(rt_app)
    items = api.get(f"/api/batches/{batch['id']}/items").json["items"]
    assert items == [
        {"id": "a", "outcome": "done", "message": None},
        {"id": "done-one", "outcome": "skipped", "message": "cannot cancel a finished workflow"},
        {"id": "ghost", "outcome": "skipped", "message": "no workflow 'ghost'"}]


def test_a_send_batch_delivers_once_with_its_key_even_when_redone(rt_app, api):
    for i in range(4):
        start(api, "tally", f"t{i}")
    batch = make_batch(api, action="send", ids=["t0", "t1", "t2", "t3"],
                       event={"name": "ping", "payload": {"n": 1}})
    with rt_app.app_context():
        rt = runtime.current()
        # A runner that sent to t0 and t1, then died before it recorded their outcomes:
        record = rt.batch(batch["id"])
        for id in ("t0", "t1"):
            assert rt._act_one("send", id, {"event": {"name": "ping"}}, f"batch:{record.id}",
                               None) == ("done", None)
    run_all(rt_app)
    answer = api.get(f"/api/batches/{batch['id']}").json
    assert (answer["done"], answer["skipped"], answer["failed"]) == (4, 0, 0)
    for i in range(4):
        wf = api.get(f"/api/workflows/t{i}").json
        assert wf["state"]["pings"] == 1                # never twice
        assert log_types(api, f"t{i}").count("event_received") == 1
    with rt_app.app_context():
        keys = db.session.execute(select(func.count()).select_from(EVENT_KEY).where(
            EVENT_KEY.c.key == f"batch:{batch['id']}")).scalar()
    assert keys == 4


def test_a_retry_batch_retries_the_failed_and_skips_the_others(rt_app, api, tmp_path, clock):
    path = tmp_path / "needed"
    start(api, "flaky", "f1", {"path": str(path)})
    start(api, "flaky", "f2", {"path": str(path)})
    start(api, "tally", "t1")
    assert api.get("/api/workflows/f1").json["status"] == "failed"
    path.touch()
    batch = make_batch(api, action="retry", filter={"status": "failed"})
    assert batch["total"] == 2
    clock.advance(1)
    make_batch(api, action="retry", ids=["t1"])
    run_all(rt_app)
    assert api.get("/api/workflows/f1").json["status"] == "finished"
    assert api.get("/api/workflows/f2").json["status"] == "finished"
    items = api.get("/api/batches").json["items"]
    assert [(b["action"], b["done"], b["skipped"]) for b in items] == [
        ("retry", 0, 1), ("retry", 2, 0)]              # newest first
    skipped = api.get(f"/api/batches/{items[0]['id']}/items?outcome=skipped").json["items"]
    assert skipped == [{"id": "t1", "outcome": "skipped", "message":
                        "only a failed workflow can be retried; this one is waiting"}]


def test_a_workflow_a_live_runner_holds_is_left_to_the_command_which_says_why(
        make_app, clock):
    app = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_BUSY_WAIT=0.0)
    api = app.test_client()
    start(api, "tally", "held-by-other")
    start(api, "tally", "free")
    with app.app_context():
        rt = runtime.current()
        clock.advance(0)
        rt.store.renew("held-by-other", rt.store.load("held-by-other").version, "other-runner",
                       int(clock.now * 1000) + 60_000)
    batch = make_batch(api, action="cancel", ids=["held-by-other", "free"])
    run_all(app)
    items = {i["id"]: i for i in api.get(f"/api/batches/{batch['id']}/items").json["items"]}
    assert items["free"]["outcome"] == "done"
    assert items["held-by-other"]["outcome"] == "failed"
    assert "being run by other-runner" in items["held-by-other"]["message"]


@pytest.mark.parametrize("body, words", [
    ({"action": "cancel", "ids": []}, "the selection is empty"),
    ({"action": "cancel", "filter": {"flow": ["no-such-flow"]}}, "no workflow matches"),
    ({"action": "explode", "ids": ["a"]}, "unknown action 'explode'"),
    ({"ids": ["a"]}, "unknown action None"),
    ({"action": "cancel", "filter": {}}, "the filter names nothing"),
    ({"action": "cancel", "filter": {"flow": [], "q": " "}}, "the filter names nothing"),
    ({"action": "send", "ids": ["a"]}, "a send needs an event name"),
    ({"action": "send", "ids": ["a"], "event": {"payload": 1}}, "a send needs an event name"),
    ({"action": "cancel", "ids": ["a"], "filter": {"flow": "tally"}}, "either by 'ids' or"),
    ({"action": "cancel"}, "either by 'ids' or"),
    ({"action": "cancel", "filter": {"state": {}}}, "the filter names nothing"),
    ({"action": "cancel", "filter": {"state": "amount=3"}}, "'state' must be an object"),
    ({"action": "cancel", "filter": {"state": {"colour": "red"}}},
     "'colour' is not a search attribute of any loaded flow"),
    ({"action": "cancel", "filter": {"flow": "tally", "state": {"amount": 3}}},
     "'amount' is not a search attribute of flow 'tally': it declares none"),
    ({"action": "cancel", "filter": {"flow": "account", "state": {"amount": [1]}}},
     "the filter on 'amount' must be text, a number, true or false"),
    ({"action": "cancel", "filter": {"flow": "tally", "step": "step_nowhere"}},
     "'step_nowhere' is not a step of flow 'tally'"),
    ({"action": "cancel", "filter": {"colour": "red"}}, "unknown filter 'colour'"),
    ({"action": "cancel", "filter": {"status": ["sleepy"]}}, "unknown status 'sleepy'"),
    ({"action": "cancel", "ids": [7]}, "each chosen id must be a workflow id"),
    ({"action": "retry", "ids": ["a"], "reason": "x"}, "'reason' is for a cancel"),
    ({"action": "cancel", "ids": ["a"], "confirm": "yes"}, "'confirm' must be true or false"),
    ({"action": "cancel", "ids": ["a"], "extra": 1}, "Unknown field 'extra'"),
])
def test_bad_batches_are_422_with_the_reason_and_nothing_is_made(rt_app, api, body, words):
    start(api, "tally", "a")
    response = api.post("/api/batches", json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid"
    assert words in response.json["error"]["message"]
    assert api.get("/api/batches").json["items"] == []


def test_unknown_batches_are_404_and_a_bad_outcome_422(api):
    assert api.get("/api/batches/nope").status_code == 404
    assert api.get("/api/batches/nope").json["error"]["code"] == "not_found"
    assert api.get("/api/batches/nope/items").status_code == 404
    start(api, "tally", "a")
    batch = make_batch(api, action="cancel", ids=["a"])
    response = api.get(f"/api/batches/{batch['id']}/items?outcome=meh")
    assert response.status_code == 422 and "unknown outcome" in response.json["error"]["message"]


def test_a_batch_over_the_limit_asks_to_be_confirmed(make_app):
    app = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_BATCH_CONFIRM_OVER=2)
    api = app.test_client()
    for i in range(3):
        start(api, "tally", f"t{i}")
    response = api.post("/api/batches", json={"action": "cancel", "filter": {"flow": "tally"}})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "confirm_needed"
    assert "3 workflows, more than TINYFLOW_BATCH_CONFIRM_OVER (2)" in \
        response.json["error"]["message"]
    assert api.get("/api/batches").json["items"] == []
    assert make_batch(api, action="cancel", ids=["t0", "t1"])["total"] == 2   # at the limit
    batch = make_batch(api, action="cancel", filter={"flow": "tally"}, confirm=True)
    assert batch["total"] == 3


def test_two_runners_share_a_batch_by_its_lease_and_one_takes_over_a_dead_ones(rt_app, api,
                                                                                clock):
    for i in range(6):
        start(api, "tally", f"t{i}")
    batch = make_batch(api, action="send", filter={"flow": "tally"}, event={"name": "ping"})
    with rt_app.app_context():
        rt = runtime.current()
        assert rt.run_batches(owner="a", chunk=2) == 2
        assert rt.run_batches(owner="b", chunk=2) == 0       # a holds it
        assert rt.run_batches(owner="a", chunk=2) == 2
        clock.advance(61)                                    # a died: its lease expires
        assert rt.run_batches(owner="b", chunk=2) == 2
        assert rt.run_batches(owner="a", chunk=2) == 0       # b holds it now
        assert rt.run_batches(owner="b", chunk=2) == 0       # none left: finished
    assert api.get(f"/api/batches/{batch['id']}").json["status"] == "finished"


def test_the_runners_pass_carries_batches_out(rt_app, api):
    start(api, "tally", "t0")
    batch = make_batch(api, action="cancel", ids=["t0"])
    with rt_app.app_context():
        assert Runner(runtime.current()).tick() >= 1
    assert api.get(f"/api/batches/{batch['id']}").json["status"] == "finished"


# --- the pages ---------------------------------------------------------------------------------

def test_the_list_has_checkboxes_and_both_buttons_and_says_how_many_match(rt_app, api):
    for i in range(3):
        start(api, "tally", f"t{i}")
    start(api, "simple", "s1")
    html = page(api.get("/workflows?flow=tally&status=waiting"))
    boxes = html.select("input[type=checkbox][name=id][form=batch-form]")
    assert sorted(b["value"] for b in boxes) == ["t0", "t1", "t2"]
    form = html.select_one("form#batch-form")
    assert form["method"] == "get" and form["action"] == "/batches/new"
    assert html.select_one("#batch-selected").text.strip() == "… the selected"
    assert html.select_one("#batch-matching").text.strip() == "… all 3 matching"
    hidden = {(i["name"], i["value"]) for i in form.select("input[type=hidden]")}
    assert hidden == {("flow", "tally"), ("status", "waiting")}
    # Without a filter there is no "all matching": a filter on nothing is refused.
    assert page(api.get("/workflows")).select_one("#batch-matching") is None


def test_all_matching_takes_the_lists_search_attribute_and_step_filters(rt_app, api):
    for id, tier in (("a1", "pro"), ("a2", "pro"), ("a3", "free")):
        start(api, "account", id, {"plan": {"tier": tier}})
    start(api, "account", "a4", {"plan": {"tier": "pro"}})
    api.post("/api/workflows/a4/events", json={"name": "close"})       # finished, step_closed
    html = page(api.get("/workflows?flow=account&step=step_open&state.plan.tier=pro"))
    assert html.select_one("#batch-matching").text.strip() == "… all 2 matching"
    form = html.select_one("form#batch-form")
    hidden = {(i["name"], i["value"]) for i in form.select("input[type=hidden]")}
    assert hidden == {("flow", "account"), ("step", "step_open"), ("state.plan.tier", "pro")}

    query = "action=cancel&scope=matching&flow=account&step=step_open&state.plan.tier=pro"
    confirm = page(api.get(f"/batches/new?{query}"))
    assert confirm.select_one("h1").text.strip() == "Cancel 2 workflows"
    assert " ".join(confirm.select_one("#which-workflows").text.split()).startswith(
        "Every workflow with flow account, step step_open, plan.tier “pro”: 2 now.")
    data = [(i["name"], i["value"]) for i in confirm.select("form#batch-confirm-form "
                                                            "input[type=hidden]")]
    assert ("state.plan.tier", "pro") in data and ("step", "step_open") in data
    response = api.post("/batches", data=dict(data))
    assert response.status_code == 303
    run_all(rt_app)
    assert [api.get(f"/api/workflows/a{i}").json["status"] for i in range(1, 5)] == [
        "cancelled", "cancelled", "waiting", "finished"]
    shown = page(api.get(response.headers["Location"]))
    assert "Every workflow with flow account, step step_open, plan.tier “pro” when it was " \
        "made." in " ".join(shown.select_one("#batch-what").text.split())
    # A value typed as JSON keeps its type through the confirmation: the number 3.
    start(api, "account", "n3", {"amount": 3})
    start(api, "account", "t3", {"amount": "3"})
    confirm = page(api.get("/batches/new?action=cancel&scope=matching&flow=account"
                           "&state.amount=3"))
    assert confirm.select_one("h1").text.strip() == "Cancel 1 workflow"
    assert "amount 3:" in confirm.select_one("#which-workflows").text
    # A search attribute the flow does not declare: the message, 422.
    refused = api.get("/batches/new?action=cancel&scope=matching&flow=tally&state.colour=red")
    assert refused.status_code == 422
    assert "'colour' is not a search attribute of flow 'tally'" in page(refused).text


def test_read_only_pages_offer_no_batch(make_app):
    app = make_app(TINYFLOW_FLOWS=FLOWS)
    start(app.test_client(), "tally", "t0")
    ro = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_READ_ONLY=True)
    html = page(ro.test_client().get("/workflows"))
    assert html.select_one("#batch-form") is None and not html.select("input[name=id]")


def test_the_confirmation_says_what_happens_to_how_many_then_the_batch_page_shows_progress(
        rt_app, api):
    for i in range(3):
        start(api, "tally", f"t{i}")
    html = page(api.get("/batches/new?action=cancel&scope=selected&id=t0&id=t2&flow=tally"))
    assert html.select_one("h1").text.strip() == "Cancel 2 workflows"
    assert "finished or cancelled already is skipped" in html.select_one("#what-happens").text
    assert [li.text for li in html.select(".batch-ids li")] == ["t0", "t2"]
    form = html.select_one("form#batch-confirm-form")
    assert form["method"] == "post" and form.select_one("input[name=csrf_token]")
    data = {i["name"]: i["value"] for i in form.select("input[type=hidden]")
            if i["name"] != "id"}
    data["id"] = ["t0", "t2"]
    data["reason"] = "from the page"
    response = api.post("/batches", data=data)
    assert response.status_code == 303
    batch_url = response.headers["Location"]
    shown = page(api.get(batch_url))
    progress = shown.select_one("#batch-progress")
    assert progress["data-status"] == "running" and progress.get("hx-trigger") == "every 1s"
    assert shown.select_one("noscript meta[http-equiv=refresh]") is not None   # without JS
    assert shown.select_one("#batch-refresh") is not None
    run_all(rt_app)
    fragment = page(api.get(batch_url, headers={"HX-Request": "true"}))
    progress = fragment.select_one("#batch-progress")
    assert progress["data-status"] == "finished" and progress.get("hx-trigger") is None
    assert fragment.select_one("#batch-done").text == "2"
    assert fragment.select_one("#batch-bar")["value"] == "2"
    assert api.get("/api/workflows/t0").json["cancel_reason"] == "from the page"
    assert api.get("/api/workflows/t1").json["status"] == "waiting"
    listed = page(api.get("/batches"))
    assert listed.select_one(f"a[href='{batch_url}']") is not None
    assert page(api.get("/workflows")).select_one("nav a[href='/batches']") is not None


def test_all_matching_sends_an_event_to_the_filtered_set(rt_app, api):
    for i in range(3):
        start(api, "tally", f"t{i}")
    start(api, "simple", "s1")
    html = page(api.get("/batches/new?action=send&scope=matching&flow=tally"))
    assert html.select_one("h1").text.strip() == "Send an event to 3 workflows"
    assert "Every workflow with flow tally" in html.select_one("#which-workflows").text
    response = api.post("/batches", data={
        "csrf_token": csrf(api), "action": "send", "scope": "matching", "flow": "tally",
        "event_name": "ping", "event_value": "42"})
    assert response.status_code == 303
    run_all(rt_app)
    assert {api.get(f"/api/workflows/t{i}").json["state"]["pings"] for i in range(3)} == {1}
    item = api.get("/api/batches").json["items"][0]
    assert item["event"] == {"name": "ping", "payload": 42}


def test_a_refused_confirmation_comes_back_with_the_message(rt_app, api):
    start(api, "tally", "t0")
    response = api.post("/batches", data={"csrf_token": csrf(api), "action": "send",
                                          "scope": "selected", "id": "t0", "event_name": ""})
    assert response.status_code == 422
    html = page(response)
    assert "a send needs an event name" in html.select_one("#batch-error").text
    assert html.select_one("form#batch-confirm-form input[name=id]")["value"] == "t0"
    empty = api.get("/batches/new?action=cancel&scope=selected")
    assert empty.status_code == 422 and "the selection is empty" in empty.get_data(as_text=True)
    assert api.post("/batches", data={"action": "cancel", "scope": "selected",
                                      "id": "t0"}).status_code == 400      # no CSRF token


def test_a_large_batch_on_the_page_needs_the_box_ticked(make_app):
    app = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_BATCH_CONFIRM_OVER=1)
    api = app.test_client()
    for i in range(2):
        start(api, "tally", f"t{i}")
    html = page(api.get("/batches/new?action=cancel&scope=matching&flow=tally"))
    box = html.select_one("#batch-confirm-over")
    assert box is not None and box.has_attr("required")
    data = {"csrf_token": csrf(api), "action": "cancel", "scope": "matching", "flow": "tally"}
    refused = api.post("/batches", data=data)
    assert refused.status_code == 409
    assert "TINYFLOW_BATCH_CONFIRM_OVER" in page(refused).select_one("#batch-error").text
    assert api.post("/batches", data={**data, "confirm": "yes"}).status_code == 303


# --- the command line --------------------------------------------------------------------------

def test_the_cli_makes_a_batch_and_prints_its_progress_until_done(rt_app, api, clock):
    for i in range(4):
        start(api, "tally", f"t{i}")
    start(api, "simple", "s1")
    cli = rt_app.test_cli_runner()
    result = cli.invoke(main, ["batch", "send", "ping", "7", "--flow", "tally"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("batch ") and lines[0].endswith(": send 4 workflow(s)")
    assert lines[-1].endswith("finished: 4 done, 0 skipped, 0 failed")
    assert "  4 of 4 settled (4 done, 0 skipped, 0 failed)" in lines
    assert {api.get(f"/api/workflows/t{i}").json["state"]["pings"] for i in range(4)} == {1}

    clock.advance(1)          # the list is newest first: the cancel is made a second later
    result = cli.invoke(main, ["batch", "cancel", "--id", "t0", "--id", "s1", "--reason", "x"])
    assert result.exit_code == 0, result.output
    assert "  skipped s1: cannot cancel a finished workflow" in result.output.splitlines()
    assert api.get("/api/workflows/t0").json["cancel_reason"] == "x"

    listed = cli.invoke(main, ["batch", "list"]).output.splitlines()
    assert listed[0].split() == ["ID", "ACTION", "STATUS", "TOTAL", "DONE", "SKIPPED",
                                 "FAILED", "CREATED"]
    assert [line.split()[1:4] for line in listed[1:]] == [["cancel", "finished", "2"],
                                                          ["send", "finished", "4"]]


def test_the_cli_batch_takes_the_search_attribute_and_step_filters(rt_app, api):
    start(api, "account", "pro-1", {"plan": {"tier": "pro"}})
    start(api, "account", "free-1", {"plan": {"tier": "free"}})
    cli = rt_app.test_cli_runner()
    result = cli.invoke(main, ["batch", "cancel", "--flow", "account", "--step", "step_open",
                               "--state", "plan.tier=pro"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(": cancel 1 workflow(s)")
    assert api.get("/api/workflows/pro-1").json["status"] == "cancelled"
    assert api.get("/api/workflows/free-1").json["status"] == "waiting"


@pytest.mark.parametrize("args, words", [
    (["batch", "cancel"], "the filter names nothing"),
    (["batch", "retry", "--flow", "nope"], "no workflow matches the filter"),
    (["batch", "send", "", "--flow", "tally"], "a send needs an event name"),
    (["batch", "cancel", "--state", "amount"], "--state takes PATH=VALUE"),
    (["batch", "cancel", "--flow", "tally", "--state", "amount=3"],
     "'amount' is not a search attribute of flow 'tally'"),
    (["batch", "cancel", "--flow", "tally", "--step", "step_nowhere"],
     "'step_nowhere' is not a step of flow 'tally'"),
])
def test_the_cli_refuses_bad_batches_in_one_line(rt_app, api, args, words):
    start(api, "tally", "t0")
    result = rt_app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and words in result.output


def test_the_cli_asks_before_a_large_batch_and_yes_confirms(make_app):
    app = make_app(TINYFLOW_FLOWS=FLOWS, TINYFLOW_BATCH_CONFIRM_OVER=1)
    api = app.test_client()
    for i in range(2):
        start(api, "tally", f"t{i}")
    cli = app.test_cli_runner()
    refused = cli.invoke(main, ["batch", "cancel", "--flow", "tally"])
    assert refused.exit_code == 2 and "(confirm_needed)" in refused.output
    done = cli.invoke(main, ["batch", "cancel", "--flow", "tally", "--yes"])
    assert done.exit_code == 0 and "2 done" in done.output
