"""History in a real browser (issue 15), without JavaScript: from the audit log to a visit's
state and diff, Fork from here with an edited state, the fork's origin and the origin's forks,
and the page as of an audit-log entry."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from e2e_helpers import expect_step_classes, shown_state

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("javascript", [False, True])
def test_visit_state_diff_and_fork_from_the_audit_log(new_page, live_server, javascript):
    gid = live_server.start("guess_game_2")
    number = live_server.describe(gid)["state"]["number"]
    wrong = number + 1 if number < 100 else number - 1
    live_server.runtime("send", gid, "event_ask", wrong)
    page = new_page(htmx=javascript, java_script_enabled=javascript)
    page.goto(f"/workflows/{gid}")

    # visit 2 (step_check) began with the first answer added
    page.locator('#audit-log .visit-links[data-seq="2"] .visit-state').click()
    expect(page).to_have_url(re.compile(rf"/workflows/{gid}/visits/2$"))
    expect(page.locator("#visit-step")).to_have_text("step_check")
    assert json.loads(page.locator("#visit-state").inner_text())["answer"] == [wrong]
    added = page.locator("#diff tbody tr.diff-added")
    expect(added).to_have_count(2)              # the answer, and the rounds counted
    assert sorted(added.nth(i).locator("td").first.inner_text() for i in range(2)) == [
        "answer", "rounds"]

    # Fork from visit 1 (step_ask), with the hint edited first
    page.goto(f"/workflows/{gid}")
    page.locator('#audit-log .visit-links[data-seq="1"] .visit-fork').click()
    expect(page.locator("#fork-warning")).to_contain_text("run again")
    state = json.loads(page.locator("#fork-state").input_value())
    assert state == {"number": number, "hint": "number between 0-100"}
    state["hint"] = "edited in the browser"
    page.locator("#fork-state").fill(json.dumps(state))
    page.locator("#fork-id").fill(f"{gid}-fork")
    page.locator("#fork-submit").click()
    expect(page).to_have_url(re.compile(rf"/workflows/{gid}-fork$"))
    expect(page.locator(".notice")).to_contain_text(f"Forked {gid} from visit 1")
    expect(page.locator("#wf-step")).to_have_text("step_ask")
    assert shown_state(page) == state
    expect_step_classes(page, "step_ask", "current", "waiting")

    # the fork links to its origin's visit; the origin lists the fork
    page.locator("#wf-origin a").click()
    expect(page).to_have_url(re.compile(rf"/workflows/{gid}/visits/1$"))
    page.goto(f"/workflows/{gid}")
    expect(page.locator("#wf-forks a")).to_have_text(f"{gid}-fork")
    assert live_server.describe(gid)["state"]["answer"] == [wrong]      # untouched


def test_the_page_as_of_an_entry_draws_the_path_then(new_page, live_server):
    gid = live_server.start("guess_game_2")
    number = live_server.describe(gid)["state"]["number"]
    live_server.runtime("send", gid, "event_ask", number)              # right first time
    page = new_page(htmx=False, java_script_enabled=False)
    page.goto(f"/workflows/{gid}")
    expect_step_classes(page, "step_end", "current")
    # "as of here" on the transition into step_ask: the diagram stops there
    row = page.locator("#audit-log tr.log-transition").first
    row.locator(".as-of").click()
    expect(page).to_have_url(re.compile(rf"/workflows/{gid}\?at=\d+$"))
    expect(page.locator("#as-of-heading")).to_contain_text("As of entry")
    expect_step_classes(page, "step_ask", "current")
    assert json.loads(page.locator("#as-of-state").inner_text())["number"] == number
    page.locator("#as-of-now").click()
    expect(page.locator("#as-of")).to_have_count(0)
