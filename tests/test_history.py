"""History (issue 15): the state each step visit began with, recorded in the job's own
commits; the diff between visits; fork from any visit; history off; imported snapshots."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from webapp import store
from webapp.cli import CLI_FLOWS
from webapp.runtime import Settings
from webapp.runtime.visits import diff
from webapp.store import VISIT, db

FLOWS = {"TINYFLOW_FLOWS": [*CLI_FLOWS, "history_flows"]}

CHANGING = [
    ("step_one", {}),
    ("step_two", {"n": 1, "profile": {"name": "Ada", "tags": ["a"]}}),
    ("step_three", {"n": 2, "profile": {"name": "Grace", "tags": ["a"]}, "temp": True}),
    ("step_four", {"n": 3, "profile": {"name": "Grace", "tags": ["a", "b"],
                                       "address": {"city": "Paris"}}}),
    ("step_same", {"n": 4, "profile": {"name": "Grace", "tags": ["a", "b"]}, "done": "yes"}),
    ("step_end", {"n": 4, "profile": {"name": "Grace", "tags": ["a", "b"]}, "done": "yes"}),
]


@pytest.fixture
def app(make_app):
    return make_app(**FLOWS)


def start(client, flow, id, state=None):
    response = client.post("/api/workflows", json={"flow": flow, "id": id,
                                                   **({"state": state} if state else {})})
    assert response.status_code == 201, response.json
    return response.json


def history(client, id, **args):
    response = client.get(f"/api/workflows/{id}/history", query_string=args)
    assert response.status_code == 200, response.json
    return response.json


def fork(client, wf_id, **body):
    return client.post(f"/api/workflows/{wf_id}/fork", json=body)


def visit_rows(app, id):
    with app.app_context():
        return db.session.execute(select(VISIT).where(VISIT.c.workflow_id == id)
                                  .order_by(VISIT.c.seq)).all()


# --- history ---------------------------------------------------------------------------------

def test_history_gives_each_visits_state_exactly(make_app, any_db_url):
    client = make_app(any_db_url, **FLOWS).test_client()
    start(client, "changing", "c1")
    found = history(client, "c1")
    assert found["next_cursor"] is None and found["recording"] is True
    assert [(i["seq"], i["step"], i["state"]) for i in found["items"]] == [
        (seq, step, state) for seq, (step, state) in enumerate(CHANGING)]
    assert all(i["state_known"] and i["at"].endswith("Z") for i in found["items"])
    # each visit points at the audit-log entry that began it: init, then the transitions
    entries = client.get("/api/workflows/c1/logs").json["items"]
    began = {e["n"]: e for e in entries}
    assert began[found["items"][0]["log_n"]]["type"] == "init"
    for item in found["items"][1:]:
        entry = began[item["log_n"]]
        assert entry["type"] == "transition" and entry["values"]["stepSeq"] == item["seq"]


def test_a_state_is_stored_only_when_it_changed(app):
    client = app.test_client()
    start(client, "changing", "c1")
    rows = visit_rows(app, "c1")
    assert [r.seq for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r.state_json is None for r in rows] == [False] * 5 + [True]   # step_end: as before
    # ... and the next job (an event) carries on from the stored one
    start(client, "guess_game_2", "g")
    number = client.get("/api/workflows/g").json["state"]["number"]
    client.post("/api/workflows/g/events", json={"name": "event_ask", "payload": number})
    rows = visit_rows(app, "g")
    assert [r.step for r in rows] == ["step_begin", "step_ask", "step_check", "step_end"]
    assert rows[3].state_json is None        # step_check changed nothing on the right guess
    assert history(client, "g")["items"][3]["state"] == history(client, "g")["items"][2]["state"]


def test_visits_are_written_by_the_commits_the_job_makes_anyway(make_app, monkeypatch):
    calls = []
    write = store.Store.write

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("visits"))
        return write(self, *args, **kwargs)
    monkeypatch.setattr(store.Store, "write", counted)
    for on in (True, False):
        calls.clear()
        client = make_app(TINYFLOW_HISTORY=on, **FLOWS).test_client()
        start(client, "simple", f"s-{on}")
        assert len(calls) == 2                    # as before: the id's claim, then the end
        assert sum(len(v or ()) for v in calls) == (3 if on else 0)


def test_history_pages_with_a_cursor(app):
    client = app.test_client()
    start(client, "looping", "l", {"n": 150})
    seen, cursor = [], None
    while True:
        page = history(client, "l", limit=40, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i["seq"] for i in seen] == list(range(299))
    for item in seen:
        j = item["seq"] // 2
        expected = ({"n": 150, "i": j, "b": j} if item["seq"] % 2 == 0
                    else {"n": 150, "i": j + 1, "b": j})
        expected = {k: v for k, v in expected.items() if v or k == "n"}
        assert item["state"] == expected, item
    assert client.get("/api/workflows/l/history?cursor=nope").status_code == 422
    assert client.get("/api/workflows/l/history?limit=0").status_code == 422
    assert client.get("/api/workflows/nobody/history").status_code == 404


def test_diff_names_added_removed_and_changed_keys_nested():
    old = {"n": 2, "temp": True, "profile": {"name": "Grace", "tags": ["a"]}, "flag": 1}
    new = {"n": 3, "profile": {"name": "Grace", "tags": ["a", "b"], "address": {"c": 1}},
           "flag": True}
    assert diff(old, new) == [
        {"path": ["temp"], "change": "removed", "old": True},
        {"path": ["n"], "change": "changed", "old": 2, "new": 3},
        {"path": ["profile", "tags"], "change": "changed", "old": ["a"], "new": ["a", "b"]},
        {"path": ["profile", "address"], "change": "added", "new": {"c": 1}},
        {"path": ["flag"], "change": "changed", "old": 1, "new": True},
    ]
    assert diff(new, new) == []


def test_one_visit_answers_with_the_diff_against_the_one_before(client):
    start(client, "changing", "c1")
    visit = client.get("/api/workflows/c1/history/3").json
    assert visit["step"] == "step_four" and visit["previous"]["seq"] == 2
    assert {(tuple(c["path"]), c["change"]) for c in visit["diff"]} == {
        (("temp",), "removed"), (("n",), "changed"), (("profile", "tags"), "changed"),
        (("profile", "address"), "added")}
    assert client.get("/api/workflows/c1/history/0").json["previous"] is None
    assert client.get("/api/workflows/c1/history/5").json["diff"] == []
    assert client.get("/api/workflows/c1/history/5").json["current"] is True
    assert client.get("/api/workflows/c1/history/99").status_code == 404


# --- fork ------------------------------------------------------------------------------------

def play_three_rounds(client, id):
    start(client, "guess_game_2", id)
    number = client.get(f"/api/workflows/{id}").json["state"]["number"]
    wrong = number + 1 if number < 100 else number - 1
    for guess in (wrong, wrong, number):
        client.post(f"/api/workflows/{id}/events", json={"name": "event_ask",
                                                         "payload": guess})
    return number


def test_fork_from_each_visit_of_a_revisiting_flow(client):
    play_three_rounds(client, "g")
    before = client.get("/api/workflows/g/snapshot").json
    visits = history(client, "g")["items"]
    assert [v["step"] for v in visits] == ["step_begin", "step_ask", "step_check", "step_ask",
                                           "step_check", "step_ask", "step_check", "step_end"]
    for visit in visits:
        k = visit["seq"]
        response = fork(client, "g", seq=k, id=f"f{k}")
        assert response.status_code == 201, response.json
        assert response.headers["Location"].endswith(f"/api/workflows/f{k}")
        first = history(client, f"f{k}")["items"]
        assert (first[0]["seq"], first[0]["step"], first[0]["state"]) == (
            k, visit["step"], visit["state"])
        assert first[0]["forked_from"] == "g" and first[0]["forked_seq"] == k
        log = client.get(f"/api/workflows/f{k}/logs").json["items"]
        assert (log[0]["n"], log[0]["type"], log[0]["values"]) == (
            1, "forked", {"from": "g", "seq": k})
        answer = response.json
        if visit["step"] in ("step_ask", "step_end"):     # waits at once: there it stays
            assert (answer["step"], answer["state"], answer["status"]) == (
                visit["step"], visit["state"], "waiting")
        elif visit["step"] == "step_check":               # the same state: the same way on
            assert first[1]["step"] == visits[k + 1]["step"]
            assert first[1]["state"] == visits[k + 1]["state"]
        else:                                             # its action ran again
            assert first[1]["step"] == "step_ask" and "number" in first[1]["state"]
    assert client.get("/api/workflows/g/snapshot").json == before
    assert [f["id"] for f in client.get("/api/workflows/g/forks").json["forks"]] == [
        f"f{v['seq']}" for v in visits]
    assert client.get("/api/workflows/f3/forks").json["origin"] == {"id": "g", "seq": 3}


def test_a_fork_continues_like_any_workflow(client):
    number = play_three_rounds(client, "g")
    assert fork(client, "g", seq=3, id="f").status_code == 201
    answer = client.post("/api/workflows/f/events",
                         json={"name": "event_ask", "payload": number}).json
    assert answer["step"] == "step_end" and answer["state"]["answer"][-1] == number
    assert [v["seq"] for v in history(client, "f")["items"]] == [3, 4, 5]


def test_fork_of_a_failed_workflow_from_before_the_failure(client):
    failed = start(client, "failing", "o", {"broken": True, "amount": 5})
    before = client.get("/api/workflows/o/snapshot").json
    assert failed["status"] == "failed" and failed["step"] == "step_charge"
    visits = history(client, "o")["items"]
    assert [(v["step"], v["state"]) for v in visits] == [
        ("step_prepare", {"broken": True, "amount": 5}),
        ("step_charge", {"broken": True, "amount": 5, "prepared": True})]
    again = fork(client, "o", seq=1, id="again").json          # the action runs again: fails
    assert again["status"] == "failed" and again["error"]["step"] == "step_charge"
    fixed = fork(client, "o", seq=1, id="fixed",
                 state={"broken": False, "amount": 5, "prepared": True})
    assert fixed.status_code == 201
    assert fixed.json["status"] == "finished"
    assert fixed.json["state"]["receipt"] == {"charged": 5}
    assert client.get("/api/workflows/o/snapshot").json == before     # untouched


def test_fork_refuses_what_it_cannot_do(client):
    start(client, "changing", "c1")
    assert fork(client, "c1", seq=6).status_code == 404          # no such visit
    assert fork(client, "c1", seq=99).json["error"]["code"] == "not_found"
    assert fork(client, "nobody", seq=0).status_code == 404
    for bad in ({"seq": "1"}, {"seq": -1}, {"seq": True}, {}, {"seq": 1, "state": []},
                {"seq": 1, "colour": "red"}):
        assert client.post("/api/workflows/c1/fork", json=bad).status_code == 422, bad
    assert fork(client, "c1", seq=1, id="c1").status_code == 409   # the id is taken


def test_history_off_in_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("TINYFLOW_HISTORY", "off")
    assert Settings.load()["TINYFLOW_HISTORY"] is False
    app = make_app(**FLOWS)
    assert app.config["TINYFLOW_HISTORY"] is False
    client = app.test_client()
    start(client, "changing", "c1")
    found = history(client, "c1")
    assert found == {"items": [], "next_cursor": None, "recording": False}
    refused = fork(client, "c1", seq=1)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "history_off"
    assert "current visit (5) only" in refused.json["error"]["message"]
    assert fork(client, "c1", seq=9).status_code == 404
    current = fork(client, "c1", seq=5, id="f")
    assert current.status_code == 201
    assert (current.json["step"], current.json["state"]) == ("step_end", CHANGING[5][1])
    assert client.get("/api/workflows/c1/forks").json["forks"][0]["id"] == "f"
    monkeypatch.setenv("TINYFLOW_HISTORY", "1")
    assert Settings.load()["TINYFLOW_HISTORY"] is True


def test_an_imported_snapshot_lists_its_visits_with_states_unknown(app):
    client = app.test_client()
    play_three_rounds(client, "g")
    client.post("/api/workflows/g/events", json={"name": "event_congratulation"})
    start(client, "guess_game_2", "w")
    number = client.get("/api/workflows/w").json["state"]["number"]
    client.post("/api/workflows/w/events", json={"name": "event_ask", "payload": number + 1})
    snaps = [[id, client.get(f"/api/workflows/{id}/snapshot").json] for id in ("g", "w")]
    for pair in snaps:
        pair[0] = "imported-" + pair[0]
    rt = app.extensions["tinyflow"]
    assert rt.import_snapshots(snaps) == ["imported-g", "imported-w"]
    found = history(client, "imported-g")["items"]
    assert [v["step"] for v in found] == [v["step"] for v in history(client, "g")["items"]]
    assert all(v["state"] is None and v["state_known"] is False for v in found)
    refused = fork(client, "imported-w", seq=1)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "state_unknown"
    current = fork(client, "imported-w", seq=3, id="from-now")      # its current visit
    assert current.status_code == 201
    assert current.json["state"] == client.get("/api/workflows/imported-w").json["state"]
    assert current.json["step"] == "step_ask"
    given = fork(client, "imported-w", seq=1, id="given", state={"number": 7, "hint": "?"})
    assert given.status_code == 201 and given.json["state"]["number"] == 7
    # once it runs on here, its new visits are recorded
    client.post("/api/workflows/imported-w/events", json={"name": "event_ask",
                                                           "payload": number})
    items = history(client, "imported-w")["items"]
    assert items[-1]["step"] == "step_end" and items[-1]["state"]["answer"][-1] == number


def test_a_visit_that_a_row_holds_already_is_replaced_not_a_failed_commit(app):
    client = app.test_client()
    start(client, "guess_game_2", "g")
    snap = client.get("/api/workflows/g/snapshot").json
    # the log says visit 2 happened already (a hand-edited or odd snapshot)
    snap["logs"].append({"type": "transition", "values": {"from": "step_ask", "to": "step_end",
                                                          "stepSeq": 2},
                         "_at": snap["logs"][-1]["_at"], "_step": "step_end"})
    app.extensions["tinyflow"].import_snapshots([["odd", snap]])
    assert [v["seq"] for v in history(client, "odd")["items"]] == [0, 1, 2]
    answer = client.post("/api/workflows/odd/events", json={"name": "event_ask",
                                                            "payload": -1})
    assert answer.status_code == 200 and "note" not in answer.json
    items = history(client, "odd")["items"]
    assert items[2]["step"] == "step_check" and items[2]["state"]["answer"] == [-1]
