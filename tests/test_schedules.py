"""Schedules: the calendar (cron in a time zone, daylight saving both ways), exactly-once fires,
catch-up and overlap, declared schedules, the API, the page and the CLI.

Time is the fake clock's (or a ``now`` passed in): nothing here sleeps on the wall clock.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from webapp import runtime, store
from webapp.cli import CLI_FLOWS, main
from webapp.runtime import schedules

FLOWS = [*CLI_FLOWS, "schedule_flows"]
UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz=UTC) -> float:
    """Epoch seconds of ``"2024-03-31 02:30"`` on the wall clock of ``tz``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def local(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, BERLIN).strftime("%Y-%m-%d %H:%M %Z")


@pytest.fixture
def rt_app(make_app, any_db_url):
    return make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)


@pytest.fixture
def rt(rt_app):
    return rt_app.extensions["tinyflow"]


def workflow_ids(rt) -> list[str]:
    return sorted(item["id"] for item in rt.list(limit=500)["items"])


# --- the calendar ----------------------------------------------------------------------------

def test_a_daily_time_fires_once_a_day_across_both_daylight_saving_changes():
    cron = schedules.cron("30 2 * * *", "Europe/Berlin")
    spring = cron.upcoming(at("2024-03-29 12:00"), 4)
    # 02:30 does not exist on 31 March (02:00 -> 03:00): it fires once, at 03:30 CEST.
    assert [local(t) for t in spring] == ["2024-03-30 02:30 CET", "2024-03-31 03:30 CEST",
                                          "2024-04-01 02:30 CEST", "2024-04-02 02:30 CEST"]
    autumn = cron.upcoming(at("2024-10-25 12:00"), 4)
    # 02:30 comes twice on 27 October (03:00 -> 02:00): it fires once, at the first.
    assert [local(t) for t in autumn] == ["2024-10-26 02:30 CEST", "2024-10-27 02:30 CEST",
                                          "2024-10-28 02:30 CET", "2024-10-29 02:30 CET"]
    assert [utc(t) for t in autumn[:3]] == ["2024-10-26 00:30", "2024-10-27 00:30",
                                             "2024-10-28 01:30"]


@pytest.mark.parametrize("day, hours", [("2024-03-31", 23), ("2024-10-27", 25)])
def test_an_hourly_cron_fires_at_every_real_hour_of_a_changing_day(day, hours):
    cron = schedules.cron("0 * * * *", "Europe/Berlin")
    start, end = at(f"{day} 00:00", BERLIN), at(f"{day} 23:59", BERLIN)
    fires = [t for t in cron.upcoming(start - 1, 30) if t <= end]
    assert len(fires) == hours
    assert all(b - a == 3600 for a, b in zip(fires, fires[1:]))      # one real hour apart
    quarter = schedules.cron("*/15 * * * *", "Europe/Berlin")
    quarters = [t for t in quarter.upcoming(start - 1, 110) if t <= end]
    assert len(quarters) == hours * 4
    assert all(b - a == 900 for a, b in zip(quarters, quarters[1:]))


def test_latest_fire_in_a_window_and_next_after_are_exact():
    cron = schedules.cron("*/5 * * * *", "UTC")
    now = at("2024-08-18 14:37")
    assert utc(cron.next_after(now)) == "2024-08-18 14:40"
    assert utc(cron.next_after(at("2024-08-18 14:40"))) == "2024-08-18 14:45"   # strictly after
    assert utc(cron.latest_in(now - 3600, now)) == "2024-08-18 14:35"
    assert utc(cron.latest_in(at("2024-08-18 14:35"), now)) == "2024-08-18 14:35"  # inclusive
    assert cron.latest_in(now - 60, now) is None
    yearly = schedules.cron("0 0 1 1 *", "UTC")
    assert utc(yearly.latest_in(now - 366 * 86400, now)) == "2024-01-01 00:00"
    assert schedules.cron("0 9 * * *", "UTC").description == "At 09:00"


