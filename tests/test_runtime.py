"""The runtime API on SQLite and PostgreSQL: start, events, waits, timers, cancel, retry,
reading and listing, all through real databases."""
import json
import threading

import pytest
import runtime_flows
from sqlalchemy import event, update

from webapp import runtime, store
from webapp.runtime import answers
from webapp.store import db

FLOWS = {"TINYFLOW_FLOWS": ["flows", "runtime_flows"]}


@pytest.fixture
def rt(make_app, any_db_url):
    """An app context on each database, with the example and the test flows."""
    app = make_app(any_db_url, **FLOWS)
    with app.app_context():
        yield app


@pytest.fixture
def commits(rt):
    """The commits made, counted by SQLAlchemy's engine event."""
    seen = []
    def listener(conn):
        seen.append(1)
    event.listen(db.engine, "commit", listener)
    yield seen
    event.remove(db.engine, "commit", listener)


def test_an_action_result_is_committed_before_the_next_action_runs(rt, commits):
    runtime_flows.STORED_CACHES.clear()
    row = runtime.start("two_actions")
    # what another connection read while each action ran: the first result was stored
    # before the second action started
    # (the row itself was inserted, its id claimed, before the first action ran)
    assert runtime_flows.STORED_CACHES == [[[]], [["0:only:first"]]]
    assert len(commits) == 3                  # the claim, that result, then the end
    assert runtime.get(row.id).status == "finished"


def log_types(id):
    return [e["type"] for e in runtime.all_logs(id)]


def row_state(id):
    return json.loads(runtime.get(id).state)


# -- start --------------------------------------------------------------------------------------

def test_simple_flow_runs_to_the_end_in_two_commits(rt, commits):
    row = runtime.start("simple")
    # the INSERT that claims the id before its action runs; the result and the end together
    assert len(commits) == 2
    wf = runtime.describe(runtime.get(row.id))
    assert wf["status"] == "finished"
    assert wf["state"] == {"startHit": True, "computed": 3.141592653589793, "endHit": True}
    assert wf["wake_at"] is None and wf["pending"] == [] and wf["error"] is None
    assert log_types(row.id) == ["init", "start_hit", "transition", "cache", "computed_hit",
                                 "transition", "end_hit", "finished"]
    assert wf["log_count"] == 8
    assert runtime.describe(row) == wf     # the row start() returns is the stored one


def test_start_keeps_the_given_id_and_state_and_answers_iso_times(rt, clock):
    row = runtime.start("user_onboarding", {"userEmail": "a@example.com"}, id="user-1")
    wf = runtime.describe(row)
    assert wf["id"] == "user-1" and wf["status"] == "waiting" and wf["step"] == "step_process"
    assert wf["state"]["userEmail"] == "a@example.com"
    assert wf["created_at"] == "2024-08-18T14:35:33.500Z"
    [timer] = wf["pending"]
    assert timer["type"] == "timer" and timer["key"] == "wait_before_promotion_email"
    due = timer["resumeAfter"] / 1000
    assert wf["wake_at"] == answers.iso(round(due * 1000))
    assert runtime.get("user-1").wake_at == timer["resumeAfter"]


@pytest.mark.parametrize("call, error", [
    (lambda: runtime.start("no_such_flow"), runtime.NotFound),
    (lambda: runtime.start("simple", state=[1, 2]), runtime.Invalid),
    (lambda: runtime.start("simple", state={"x": object()}), runtime.Invalid),
    (lambda: runtime.start("simple", id=""), runtime.Invalid),
    (lambda: runtime.start("simple", id="x" * 201), runtime.Invalid),
])
def test_start_refuses_bad_input(rt, call, error):
    with pytest.raises(error):
        call()
    assert runtime.status_counts() == {}


def test_start_refuses_a_taken_id(rt):
    runtime.start("simple", id="one")
    with pytest.raises(runtime.Conflict, match="already exists"):
        runtime.start("guess_game", id="one")
    assert runtime.get("one").flow == "simple"


# -- events, waits and timers -------------------------------------------------------------------

