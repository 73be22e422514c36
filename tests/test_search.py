"""Search attributes (issue 14 item 4) and the step filter (issue 13): a flow's declared state
paths indexed at every commit, ``state.<path>=`` and ``step=`` on the API, the pages and the
CLI, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import delete, select, text, update

from webapp import store
from webapp.cli import main
from webapp.engine import Workflow, step
from webapp.engine.spec import FlowDefinitionError
from webapp.runtime import Runtime
from webapp.store import ATTR, ATTR_INDEX, Meta, db

FLOWS = ["search_flows"]


@pytest.fixture
def app(make_app, any_db_url):
    return make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)


@pytest.fixture
def client(app):
    return app.test_client()


def start(client, id, state=None, flow="account"):
    response = client.post("/api/workflows", json={"flow": flow, "id": id, "state": state or {}})
    assert response.status_code == 201, response.json
    return response.json


def found(client, query: str) -> list[str]:
    response = client.get(f"/api/workflows?{query}")
    assert response.status_code == 200, response.json
    return sorted(item["id"] for item in response.json["items"])


def refused(client, query: str) -> str:
    response = client.get(f"/api/workflows?{query}")
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid"
    return response.json["error"]["message"]


def send(client, id, payload, name="set"):
    response = client.post(f"/api/workflows/{id}/events", json={"name": name, "payload": payload})
    assert response.status_code == 200, response.json


def test_exact_matches_keep_text_numbers_and_booleans_apart(client):
    start(client, "n3", {"amount": 3})
    start(client, "f3", {"amount": 3.0})              # the same number as 3
    start(client, "t3", {"amount": "3"})
    start(client, "n1", {"amount": 1})
    start(client, "yes", {"active": True})
    start(client, "text-true", {"active": "true"})
    start(client, "frac", {"amount": 2.5})

    assert found(client, "flow=account&state.amount=3") == ["f3", "n3"]
    assert found(client, "flow=account&state.amount=3.0") == ["f3", "n3"]
    assert found(client, 'flow=account&state.amount="3"') == ["t3"]
    assert found(client, "flow=account&state.amount=1") == ["n1"]          # not true
    assert found(client, "flow=account&state.active=true") == ["yes"]      # not 1, not "true"
    assert found(client, 'flow=account&state.active="true"') == ["text-true"]
    assert found(client, "flow=account&state.active=1") == []
    assert found(client, "flow=account&state.amount=2.5") == ["frac"]
    assert found(client, "flow=account&state.amount=three") == []          # text, not JSON
    # Not searchable values are refused, not silently matched against nothing.
    for value in ("null", "[3]", "%7B%7D"):
        assert "must be text, a number, true or false" in refused(
            client, f"flow=account&state.amount={value}")


def test_dotted_paths_reach_into_objects_and_filters_are_anded(client):
    start(client, "gold-3", {"plan": {"tier": "gold"}, "amount": 3})
    start(client, "gold-4", {"plan": {"tier": "gold"}, "amount": 4})
    start(client, "silver-3", {"plan": {"tier": "silver"}, "amount": 3})
    start(client, "flat", {"plan.tier": "gold"})        # a key with a dot is not the path
    start(client, "text-plan", {"plan": "gold"})

    assert found(client, "flow=account&state.plan.tier=gold") == ["gold-3", "gold-4"]
    assert found(client, "flow=account&state.plan.tier=gold&state.amount=3") == ["gold-3"]
    assert found(client, "flow=account&state.plan.tier=silver&state.amount=4") == []
    # Blank filters (an empty input of the page) are no filter.
    assert len(found(client, "flow=account&state.plan.tier=&state.amount=")) == 5
    # With the other filters too.
    assert found(client, "flow=account&state.amount=3&status=waiting&step=step_open") == [
        "gold-3", "silver-3"]
    assert found(client, "flow=account&state.amount=3&q=silver") == ["silver-3"]
    assert found(client, "flow=account&state.amount=3&status=finished") == []


def test_an_undeclared_path_is_refused_naming_the_declared_ones(client):
    message = refused(client, "flow=account&state.email=a@b.c")
    assert message == ("'email' is not a search attribute of flow 'account': it declares "
                       "amount, plan.tier, active, note (a flow names them in its "
                       "search_attributes)")
    assert "flow 'plain': it declares none" in refused(client, "flow=plain&state.amount=3")
    # No flow chosen: what every loaded flow declares, each with the flows declaring it.
    message = refused(client, "state.email=a@b.c")
    assert "any loaded flow: they declare amount (account, ledger); plan.tier (account)" in message
    # A path declared by one of the chosen flows is fine: it searches that flow.
    start(client, "a", {"amount": 3})
    start(client, "l", {"amount": 3}, flow="ledger")
    start(client, "p", {"amount": 3}, flow="plain")
    assert found(client, "flow=account&flow=plain&state.amount=3") == ["a"]
    assert found(client, "state.amount=3") == ["a", "l"]
    assert found(client, "state.plan.tier=x") == []


def test_the_step_filter_is_repeatable_and_refuses_a_step_of_no_chosen_flow(client):
    start(client, "open", {})
    start(client, "closed", {})
    client.post("/api/workflows/closed/events", json={"name": "close"})
    start(client, "l", {}, flow="ledger")
    assert found(client, "flow=account&step=step_open") == ["open"]
    assert found(client, "flow=account&step=step_closed") == ["closed"]
    assert found(client, "step=step_open&step=step_closed") == ["closed", "open"]
    assert found(client, "step=step_wait") == ["l"]
    assert refused(client, "flow=account&step=step_wait") == (
        "'step_wait' is not a step of flow 'account' (steps: step_open, step_closed)")
    assert refused(client, "flow=account&flow=ledger&step=nope") == (
        "'nope' is not a step of any of the flows account, ledger (steps: step_open, "
        "step_closed, step_wait)")
    assert "'nope' is not a step of any loaded flow" in refused(client, "step=nope")


def test_pages_under_a_filter_follow_cursors_newest_first(client, clock):
    for n in range(7):
        start(client, f"m{n}", {"amount": 3})
        start(client, f"x{n}", {"amount": 4})
        clock.advance(1)
    send(client, "m2", {"note": "touched"})       # updated last: first in the list
    seen, cursor = [], None
    while True:
        query = "flow=account&state.amount=3&limit=3" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(f"/api/workflows?{query}").json
        assert len(answer["items"]) <= 3
        seen += [item["id"] for item in answer["items"]]
        cursor = answer["next_cursor"]
        if not cursor:
            break
    assert seen == ["m2", "m6", "m5", "m4", "m3", "m1", "m0"]
    assert client.get("/api/workflows?state.amount=3&flow=account&cursor=nope").status_code == 422


def test_hostile_values_match_exactly(client):
    long = "x" * 5000 + "-end"
    values = {"long": long, "long-other": "x" * 5000 + "-END", "uni": "Zoë 🎉 名前 \u200b",
              "pct": "50%", "pct-more": "50% off", "under": "a_c", "abc": "abc",
              "quote": 'say "hi" \\ there', "spaces": "  padded  "}
    for id, note in values.items():
        start(client, id, {"note": note})
    for id, note in values.items():
        response = client.get("/api/workflows", query_string={"flow": "account",
                                                              "state.note": note})
        assert [i["id"] for i in response.json["items"]] == [id], note
    assert found(client, "flow=account&state.note=50%25") == ["pct"]      # % is no wildcard
    assert found(client, "flow=account&state.note=a_c") == ["under"]      # nor is _
    assert found(client, "flow=account&state.note=%25") == []
    assert found(client, "flow=account&state.note=_") == []
    # A NUL or a lone surrogate cannot be a filter (nor stored): a clear 422.
    assert client.get("/api/workflows?flow=account&state.note=%00").status_code == 422
    # Every database holds the long text's key in its index: a digest, not the text.
    keys = [row.value for row in store_rows(client.application)]
    assert all(key is None or len(key) <= 190 for key in keys)


def store_rows(app):
    with app.app_context():
        return db.session.execute(select(ATTR)).all()


def test_the_index_follows_the_latest_commit(client):
    start(client, "w", {"amount": 3, "plan": {"tier": "gold"}})
    assert found(client, "flow=account&state.amount=3") == ["w"]
    send(client, "w", {"amount": 4})
    assert found(client, "flow=account&state.amount=3") == []
    assert found(client, "flow=account&state.amount=4") == ["w"]
    send(client, "w", {"amount": {"no": "longer a number"}})     # not searchable any more
    assert found(client, "flow=account&state.amount=4") == []
    send(client, "w", {"plan": {"tier": "silver"}, "amount": True})
    assert found(client, "flow=account&state.plan.tier=silver&state.amount=true") == ["w"]
    client.post("/api/workflows/w/events", json={"name": "close"})   # it finishes
    assert found(client, "flow=account&state.amount=true&status=finished") == ["w"]
    item = client.get("/api/workflows?flow=account").json["items"][0]
    assert item["attributes"] == {"amount": True, "plan.tier": "silver", "active": None,
                                  "note": None}
    # One row per declared path, whatever happened.
    assert sorted(r.path for r in store_rows(client.application)) == sorted(
        ["amount", "plan.tier", "active", "note"])


def attr_counts(app, state: dict, flows=()) -> tuple[dict, dict]:
    """The list's status counts under one search-attribute filter (on SQLite looked up in
    workflow_attr_count), and the same counted from the attribute rows themselves."""
    from sqlalchemy import func

    from webapp import runtime
    from webapp.runtime.rules import search_key

    with app.app_context():
        [(path, value)] = state.items()
        shown = runtime.status_counts(flows=flows, state=state)
        stmt = select(ATTR.c.status, func.count()).where(
            ATTR.c.path == path, ATTR.c.value == search_key(value))
        if flows:
            stmt = stmt.where(ATTR.c.flow.in_(flows))
        return shown, dict(db.session.execute(stmt.group_by(ATTR.c.status)).all())


def test_status_counts_under_one_attribute_follow_every_change(make_app, any_db_url, client,
                                                               monkeypatch):
    """On SQLite triggers keep them (a lookup, however many workflows hold the value); on
    both, they equal a count of the attribute rows after starts, changed values, status
    changes, cancels, imports, and a flow that stops declaring the path."""
    app = client.application
    for id, amount in (("a1", 3), ("a2", 3), ("a3", 3), ("a4", 4)):
        start(client, id, {"amount": amount})
    start(client, "l1", {"amount": 3}, flow="ledger")
    send(client, "a2", {"amount": 4})                                   # 3 -> 4
    send(client, "a3", {"amount": {"not": "searchable"}})                # 3 -> nothing
    client.post("/api/workflows/a1/events", json={"name": "close"})     # waiting -> finished
    assert client.post("/api/workflows/a4/cancel", json={}).status_code == 200
    with app.app_context():
        from webapp import runtime
        runtime.import_snapshots([["imported", {
            "step": "step_open", "state": {"amount": 3}, "cache": {"_seq": 0}, "system": {},
            "logs": [], "status": "running"}]], "account")
    assert attr_counts(app, {"amount": 3}) == ({"finished": 1, "waiting": 1, "running": 1},) * 2
    assert attr_counts(app, {"amount": 3}, ["account"]) == ({"finished": 1, "running": 1},) * 2
    assert attr_counts(app, {"amount": 4}) == ({"waiting": 1, "cancelled": 1},) * 2
    page = client.get("/workflows?flow=account&state.amount=4").get_data(as_text=True)
    assert "… all 2 matching" in page and 'data-id="a2"' in page      # a2 and a4, as counted
    if any_db_url.startswith("sqlite"):
        with app.app_context():            # the lookup: one row per value and status
            kept = db.session.execute(select(store.ATTR_COUNT).where(
                store.ATTR_COUNT.c.path == "amount", store.ATTR_COUNT.c.n > 0)).all()
        assert sorted((r.flow, r.value, r.status, r.n) for r in kept) == [
            ("account", "3", "finished", 1), ("account", "3", "running", 1),
            ("account", "4", "cancelled", 1), ("account", "4", "waiting", 1),
            ("ledger", "3", "waiting", 1)]
        # A database made before workflow_attr_count: made and counted once at start.
        with app.app_context():
            for name in store._ATTR_COUNT_TRIGGERS:
                db.session.execute(text(f"DROP TRIGGER {name}"))
            db.session.execute(store.ATTR_COUNT.delete())
            db.session.commit()
        again = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
        assert attr_counts(again, {"amount": 3}) == (
            {"finished": 1, "waiting": 1, "running": 1},) * 2
    import search_flows
    monkeypatch.setattr(search_flows.Account, "search_attributes", ("note",))
    changed = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)         # account's rows reindexed
    assert attr_counts(changed, {"amount": 3}) == ({"waiting": 1}, {"waiting": 1})   # ledger


def test_list_items_carry_their_flows_attributes(client):
    start(client, "a", {"amount": 3, "plan": {"tier": "gold"}})
    start(client, "p", {"amount": 3}, flow="plain")
    items = {i["id"]: i for i in client.get("/api/workflows").json["items"]}
    assert items["a"]["attributes"] == {"amount": 3, "plan.tier": "gold", "active": None,
                                        "note": None}
    assert items["p"]["attributes"] == {}


def test_imports_and_forks_are_indexed(client):
    snapshot = {"step": "step_open", "state": {"amount": 77}, "cache": {"_seq": 0},
                "system": {}, "logs": [], "status": "running"}
    response = client.post("/api/workflows", json={"flow": "account", "id": "seed",
                                                   "state": {"amount": 5}})
    assert response.status_code == 201
    with client.application.app_context():
        from webapp import runtime
        runtime.import_snapshots([["imported", snapshot]], "account")
    assert found(client, "flow=account&state.amount=77") == ["imported"]
    forked = client.post("/api/workflows/seed/fork", json={"seq": 0, "id": "forked",
                                                           "state": {"amount": 88}})
    assert forked.status_code == 201, forked.json
    assert found(client, "flow=account&state.amount=88") == ["forked"]
    assert found(client, "flow=account&state.amount=5") == ["seed"]


def test_scheduled_workflows_are_indexed_when_they_fire(client, clock):
    response = client.post("/api/schedules", json={
        "id": "nightly", "flow": "account", "cron": "* * * * *", "state": {"amount": 9}})
    assert response.status_code == 201, response.json
    clock.advance(120)
    with client.application.app_context():
        from webapp import runtime
        assert runtime.current().fire_due_schedules() >= 1
    # Fired (inserted), not yet run: already found.
    [item] = client.get("/api/workflows?flow=account&state.amount=9").json["items"]
    assert item["id"].startswith("nightly@") and item["status"] == "running"


def test_an_existing_database_is_indexed_at_start(make_app, any_db_url):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    client = app.test_client()
    start(client, "old", {"amount": 3})
    start(client, "older", {"amount": 3}, flow="ledger")
    with app.app_context():     # as a database of schema 2 was: no attribute rows, no marks
        db.session.execute(delete(ATTR))
        db.session.execute(delete(ATTR_INDEX))
        db.session.execute(update(Meta).where(Meta.key == "schema_version").values(value="2"))
        db.session.commit()
    assert found(client, "flow=account&state.amount=3") == []
    again = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS).test_client()
    assert found(again, "state.amount=3") == ["old", "older"]
    with again.application.app_context():
        assert db.session.execute(select(Meta.value).where(
            Meta.key == "schema_version")).scalar() == str(store.SCHEMA_VERSION)


def test_a_flow_that_changes_its_attributes_is_indexed_again(make_app, any_db_url,
                                                            monkeypatch):
    import search_flows

    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    start(app.test_client(), "w", {"amount": 3, "note": "n"})
    monkeypatch.setattr(search_flows.Account, "search_attributes", ("note",))
    client = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS).test_client()
    assert found(client, "flow=account&state.note=n") == ["w"]
    assert "it declares note" in refused(client, "flow=account&state.amount=3")
    assert [r.path for r in store_rows(client.application)] == ["note"]


def test_reindex_command_indexes_rows_written_elsewhere(make_app, any_db_url, monkeypatch):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    client = app.test_client()
    start(client, "w", {"amount": 3})
    with app.app_context():        # a row changed by hand: the index does not know
        record = store.Store(db.session).load("w")
        db.session.execute(update(store.WORKFLOW).where(store.WORKFLOW.c.id == "w").values(
            state=json.dumps({"amount": 5}), version=record.version + 1))
        db.session.commit()
    assert found(client, "flow=account&state.amount=5") == []
    monkeypatch.setenv("TINYFLOW_DATABASE_URL", any_db_url)
    monkeypatch.setenv("TINYFLOW_FLOWS", "search_flows")
    result = app.test_cli_runner().invoke(main, ["reindex", "--flow", "account"])
    assert result.exit_code == 0, result.output
    assert "account: 1 workflow(s) indexed by amount, plan.tier, active, note" in result.output
    assert found(client, "flow=account&state.amount=5") == ["w"]
    result = app.test_cli_runner().invoke(main, ["reindex", "--flow", "nope"])
    assert result.exit_code == 2 and "no flow named 'nope'" in result.output


def test_cli_list_filters_by_step_and_state(app, monkeypatch, any_db_url):
    client = app.test_client()
    start(client, "a3", {"amount": 3, "note": "hello"})
    start(client, "a4", {"amount": 4})
    monkeypatch.setenv("TINYFLOW_DATABASE_URL", any_db_url)
    monkeypatch.setenv("TINYFLOW_FLOWS", "search_flows")
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["list", "--flow", "account", "--state", "amount=3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:8] == ["ID", "FLOW", "STATUS", "STEP", "amount", "plan.tier",
                                    "active", "note"]
    assert [line.split()[0] for line in lines[1:]] == ["a3"]
    assert "hello" in lines[1]
    result = runner.invoke(main, ["list", "--state", "nope=3"])
    assert result.exit_code == 2 and "'nope' is not a search attribute" in result.output
    result = runner.invoke(main, ["list", "--state", "amount"])
    assert result.exit_code == 2 and "--state takes PATH=VALUE" in result.output
    result = runner.invoke(main, ["list", "--flow", "account", "--step", "step_closed"])
    assert result.exit_code == 0 and len(result.output.splitlines()) == 1


def test_the_runtime_object_filters_with_python_values(tmp_path):
    rt = Runtime(f"sqlite:///{tmp_path / 'rt.sqlite'}", flows=FLOWS, clock=lambda: 1.7e9)
    rt.start("account", {"amount": 3}, id="n")
    rt.start("account", {"amount": "3"}, id="t")
    assert [i["id"] for i in rt.list(flow="account", state={"amount": 3})["items"]] == ["n"]
    assert [i["id"] for i in rt.list(state={"amount": "3"})["items"]] == ["t"]
    assert rt.list(state={"amount": 3})["items"][0]["attributes"]["amount"] == 3
    with pytest.raises(Exception) as error:
        rt.list(flow="account", state={"nope": 1})
    assert error.value.status == 422


def test_example_flows_declare_what_a_user_searches_by(make_app):
    client = make_app().test_client()        # the examples, as served
    flows = {f["name"]: f for f in client.get("/api/flows").json}
    assert set(flows) >= {"user_onboarding", "guess_game", "guess_game_2", "interval_payment"}
    client.post("/api/workflows", json={"flow": "user_onboarding", "id": "info",
                                        "state": {"userEmail": "info@company.com"}})
    client.post("/api/workflows", json={"flow": "user_onboarding", "id": "other",
                                        "state": {"userEmail": "other@company.com"}})
    [item] = client.get("/api/workflows?flow=user_onboarding&state.userEmail=info@company.com"
                        ).json["items"]
    assert item["id"] == "info" and item["attributes"] == {"userEmail": "info@company.com"}
    client.post("/api/workflows", json={"flow": "guess_game_2", "id": "g",
                                        "state": {}})
    number = client.get("/api/workflows/g").json["state"]["number"]
    for guess in (number + 1 if number < 100 else number - 1, number):
        client.post("/api/workflows/g/events", json={"name": "event_ask", "payload": guess})
    assert found(client, "flow=guess_game_2&state.rounds=2") == ["g"]
    client.post("/api/workflows", json={"flow": "interval_payment", "id": "bill"})
    assert found(client, "state.status=active") == ["bill"]
    client.post("/api/workflows/bill/events", json={"name": "cancel"})
    assert found(client, "flow=interval_payment&state.status=cancel") == ["bill"]


@pytest.mark.parametrize("declared, why", [
    ("userEmail", "must be a tuple of dotted paths"),
    (("a..b",), "is not a dotted path"),
    (("",), "is not a dotted path"),
    ((" a",), "is not a dotted path"),
    ((3,), "is not a dotted path"),
    (("x" * 201,), "is not a dotted path"),
    (("a", "a"), "names a path twice"),
])
def test_search_attributes_are_checked_when_the_flow_is_defined(declared, why):
    with pytest.raises(FlowDefinitionError, match=why):
        type("Bad", (Workflow,), {"search_attributes": declared,
                                  "step_a": step(lambda self: None)})


# -- the list page ----------------------------------------------------------------------------

def test_the_page_shows_attribute_columns_for_one_flow_and_filters_by_them(client):
    start(client, "gold", {"plan": {"tier": "gold"}, "amount": 3, "note": "Zoë"})
    start(client, "silver", {"plan": {"tier": "silver"}, "amount": 3})
    start(client, "l", {"amount": 3}, flow="ledger")
    page = client.get("/workflows?flow=account&state.plan.tier=gold")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r'<th scope="col" class="col-attr" data-path="([^"]+)"', html) == [
        "amount", "plan.tier", "active", "note"]
    assert re.findall(r'data-id="([^"]+)"', html) == ["gold"]
    assert '<td class="col-attr" data-label="note" data-path="note">Zoë</td>' in html
    # An input per declared path, holding the filter given (the form works without JS).
    assert 'name="state.plan.tier" value="gold"' in html
    assert 'name="state.amount" value=""' in html
    assert 'id="filter-step"' in html and 'name="step" value="step_open"' in html
    # Links keep the search filters (counts, pages).
    assert 'href="/workflows?status=waiting&amp;flow=account&amp;state.plan.tier=gold"' in html
    # Two flows or none chosen: no columns (their attributes differ), inputs for all declared.
    for query in ("flow=account&flow=ledger", ""):
        html = client.get(f"/workflows?{query}").get_data(as_text=True)
        assert 'class="col-attr"' not in html
        assert 'name="state.amount"' in html
    html = client.get("/workflows?state.amount=3").get_data(as_text=True)
    assert sorted(re.findall(r'data-id="([^"]+)"', html)) == ["gold", "l", "silver"]


def test_a_refused_filter_re_renders_the_page_with_the_message(client):
    start(client, "a", {"amount": 3})
    page = client.get("/workflows?flow=account&state.email=x@y.z&step=step_open")
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "&#39;email&#39; is not a search attribute of flow &#39;account&#39;" in html
    assert 'name="state.email" value="x@y.z" autocomplete="off" spellcheck="false" ' \
           'aria-invalid="true"' in html
    assert 'data-id="a"' not in html
    page = client.get("/workflows?flow=account&step=nope")
    assert page.status_code == 422
    assert "&#39;nope&#39; is not a step of flow &#39;account&#39; (steps: step_open, " \
           "step_closed)" in page.get_data(as_text=True)
    assert 'name="step" value="nope" checked' in page.get_data(as_text=True)
    # With htmx: the results block with the message, and the flow-dependent filters (OOB).
    part = client.get("/workflows?flow=account&step=nope", headers={"HX-Request": "true"})
    assert part.status_code == 422
    text = part.get_data(as_text=True)
    assert text.startswith('<section id="workflow-results"') and 'id="filter-error"' in text
    assert '<div id="filter-more" class="filter-more" hx-swap-oob="true">' in text
    # A poll (v=...) redraws the rows only.
    poll = client.get("/workflows?flow=account&v=x", headers={"HX-Request": "true"})
    assert "hx-swap-oob" not in poll.get_data(as_text=True)