def test_workflow_ids_carry_the_fire_time_to_the_second():
    fire = at("2024-08-18 14:36")
    assert schedules.workflow_id("nightly", fire) == "nightly@2024-08-18T14:36:00Z"
    assert schedules.schedule_of("nightly@2024-08-18T14:36:00Z") == ("nightly", fire)
    assert schedules.schedule_of("a@b@2024-08-18T14:36:00Z")[0] == "a@b"
    assert schedules.schedule_of("plain-id") is None
    assert schedules.schedule_of("x@not-a-time") is None


# --- firing ----------------------------------------------------------------------------------

def test_a_due_schedule_starts_its_workflow_once_and_the_runner_runs_it(rt, clock):
    rt.add_schedule("every-minute", "simple", "* * * * *", state={"n": 1})
    assert rt.fire_due_schedules() == 0                    # not due yet
    clock.advance(30)                                      # 14:36:03.5
    assert rt.fire_due_schedules() == 1
    assert rt.fire_due_schedules() == 0                    # the same moment again: nothing
    record = rt.schedule("every-minute")
    assert record.last_workflow_id == "every-minute@2024-08-18T14:36:00Z"
    assert rt.get(record.last_workflow_id)["status"] == "running"      # due at once
    assert rt.run_due() == 1
    row = rt.get(record.last_workflow_id)
    assert row["status"] == "finished" and row["state"]["n"] == 1
    answer = rt.schedule_answer(rt.schedule("every-minute"))
    assert answer["next_at"] == "2024-08-18T14:37:00.000Z"
    assert answer["last_at"] == "2024-08-18T14:36:00.000Z"
    assert workflow_ids(rt) == ["every-minute@2024-08-18T14:36:00Z"]


def test_a_fired_workflow_has_its_history_from_its_first_visit(rt, clock):
    rt.add_schedule("every-minute", "simple", "* * * * *", state={"n": 1})
    clock.advance(30)
    rt.fire_due_schedules()
    rt.run_due()
    items = rt.history("every-minute@2024-08-18T14:36:00Z")["items"]
    assert [(v["seq"], v["step"], v["state_known"]) for v in items][0] == (0, "step_begin", True)
    assert items[0]["state"] == {"n": 1}
    assert len(items) >= 2 and all(v["state_known"] for v in items)


def test_the_runners_pass_fires_due_schedules(rt, clock):
    rt.add_schedule("s", "simple", "* * * * *")
    clock.advance(30)
    assert runtime.Runner(rt).work(burst=True) == 2        # one fire, one run
    assert rt.get("s@2024-08-18T14:36:00Z")["status"] == "finished"


def test_catch_up_runs_the_latest_missed_fire_once_and_skips_the_rest(rt, clock):
    rt.add_schedule("recent", "simple", "* * * * *", catchup=120)
    rt.add_schedule("strict", "simple", "* * * * *", catchup=0)
    rt.add_schedule("old", "simple", "0 * * * *", catchup=60)
    clock.advance(3 * 3600 + 20)     # down for three hours: 180 fires came due for each
    assert rt.fire_due_schedules() == 3
    assert workflow_ids(rt) == ["recent@2024-08-18T17:35:00Z"]   # no backlog
    # "strict" is 53.5 s late for 17:35 (catchup 0) and "old" 53.5 min late for 17:00: both
    # skipped, and advanced past now.
    for id, next_at in [("strict", "2024-08-18T17:36:00.000Z"),
                        ("old", "2024-08-18T18:00:00.000Z"),
                        ("recent", "2024-08-18T17:36:00.000Z")]:
        assert rt.schedule_answer(rt.schedule(id))["next_at"] == next_at
    assert rt.schedule("strict").last_workflow_id is None


def test_overlap_skip_waits_for_the_last_run_and_allow_does_not(rt, clock):
    rt.add_schedule("skip", "waiter", "* * * * *")
    rt.add_schedule("allow", "waiter", "* * * * *", overlap="allow")
    for _ in range(3):
        clock.advance(60)
        rt.fire_due_schedules()
        rt.run_due()
    ids = workflow_ids(rt)
    assert [i for i in ids if i.startswith("skip@")] == ["skip@2024-08-18T14:36:00Z"]
    assert len([i for i in ids if i.startswith("allow@")]) == 3
    rt.send("skip@2024-08-18T14:36:00Z", "done", 1)          # its run ends: fires again
    clock.advance(60)
    rt.fire_due_schedules()
    assert rt.schedule("skip").last_workflow_id == "skip@2024-08-18T14:39:00Z"