def test_events_play_a_guess_game_to_its_end(rt):
    runtime.start("guess_game_2", id="g")
    number = row_state("g")["number"]
    runtime.send("g", "event_ask", number + 1 if number < 100 else number - 1)
    wf = runtime.describe(runtime.send("g", "event_ask", number))
    assert wf["step"] == "step_end" and wf["status"] == "waiting"
    [wait] = wf["pending"]
    assert "Congratulation" in wait["requestPayload"]["question"]
    wf = runtime.describe(runtime.resolve("g", wait["resumeId"], None))
    assert wf["status"] == "finished"


def test_an_idempotency_key_delivers_once(rt):
    runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    usage = {"item": "id_1", "amount": 3}
    first = runtime.send("p", "add_usage", usage, idempotency_key="k-1")
    again = runtime.send("p", "add_usage", usage, idempotency_key="k-1")
    assert json.loads(again.state)["currentUsages"] == [usage]
    assert again.version == first.version
    runtime.send("p", "add_usage", usage, idempotency_key="k-2")
    assert row_state("p")["currentUsages"] == [usage, usage]
    assert log_types("p").count("event_received") == 2


def test_a_refused_event_changes_nothing(rt):
    runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    before = runtime.get("p")
    before = (before.version, before.state, before.log_count)
    with pytest.raises(runtime.Invalid, match="add_usage needs"):
        runtime.send("p", "add_usage", {"item": 7})
    after = runtime.get("p")
    assert (after.version, after.state, after.log_count) == before
    assert "event_received" not in log_types("p")


def test_an_event_nobody_waits_for_is_kept_in_the_inbox(rt):
    runtime.start("user_onboarding", {"userEmail": "a@b.c"}, id="u")
    row = runtime.send("u", "later", {"x": 1})
    assert row.status == "waiting"
    assert json.loads(runtime.get("u").inbox)[0]["name"] == "later"
    assert runtime.snapshot("u")["inbox"][0]["payload"] == {"x": 1}


def test_closed_workflows_refuse_events_waits_and_cancel(rt):
    runtime.start("simple", id="done")
    with pytest.raises(runtime.Conflict):
        runtime.send("done", "anything")
    with pytest.raises(runtime.Conflict):
        runtime.resolve("done", "whatever")
    with pytest.raises(runtime.Conflict):
        runtime.cancel("done")
    with pytest.raises(runtime.Conflict):
        runtime.advance("done", 10)
    with pytest.raises(runtime.Conflict):
        runtime.retry("done")


def test_unknown_waits_are_not_found(rt):
    runtime.start("guess_game", id="g")
    [wait] = runtime.describe(runtime.get("g"))["pending"]
    with pytest.raises(runtime.NotFound):
        runtime.resolve("g", "no-such-wait", 1)
    with pytest.raises(runtime.NotFound, match="no open timer"):
        runtime.fire_timer("g", wait["resumeId"])      # an event, not a timer


@pytest.mark.parametrize("call", [
    lambda: runtime.get("missing"),
    lambda: runtime.send("missing", "e"),
    lambda: runtime.resolve("missing", "r"),
    lambda: runtime.fire_timer("missing", "r"),
    lambda: runtime.advance("missing", 1),
    lambda: runtime.cancel("missing"),
    lambda: runtime.retry("missing"),
    lambda: runtime.snapshot("missing"),
    lambda: runtime.logs("missing"),
    lambda: runtime.all_logs("missing"),
])
def test_unknown_workflows_are_not_found(rt, call):
    with pytest.raises(runtime.NotFound):
        call()


def test_fire_timer_runs_the_timer_now(rt):
    runtime.start("user_onboarding", {"userEmail": "a@b.c"}, id="u")
    [timer] = runtime.describe(runtime.get("u"))["pending"]
    wf = runtime.describe(runtime.fire_timer("u", timer["resumeId"]))
    assert [p["key"] for p in wf["pending"]] == ["wait_before_end"]
    assert "waitBeforeEnd" in wf["state"]


def test_advance_moves_a_workflows_clock(rt):
    runtime.start("user_onboarding", {"userEmail": "a@b.c"}, id="u")
    assert runtime.advance("u", 0).status == "waiting"       # nothing due yet
    # The first timer is due within 5 s, the one it sets within 2 s more: advancing 7 s fires
    # both, each at its own due time.
    assert runtime.advance("u", 7).status == "finished"
    with pytest.raises(runtime.Invalid):
        runtime.advance("u", -1)


