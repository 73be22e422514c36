"""Batches from the list page in a real browser: tick rows (or take all that match the
filters), read the confirmation, confirm, and watch the batch's page reach its end; the
selected path with htmx and without JavaScript.

Nothing runs batches by itself here (the live server has no runner): the test carries the
batch out as a runner's passes do, once the batch's page shows it waiting to be done.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

BATCH_URL = re.compile(r"/batches/[0-9a-f]{16}$")


def run_batches(live_server) -> int:
    """Settle every batch, as a runner's passes do; how many workflows were settled."""
    from webapp import runtime

    with live_server.app.app_context():
        rt, settled = runtime.current(), 0
        while n := rt.run_batches(owner="e2e-runner"):
            settled += n
        return settled


def status_of(live_server, id: str) -> str:
    return live_server.describe(id)["status"]


def expect_finished(page, javascript: bool, total: int, done: int, skipped: int) -> None:
    """The batch's page reaches "finished" (htmx polls it; without JavaScript, Refresh) and
    shows the counts."""
    progress = page.locator("#batch-progress")
    if not javascript:
        page.locator("#batch-refresh").click()
    expect(progress).to_have_attribute("data-status", "finished")
    expect(progress.locator(".batch-status")).to_contain_text(f"all {total} settled")
    expect(page.locator("#batch-total")).to_have_text(str(total))
    expect(page.locator("#batch-done")).to_have_text(str(done))
    expect(page.locator("#batch-skipped")).to_have_text(str(skipped))
    expect(page.locator("#batch-failed")).to_have_text("0")
    expect(page.locator("#batch-bar")).to_have_attribute("value", str(total))
    expect(page.locator("#batch-refresh")).to_have_count(0)


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_cancel_the_selected_rows(new_page, live_server, javascript):
    tag = "js" if javascript else "nojs"
    ids = [live_server.start("user_onboarding", {"userEmail": f"sel-{tag}-{i}@example.com"},
                             id=f"bsel-{tag}-{i}") for i in (1, 2, 3)]
    page = new_page(htmx=javascript, java_script_enabled=javascript)
    page.goto(f"/workflows?q=bsel-{tag}-")
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(3)

    page.get_by_label(f"Select {ids[0]}").check()
    page.get_by_label(f"Select {ids[2]}").check()
    page.locator("#batch-action").select_option("cancel")
    page.locator("#batch-selected").click()

    # The confirmation: what happens, to which, and how many; nothing is done yet.
    expect(page).to_have_url(re.compile(r"/batches/new\?"))
    expect(page.locator("h1")).to_have_text("Cancel 2 workflows")
    expect(page.locator("#what-happens")).to_have_text(
        "Each one that is running, waiting or failed is cancelled (its open waits are "
        "closed); one that is finished or cancelled already is skipped.")
    expect(page.locator("#which-workflows")).to_have_text("The 2 workflows you chose:")
    expect(page.locator(".batch-ids li")).to_have_count(2)      # in the list's order
    assert sorted(page.locator(".batch-ids li").all_inner_texts()) == [ids[0], ids[2]]
    assert [status_of(live_server, id) for id in ids] == ["waiting"] * 3

    page.locator("#batch-reason").fill(f"tidy up {tag}")
    page.locator("#batch-go").click()
    expect(page).to_have_url(BATCH_URL)
    expect(page.locator("#batch-progress")).to_have_attribute("data-status", "running")
    expect(page.locator("#batch-progress .batch-status")).to_have_text(
        "Running: 0 of 2 settled.")
    expect(page.locator("#batch-what")).to_contain_text("The workflows chosen by id.")
    expect(page.locator("#batch-what")).to_contain_text(f"Reason: tidy up {tag}")

    assert run_batches(live_server) == 2
    expect_finished(page, javascript, total=2, done=2, skipped=0)
    assert [status_of(live_server, id) for id in ids] == ["cancelled", "waiting", "cancelled"]
    assert live_server.describe(ids[0])["cancel_reason"] == f"tidy up {tag}"

    # The recent batches list it, linking to its page.
    batch_path = page.url.removeprefix(live_server.url)
    page.goto("/batches")
    row = page.locator(f"#batches a[href='{batch_path}']").locator("xpath=ancestor::tr")
    expect(row.locator("td")).to_have_text(
        [batch_path.rsplit("/", 1)[1], "cancel", "finished", "2", "2", "0", "0",
         re.compile(r".+"), re.compile(r".+")])


def test_cancel_all_that_match_a_flow_and_a_search_attribute(page, live_server):
    email = "every-match@example.com"
    ids = [live_server.start("user_onboarding", {"userEmail": email}, id=f"ball-{i}")
           for i in (1, 2, 3)]
    live_server.start("user_onboarding", {"userEmail": "someone-else@example.com"},
                      id="ball-other")
    live_server.runtime("cancel", ids[1])            # cancelled already: skipped, with why

    page.goto("/workflows")
    page.locator("#filter-flow").get_by_label("user_onboarding", exact=True).check()
    expect(page).to_have_url(re.compile(r"flow=user_onboarding"))
    page.locator("#filter-state").get_by_label("userEmail").fill(email)
    page.locator("#filter-state").get_by_label("userEmail").press("Enter")
    expect(page).to_have_url(re.compile(r"state\.userEmail=every-match"))
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(3)
    expect(page.locator("#batch-matching")).to_have_text("… all 3 matching")

    page.locator("#batch-action").select_option("cancel")
    page.locator("#batch-matching").click()
    expect(page).to_have_url(re.compile(r"/batches/new\?"))
    expect(page.locator("h1")).to_have_text("Cancel 3 workflows")
    expect(page.locator("#which-workflows")).to_have_text(
        f"Every workflow with flow user_onboarding, userEmail “{email}”: 3 now. The set is "
        "fixed when the batch is made; workflows that match later are not in it.")
    expect(page.locator(".batch-ids")).to_have_count(0)

    page.locator("#batch-go").click()
    expect(page).to_have_url(BATCH_URL)
    expect(page.locator("#batch-what")).to_contain_text(
        f"Every workflow with flow user_onboarding, userEmail “{email}” when it was made.")
    expect(page.locator("#batch-progress .batch-status")).to_have_text(
        "Running: 0 of 3 settled.")

    assert run_batches(live_server) == 3
    expect_finished(page, True, total=3, done=2, skipped=1)
    expect(page.locator("#batch-skipped-items tbody tr td")).to_have_text(
        [ids[1], "cannot cancel a cancelled workflow"])
    assert [status_of(live_server, id) for id in ids] == ["cancelled"] * 3
    assert status_of(live_server, "ball-other") == "waiting"