def test_paused_schedules_do_not_fire_and_resume_from_now(rt, clock):
    rt.add_schedule("p", "simple", "* * * * *")
    paused = rt.pause_schedule("p")
    assert paused.paused and paused.next_at is None
    clock.advance(600)
    assert rt.fire_due_schedules() == 0 and workflow_ids(rt) == []
    resumed = rt.resume_schedule("p")
    assert not resumed.paused and rt.schedule_answer(resumed)["next_at"] == \
        "2024-08-18T14:46:00.000Z"                          # what was missed is skipped
    assert rt.pause_schedule("p").paused and rt.pause_schedule("p").paused   # idempotent


def test_a_schedule_whose_flow_is_not_loaded_does_not_fire(make_app, any_db_url, rt, clock):
    rt.add_schedule("gone", "waiter", "* * * * *")
    other = make_app(any_db_url, TINYFLOW_FLOWS=CLI_FLOWS)      # no `waiter` flow here
    ort = other.extensions["tinyflow"]
    clock.advance(120)
    assert ort.fire_due_schedules() == 0
    assert ort.schedule_answer(ort.schedule("gone"))["flow_loaded"] is False
    card = page(other.test_client().get("/schedules")).select_one("#schedule-gone")
    assert "flow not loaded: it does not fire" in card.select_one(".schedule-flow").text
    assert card.select_one("#trigger-gone") is None
    assert rt.fire_due_schedules() == 1                       # where it is loaded, it fires


def test_a_fire_cut_off_before_its_commit_leaves_nothing_and_fires_later(rt, clock,
                                                                        monkeypatch):
    """A crash in the middle of a fire: the schedule's advance and its workflow's insert are
    one transaction, so neither is kept; the next pass fires it, once."""
    rt.add_schedule("c", "simple", "* * * * *")
    clock.advance(30)

    def crash(connection, params):
        raise KeyboardInterrupt("the process dies here")
    monkeypatch.setattr(store._INSERT_LOG, "run", crash)
    with pytest.raises(KeyboardInterrupt):
        rt.fire_due_schedules()
    monkeypatch.undo()
    assert workflow_ids(rt) == [] and rt.schedule("c").last_workflow_id is None
    assert rt.schedule("c").version == 1
    assert rt.fire_due_schedules() == 1
    assert workflow_ids(rt) == ["c@2024-08-18T14:36:00Z"]


def test_two_runtimes_racing_for_one_fire_start_it_once(any_db_url, rt, clock, monkeypatch):
    """Worker A has read the due schedule when worker B fires it: A's version-checked advance
    finds it moved on and A starts nothing. This test fails if a fire could run twice."""
    rt.add_schedule("race", "simple", "* * * * *")
    rt.add_schedule("race2", "simple", "* * * * *")
    clock.advance(30)
    other = runtime.Runtime(any_db_url, flows=FLOWS, clock=clock)
    real = rt.store.fire_schedules          # worker A's store only
    raced = []

    def racing(now_ms, flows, limit, plan):
        def plan_then_race(record, last_status):
            if not raced:
                raced.append(other.fire_due_schedules())   # B commits first
            return plan(record, last_status)
        return real(now_ms, flows, limit, plan_then_race)
    monkeypatch.setattr(rt.store, "fire_schedules", racing)
    fired_a = rt.fire_due_schedules()
    monkeypatch.undo()
    assert fired_a + raced[0] == 2
    assert workflow_ids(rt) == ["race2@2024-08-18T14:36:00Z", "race@2024-08-18T14:36:00Z"]
    for id in ("race", "race2"):
        assert rt.schedule(id).version == 2           # advanced once, by whoever won
    other.store.dispose()