def test_advance_fires_every_cycle_due_within_the_seconds(rt, clock):
    """A 15-minute billing workflow advanced an hour bills four cycles, each at its own time;
    the next bill is 15 min after the last one on the workflow's clock, which stays an hour
    ahead of the wall clock (so the runner wakes it 15 min from now)."""
    start = clock()
    runtime.start("interval_payment", {"paymentIntervalMs": 900_000}, id="p")
    for cycle in range(4):
        runtime.send("p", "add_usage", {"item": f"coffee-{cycle}", "amount": 1})
        if cycle == 0:
            row = runtime.advance("p", 3600)
    wf = runtime.describe(runtime.get("p"))
    state = wf["state"]
    assert state["_cycle"] == 4
    bills = [e for e in runtime.all_logs("p") if e["type"] == "bill_sent"]
    assert [round(e["_at"] / 1000 - start) for e in bills] == [900]   # only cycle 0 had usage
    fired = [round(e["_at"] / 1000 - start) for e in runtime.all_logs("p")
             if e["type"] == "interrupt_end"]
    assert fired == [900, 1800, 2700, 3600]
    [timer] = wf["pending"]
    assert round(timer["resumeAfter"] / 1000 - start) == 4500        # 15 min after the last
    assert row.wake_at == round((start + 900) * 1000)                 # on the wall clock
    # Usage added afterwards is dated on the workflow's clock (never before the bills).
    last = runtime.all_logs("p")[-1]
    assert last["type"] == "add_usage" and round(last["_at"] / 1000 - start) == 3600
    clock.advance(900)
    assert runtime.run_due() == 1
    receipts = runtime.describe(runtime.get("p"))["state"]["receipts"]
    assert len(receipts) == 2 and round(receipts[-1]["createdAt"] / 1000 - start) == 4500


def test_an_event_deadline_wakes_the_workflow(rt, clock):
    row = runtime.start("deadline", id="d")
    assert row.wake_at == round((clock() + 30) * 1000)
    clock.advance(29)
    assert runtime.run_due() == 0
    clock.advance(1)
    assert runtime.run_due() == 1
    assert row_state("d") == {"timedOut": True}
    assert runtime.get("d").status == "finished"


def test_cancel_closes_the_workflow_in_one_commit(rt, commits):
    runtime.start("guess_game", id="g")
    commits.clear()
    row = runtime.cancel("g", reason="bored")
    assert len(commits) == 1
    assert row.status == "cancelled" and row.wake_at is None
    assert runtime.snapshot("g")["logs"][-1]["values"] == {"reason": "bored"}


def test_retry_runs_the_failed_action_again(rt, tmp_path):
    path = tmp_path / "ok"
    row = runtime.start("flaky", {"path": str(path)}, id="f")
    wf = runtime.describe(row)
    assert wf["status"] == "failed" and wf["error"]["type"] == "FileNotFoundError"
    assert wf["wake_at"] is None
    path.write_text("")
    wf = runtime.describe(runtime.retry("f"))
    assert wf["status"] == "finished" and wf["state"]["result"] == "found"
    assert wf["error"] is None


# -- durability -----------------------------------------------------------------------------------

def test_each_commit_appends_only_the_new_log_entries(rt):
    runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    first = [tuple(r) for r in runtime.current().store.log_rows("p")]
    runtime.send("p", "add_usage", {"item": "i", "amount": 1})
    runtime.advance("p", 11)
    rows = [tuple(r) for r in runtime.current().store.log_rows("p")]
    assert rows[:len(first)] == first                          # never rewritten
    assert [r.n for r in runtime.current().store.log_rows("p")] == list(range(1, len(rows) + 1))
    assert runtime.get("p").log_count == len(rows)


def test_running_a_workflow_never_reads_its_audit_log(rt):
    runtime.start("guess_game_2", id="g")
    statements = []
    def listener(conn, cursor, sql, *args):
        statements.append(sql)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        runtime.send("g", "event_ask", 1)
        runtime.send("g", "event_ask", 2)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert reads and not [s for s in reads if "workflow_log" in s]