def test_trigger_starts_one_now_and_records_it(rt, clock):
    rt.add_schedule("t", "simple", "0 9 * * *", state={"k": "v"})
    row = rt.trigger_schedule("t")
    assert row.id == "t@2024-08-18T14:35:33Z" and row.status == "finished"
    assert rt.schedule("t").last_workflow_id == row.id
    with pytest.raises(runtime.Conflict):                  # the same second again
        rt.trigger_schedule("t")
    assert rt.schedule_answer(rt.schedule("t"))["next_at"] == "2024-08-19T09:00:00.000Z"


def test_a_scheduled_fire_in_the_same_second_as_a_trigger_is_that_trigger(rt, clock):
    rt.add_schedule("same", "simple", "* * * * *")
    clock.advance(26.5)                                    # 14:36:00 exactly
    rt.trigger_schedule("same")
    assert rt.fire_due_schedules() == 1
    assert workflow_ids(rt) == ["same@2024-08-18T14:36:00Z"]


# --- bad input: the reason, nothing stored ---------------------------------------------------

@pytest.mark.parametrize("fields, words", [
    ({"cron": "0 9 * *"}, "five fields"),
    ({"cron": "61 9 * * *"}, "not a valid cron expression"),
    ({"cron": "0 0 30 2 *"}, "never fires"),
    ({"timezone": "Mars/Olympus"}, "not a known IANA time zone"),
    ({"flow": "nope"}, "not a loaded flow"),
    ({"overlap": "queue"}, "'overlap'"),
    ({"catchup": -1}, "'catchup'"),
    ({"id": "a@b"}, "cannot contain '@'"),
    ({"id": "a/b"}, "'/'"),
    ({"id": "x" * 190}, "at most"),
    ({"state": {"bad": float("nan")}}, "JSON cannot hold"),
])
def test_bad_schedules_are_refused_and_nothing_is_stored(rt, fields, words):
    values = {"id": "s", "flow": "simple", "cron": "0 9 * * *", **fields}
    with pytest.raises(runtime.Invalid, match=words.replace("(", r"\(")):
        rt.add_schedule(values.pop("id"), values.pop("flow"), values.pop("cron"), **values)
    assert rt.schedules() == []


def test_a_duplicate_id_is_a_conflict(rt):
    rt.add_schedule("dup", "simple", "0 9 * * *")
    with pytest.raises(runtime.Conflict, match="already exists"):
        rt.add_schedule("dup", "guess_game", "0 10 * * *")
    assert rt.schedule("dup").flow == "simple"


# --- declared schedules ----------------------------------------------------------------------