def test_a_crash_mid_run_loses_no_committed_action(rt, clock):
    runtime_flows.CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        runtime.start("crashing", id="c")
    row = runtime.get("c")
    assert row.status == "running" and row.lease_owner is not None   # as the crash left it
    assert runtime.run_due() == 0                                     # its lease still holds
    clock.advance(61)                                                 # ... until it expires
    assert runtime.run_due() == 1
    assert runtime_flows.CALLS == {"first": 1, "crash_once": 2}
    assert row_state("c") == {"first": 1, "second": "survived"}
    assert runtime.get("c").status == "finished"


def test_an_event_written_meanwhile_is_redone_not_overwritten(rt, monkeypatch):
    """Two writers load the same version: the second to commit misses the version check,
    reloads and applies its event on top of the first one's."""
    app = rt
    runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    real_engine = runtime.Runtime._engine
    interfered = []

    def engine_then_interfere(self, row):
        wf = real_engine(self, row)
        if not interfered:
            interfered.append(1)

            def other_writer():
                with app.app_context():
                    runtime.send("p", "add_usage", {"item": "other", "amount": 1})
            thread = threading.Thread(target=other_writer)
            thread.start()
            thread.join()
        return wf
    monkeypatch.setattr(runtime.Runtime, "_engine", engine_then_interfere)
    runtime.send("p", "add_usage", {"item": "mine", "amount": 2})
    items = [u["item"] for u in row_state("p")["currentUsages"]]
    assert sorted(items) == ["mine", "other"]
    assert log_types("p").count("add_usage") == 2


def test_a_workflow_leased_by_a_live_runner_makes_callers_wait(rt, clock):
    rt.config["TINYFLOW_BUSY_WAIT"] = 0.2
    runtime.start("guess_game", id="g")
    db.session.execute(update(store.WORKFLOW).where(store.WORKFLOW.c.id == "g").values(
        lease_owner="worker:elsewhere", lease_expires=round((clock() + 60) * 1000)))
    db.session.commit()
    with pytest.raises(runtime.Unavailable, match="worker:elsewhere"):
        runtime.send("g", "event_ask_0", 1)
    clock.advance(61)                                  # that runner died: its lease ran out
    assert runtime.send("g", "event_ask_0", 1).lease_owner is None
    pending = runtime.describe(runtime.get("g"))["pending"]
    assert "event_ask_0" not in [p["key"] for p in pending]


# -- the runner --------------------------------------------------------------------------------

def test_run_due_fires_due_timers_and_skips_leased_rows(rt, clock):
    for i in range(3):
        runtime.start("user_onboarding", {"userEmail": f"u{i}@b.c"}, id=f"u{i}")
    db.session.execute(update(store.WORKFLOW).where(store.WORKFLOW.c.id == "u2").values(
        lease_owner="worker:elsewhere", lease_expires=round((clock() + 600) * 1000)))
    db.session.commit()
    assert runtime.run_due() == 0
    clock.advance(5)
    assert runtime.run_due() == 2
    assert {r.id: r.step for r in runtime.list_workflows()[0]}["u2"] == "step_process"
    assert "waitBeforeEnd" not in row_state("u2") and "waitBeforeEnd" in row_state("u0")


def test_the_onboarding_examples_ten_flows_run_to_the_end(rt, clock):
    ids = [runtime.start("user_onboarding", {"userEmail": f"email_{i}@abc.com"}, id=f"r_{i}").id
           for i in range(10)]
    rounds = 0
    while runtime.status_counts().get("finished", 0) < 10:
        clock.advance(0.5)
        runtime.run_due()
        rounds += 1
        assert rounds < 50
    for id in ids:
        snap = runtime.snapshot(id)
        assert snap["status"] == "finished" and snap["step"] == "step_end"
        assert sorted(k for k in snap["cache"] if k != "_seq") == [
            "1:step_process:send_email_promotion", "1:step_process:send_email_wellcome"]
        assert [e["type"] for e in snap["logs"]] == [
            "init", "transition", "email_sent", "cache", "interrupt_begin", "interrupt_end",
            "email_sent", "cache", "interrupt_begin", "interrupt_end", "transition", "finished"]