def test_declared_schedules_are_made_when_flows_load_and_kept_in_step(make_app, any_db_url,
                                                                     clock, monkeypatch):
    import declared_flows

    app = make_app(any_db_url, TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"])
    rt = app.extensions["tinyflow"]
    answer = rt.schedule_answer(rt.schedule("daily-report"))
    assert answer["declared"] and answer["flow"] == "daily_report"
    assert answer["state"] == {"to": "ops"} and answer["timezone"] == "Europe/Berlin"
    assert answer["next_at"] == "2024-08-19T07:00:00.000Z"    # 09:00 CEST
    with pytest.raises(runtime.Conflict, match="paused, not deleted"):
        rt.delete_schedule("daily-report")
    rt.pause_schedule("daily-report")
    # The code changes: the next start updates the schedule and keeps it paused.
    monkeypatch.setattr(declared_flows.DailyReport, "schedules", [declared_flows.Schedule(
        "0 8 * * 1-5", id="daily-report", state={"to": "all"}, timezone="Europe/Berlin")])
    again = make_app(any_db_url, TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"])
    record = again.extensions["tinyflow"].schedule("daily-report")
    assert (record.cron, record.paused, record.version) == ("0 8 * * 1-5", True, 3)
    make_app(any_db_url, TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"])    # unchanged: no write
    assert rt.schedule("daily-report").version == 3
    # Where the flow is not loaded, it is not declared: it may be deleted there.
    plain = make_app(any_db_url).extensions["tinyflow"]
    assert not plain.schedule_answer(plain.schedule("daily-report"))["declared"]


def test_a_bad_declaration_is_a_one_line_error_at_load(monkeypatch, make_app):
    import declared_flows
    from webapp.runtime import FlowsError

    monkeypatch.setattr(declared_flows.DailyReport, "schedules",
                        [declared_flows.Schedule("every day", id="x")])
    with pytest.raises(FlowsError, match="schedule 'x': 'cron' 'every day' must have five"):
        make_app(TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"])


# --- the API ---------------------------------------------------------------------------------

KEYS = {"id", "flow", "cron", "description", "timezone", "overlap", "catchup", "paused",
        "next_at", "last_at", "last_workflow_id"}


def test_api_makes_lists_pauses_resumes_triggers_and_deletes(rt_app, clock):
    client = rt_app.test_client()
    made = client.post("/api/schedules", json={
        "id": "nightly", "flow": "simple", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
        "state": {"a": 1}, "overlap": "allow", "catchup": 300})
    assert made.status_code == 201 and made.headers["Location"] == "/api/schedules/nightly"
    body = made.json
    assert KEYS <= set(body)
    assert body["description"] == "At 02:30" and body["paused"] is False
    assert body["next_at"] == "2024-08-19T00:30:00.000Z" and body["last_at"] is None
    assert client.post("/api/schedules", json={"id": "n2", "flow": "simple",
                                               "cron": "0 9 * * *"}).json["timezone"] == "UTC"
    assert [s["id"] for s in client.get("/api/schedules").json["items"]] == ["n2", "nightly"]
    assert client.get("/api/schedules/nightly").json == body
    paused = client.post("/api/schedules/nightly/pause")
    assert paused.status_code == 200 and paused.json["paused"] and paused.json["next_at"] is None
    assert client.post("/api/schedules/nightly/resume").json["paused"] is False
    started = client.post("/api/schedules/nightly/trigger")
    assert started.status_code == 201 and started.json["id"] == "nightly@2024-08-18T14:35:33Z"
    assert started.json["status"] == "finished" and started.json["state"]["a"] == 1
    assert client.get("/api/schedules/nightly").json["last_workflow_id"] == started.json["id"]
    assert client.delete("/api/schedules/nightly").status_code == 204
    gone = client.get("/api/schedules/nightly")
    assert gone.status_code == 404 and gone.json["error"]["code"] == "not_found"
    assert client.get(f"/api/workflows/{started.json['id']}").status_code == 200   # kept


@pytest.mark.parametrize("body, status, code, words", [
    ({"id": "x", "flow": "simple", "cron": "nope"}, 422, "invalid", "five fields"),
    ({"id": "x", "flow": "simple", "cron": "0 9 * * *", "timezone": "Nowhere/Land"}, 422,
     "invalid", "time zone"),
    ({"id": "x", "flow": "ghost", "cron": "0 9 * * *"}, 422, "invalid", "not a loaded flow"),
    ({"id": "taken", "flow": "simple", "cron": "0 9 * * *"}, 409, "conflict", "already exists"),
    ({"id": "x", "flow": "simple", "cron": "0 9 * * *", "catchup": "60"}, 422, "invalid",
     "catchup"),
    ({"id": "x", "flow": "simple", "cron": "0 9 * * *", "every": 1}, 422, "invalid",
     "Unknown field 'every'"),
    ({"id": "x", "flow": "simple", "cron": "0 9 * * *", "state": [1]}, 422, "invalid",
     "'state' must be a JSON object"),
    ({"flow": "simple", "cron": "0 9 * * *"}, 422, "invalid", "'id'"),
])
def test_api_refuses_bad_schedules_with_the_reason_and_stores_nothing(rt_app, body, status,
                                                                      code, words):
    client = rt_app.test_client()
    client.post("/api/schedules", json={"id": "taken", "flow": "simple", "cron": "0 9 * * *"})
    answer = client.post("/api/schedules", json=body)
    assert answer.status_code == status, answer.json
    assert answer.json["error"]["code"] == code and words in answer.json["error"]["message"]
    assert [s["id"] for s in client.get("/api/schedules").json["items"]] == ["taken"]


def test_api_errors_for_unknown_and_declared_schedules(make_app):
    client = make_app(TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"]).test_client()
    for method, url in [("post", "/api/schedules/nope/pause"), ("post", "/api/schedules/nope/resume"),
                        ("post", "/api/schedules/nope/trigger"), ("delete", "/api/schedules/nope")]:
        answer = getattr(client, method)(url)
        assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
    refused = client.delete("/api/schedules/daily-report")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "conflict"
    assert client.post("/api/schedules/daily-report/pause").json["paused"] is True
    assert client.post("/api/schedules/nope/pause", data="{").status_code == 400


# --- the pages -------------------------------------------------------------------------------

def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def csrf(client) -> str:
    return page(client.get("/schedules")).select_one("input[name=csrf_token]")["value"]


def test_schedules_page_shows_each_schedule_and_its_forms(rt_app, rt, clock):
    rt.add_schedule("nightly", "simple", "30 2 * * *", timezone="Europe/Berlin")
    rt.trigger_schedule("nightly")
    client = rt_app.test_client()
    html = page(client.get("/schedules"))
    assert html.select_one('nav a[href="/schedules"]')["aria-current"] == "page"
    card = html.select_one("#schedule-nightly")
    assert card.select_one(".schedule-description").text == "At 02:30"
    assert card.select_one(".schedule-timezone").text == "Europe/Berlin"
    upcoming = card.select(".schedule-upcoming li")
    assert len(upcoming) == 5
    assert upcoming[0].select_one("time")["datetime"] == "2024-08-19T00:30:00.000Z"
    assert "2024-08-19 02:30 CEST" in upcoming[0].text
    assert card.select_one(".schedule-last a")["href"] == "/workflows/nightly@2024-08-18T14:35:33Z"
    forms = {f["id"]: f for f in card.select("form")}
    assert set(forms) == {"pause-nightly", "trigger-nightly", "delete-nightly"}
    for form in forms.values():
        assert form["method"] == "post" and form.select_one("input[name=csrf_token]")["value"]
    # The workflow it started links back to it, and its flow's page lists it.
    wf = page(client.get("/workflows/nightly@2024-08-18T14:35:33Z"))
    assert wf.select_one("#wf-schedule a")["href"] == "/schedules#schedule-nightly"
    flow = page(client.get("/flows/simple"))
    assert "At 02:30" in flow.select_one('#flow-schedules li[data-schedule="nightly"]').text


def test_schedule_page_forms_pause_resume_trigger_delete(rt_app, rt, clock):
    rt.add_schedule("s", "simple", "0 9 * * *")
    client = rt_app.test_client()
    token = csrf(client)
    for verb, check in [("pause", lambda r: r.paused), ("resume", lambda r: not r.paused),
                        ("trigger", lambda r: r.last_workflow_id == "s@2024-08-18T14:35:33Z")]:
        answer = client.post(f"/schedules/s/{verb}", data={"csrf_token": token})
        assert answer.status_code == 303 and answer.headers["Location"] == "/schedules"
        assert check(rt.schedule("s")), verb
    notice = " ".join(p.text for p in page(client.get("/schedules")).select(".notice"))
    assert "started workflow s@2024-08-18T14:35:33Z" in notice
    assert client.post("/schedules/s/delete", data={"csrf_token": token}).status_code == 303
    assert rt.schedules() == []
    assert client.post("/schedules/s/pause", data={"csrf_token": token}).status_code == 404
    assert client.post("/schedules/s/pause", data={}).status_code == 400      # no CSRF token
    assert client.get("/schedules/s/pause").status_code == 303


def test_the_add_form_makes_a_schedule_and_shows_a_refusal_in_view(rt_app, rt):
    client = rt_app.test_client()
    token = csrf(client)
    made = client.post("/schedules", data={
        "csrf_token": token, "id": "f", "flow": "simple", "cron": "*/15 * * * *",
        "timezone": "Europe/Berlin", "overlap": "allow", "catchup": "30", "state": '{"x": 2}'})
    assert made.status_code == 303
    record = rt.schedule("f")
    assert (record.overlap, record.catchup, record.timezone) == ("allow", 30, "Europe/Berlin")
    for data, status, words in [
            ({"id": "g", "flow": "simple", "cron": "bad cron"}, 422, "five fields"),
            ({"id": "g", "flow": "simple", "cron": "0 9 * * *", "timezone": "X/Y"}, 422,
             "time zone"),
            ({"id": "g", "flow": "simple", "cron": "0 9 * * *", "state": "{"}, 422, "JSON"),
            ({"id": "f", "flow": "simple", "cron": "0 9 * * *"}, 409, "already exists")]:
        answer = client.post("/schedules", data={"csrf_token": token, **data})
        assert answer.status_code == status
        html = page(answer)
        error = html.select_one("#add-schedule-error")
        assert words in error.text and error.has_attr("autofocus")
        assert html.select_one("#schedule-cron")["value"] == data["cron"]   # what was typed
    assert [r.id for r in rt.schedules()] == ["f"]


def test_declared_schedules_show_no_delete_form(make_app):
    client = make_app(TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"]).test_client()
    card = page(client.get("/schedules")).select_one("#schedule-daily-report")
    assert {f["id"] for f in card.select("form")} == {"pause-daily-report",
                                                      "trigger-daily-report"}
    assert card.select_one(".tag").text == "declared"


def test_read_only_pages_show_no_schedule_forms(make_app):
    app = make_app(TINYFLOW_READ_ONLY=True, TINYFLOW_FLOWS=[*CLI_FLOWS, "declared_flows"])
    html = page(app.test_client().get("/schedules"))
    assert html.select("form") == [] or all(f["id"] == "logout-form" for f in html.select("form"))
    assert app.test_client().post("/api/schedules", json={}).status_code == 403


# --- the CLI ---------------------------------------------------------------------------------

def test_cli_schedule_commands(rt_app, rt):
    cli = rt_app.test_cli_runner()
    added = cli.invoke(main, ["schedule", "add", "nightly", "simple", "30 2 * * *",
                              "--timezone", "Europe/Berlin", "--state", '{"a": 1}'])
    assert added.exit_code == 0, added.output
    assert '"description": "At 02:30"' in added.output
    listed = cli.invoke(main, ["schedule", "list"])
    assert listed.exit_code == 0
    assert "nightly  simple  30 2 * * *  Europe/Berlin  2024-08-19T00:30:00.000Z" in listed.output
    assert '"paused": true' in cli.invoke(main, ["schedule", "pause", "nightly"]).output
    assert '"paused": false' in cli.invoke(main, ["schedule", "resume", "nightly"]).output
    triggered = cli.invoke(main, ["schedule", "trigger", "nightly"])
    assert '"id": "nightly@2024-08-18T14:35:33Z"' in triggered.output
    assert cli.invoke(main, ["schedule", "delete", "nightly"]).exit_code == 0
    assert rt.schedules() == []


@pytest.mark.parametrize("args, code, words", [
    (["add", "x", "simple", "bad"], 2, "five fields"),
    (["add", "x", "simple", "0 9 * * *", "--timezone", "Atlantis/City"], 2, "time zone"),
    (["add", "x", "ghost", "0 9 * * *"], 2, "not a loaded flow"),
    (["add", "x", "simple", "0 9 * * *", "--state", "[1]"], 2, "JSON object"),
    (["add", "dup", "simple", "0 9 * * *"], 1, "already exists (conflict)"),
    (["pause", "nope"], 1, "no schedule 'nope' (not_found)"),
    (["delete", "nope"], 1, "no schedule 'nope'"),
])
def test_cli_refusals_are_one_line(rt_app, rt, args, code, words):
    rt.add_schedule("dup", "simple", "0 9 * * *")
    result = rt_app.test_cli_runner().invoke(main, ["schedule", *args])
    assert result.exit_code == code, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert [r.id for r in rt.schedules()] == ["dup"]