def wait_until(predicate, timeout=30.0):
    """Poll an observable condition (a database state), failing after ``timeout`` seconds."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        db.session.rollback()            # end the read, so the next one sees new commits
        if predicate():
            return
        done.wait(0.02)
    raise AssertionError("the condition never came true")


def test_the_runner_thread_fires_timers_that_fell_due_while_nothing_ran(make_app, any_db_url,
                                                                        clock):
    app = make_app(any_db_url)
    with app.app_context():
        runtime.start("user_onboarding", {"userEmail": "a@b.c"}, id="u")
    clock.advance(3600)      # the process was down for an hour
    restarted = make_app(any_db_url, TESTING=False, TINYFLOW_RUNNER=True)
    thread = restarted.extensions["tinyflow.runner"]   # started by create_app
    thread.interval = 0.01
    with restarted.app_context():
        wait_until(lambda: "waitBeforeEnd" in row_state("u"))    # the overdue timer fired
        clock.advance(3)                                          # the next one falls due
        wait_until(lambda: runtime.get("u").status == "finished")
    thread.stop(timeout=10)
    assert not thread.is_alive()


# -- reading ---------------------------------------------------------------------------------------

def test_list_pages_with_keyset_cursors_newest_first(rt, clock):
    for i in range(7):
        clock.advance(1)
        runtime.start("guess_game" if i % 2 else "simple", id=f"w{i}")
    seen, cursor = [], None
    while True:
        rows, cursor = runtime.list_workflows(cursor=cursor, limit=3)
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert seen == [f"w{i}" for i in reversed(range(7))]
    rows, _ = runtime.list_workflows(flows=["simple"], statuses=["finished"])
    assert [r.id for r in rows] == ["w6", "w4", "w2", "w0"]
    rows, _ = runtime.list_workflows(statuses=["waiting"], q="w3")
    assert [r.id for r in rows] == ["w3"]
    assert runtime.status_counts() == {"finished": 4, "waiting": 3}
    assert runtime.status_counts(flows=["guess_game"]) == {"waiting": 3}
    assert runtime.summary(rows[0]).keys() == {"id", "flow", "status", "step", "created_at",
                                              "updated_at", "wake_at", "flow_version"}


def test_list_search_escapes_like_wildcards(rt):
    runtime.start("simple", id="a_b")
    runtime.start("simple", id="axb")
    assert [r.id for r in runtime.list_workflows(q="_")[0]] == ["a_b"]


def test_a_foreign_cursor_is_refused(rt):
    with pytest.raises(runtime.Invalid):
        runtime.list_workflows(cursor="not-a-cursor!")
    with pytest.raises(runtime.Invalid):
        runtime.logs("x", cursor="W10")        # valid base64 of JSON, but not an n


def test_logs_page_and_filter(rt):
    row = runtime.start("simple")
    items, cursor = runtime.logs(row.id, limit=3)
    assert [i["n"] for i in items] == [1, 2, 3] and cursor
    items, cursor = runtime.logs(row.id, cursor=cursor, limit=10)
    assert [i["n"] for i in items] == [4, 5, 6, 7, 8] and cursor is None
    items, _ = runtime.logs(row.id, type="transition")
    assert [i["values"]["to"] for i in items] == ["step_compute", "step_end"]
    items, _ = runtime.logs(row.id, step="step_end")
    assert {i["type"] for i in items} == {"transition", "end_hit", "finished"}
    assert items[0].keys() == {"n", "type", "values", "_at", "_step"}


def test_snapshot_and_import_round_trip_keeps_the_id(rt):
    runtime.start("interval_payment", {"userEmail": "a@b.c"}, id="p")
    runtime.send("p", "add_usage", {"item": "i", "amount": 1})
    doc = runtime.snapshot("p")
    assert json.loads(json.dumps(doc)) == doc
    with pytest.raises(runtime.Conflict):
        runtime.import_snapshots([["p", doc]])
    assert runtime.import_snapshots([["p2", doc]]) == ["p2"]
    assert runtime.snapshot("p2") == doc
    assert runtime.get("p2").flow == "interval_payment"
