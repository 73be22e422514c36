"""The workflow list in a real browser: htmx from its pinned build, filters in the URL, the
start form's refusals."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_helpers import query

pytestmark = pytest.mark.e2e


def row_ids(page) -> list[str]:
    return page.locator("#workflow-results tr.workflow-row").evaluate_all(
        "rows => rows.map(r => r.dataset.id)")


def test_htmx_is_the_pinned_build(page, live_server, htmx_build):
    """The page loads htmx from the CDN address with its SRI hash; served the npm file of
    the same version, the browser accepts it (so the pinned hash is right)."""
    cdn_url, _ = htmx_build
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/workflows")
    script = page.locator(f'script[src="{cdn_url}"]')
    expect(script).to_have_attribute("integrity", re.compile(r"^sha384-"))
    page.wait_for_function("() => window.htmx !== undefined")
    version = re.search(r"htmx\.org@([^/]+)/", cdn_url).group(1)
    assert page.evaluate("htmx.version") == version
    assert problems == []


def test_filter_the_list_by_flow_and_status(page, live_server):
    for flow, id in [("simple", "filt-s1"), ("simple", "filt-s2"), ("guess_game", "filt-g1"),
                     ("guess_game", "filt-g2"), ("user_onboarding", "filt-o1")]:
        live_server.start(flow, id=id)
    live_server.runtime("cancel", "filt-g2")

    page.goto("/workflows")
    page.locator("#filter-q").fill("filt-")
    page.locator("#filter-q").press("Enter")
    expect(page).to_have_url(re.compile(r"q=filt-"))
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(5)

    page.locator("#filter-flow").get_by_label("simple", exact=True).check()
    expect(page).to_have_url(re.compile(r"flow=simple"))
    assert query(page) == {"q": ["filt-"], "flow": ["simple"]}
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(2)
    assert sorted(row_ids(page)) == ["filt-s1", "filt-s2"]
    expect(page.locator("#workflow-results .col-flow")).to_have_text(["simple", "simple"])

    page.locator("#filter-flow").get_by_label("simple", exact=True).uncheck()
    page.locator("#filter-flow").get_by_label("guess_game", exact=True).check()
    expect(page).to_have_url(re.compile(r"flow=guess_game(&|$)"))
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(2)
    expect(page.locator("#count-cancelled b")).to_have_text("1")
    expect(page.locator("#count-waiting b")).to_have_text("1")

    page.locator("#filter-status").get_by_label("waiting").check()
    expect(page).to_have_url(re.compile(r"status=waiting"))
    assert query(page) == {"q": ["filt-"], "flow": ["guess_game"], "status": ["waiting"]}
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(1)
    assert row_ids(page) == ["filt-g1"]
    expect(page.locator("#workflow-results .col-status")).to_have_text(["waiting"])

    # The URL is the view: loaded afresh, it shows the same rows with the same boxes ticked.
    page.reload()
    assert row_ids(page) == ["filt-g1"]
    expect(page.locator("#filter-flow").get_by_label("guess_game", exact=True)).to_be_checked()
    expect(page.locator("#filter-status").get_by_label("waiting")).to_be_checked()
    expect(page.locator("#filter-q")).to_have_value("filt-")

    # A status count is a link to that status alone.
    page.locator("#count-cancelled").click()
    expect(page).to_have_url(re.compile(r"status=cancelled"))
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(1)
    assert row_ids(page) == ["filt-g2"]


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_start_form_refuses_bad_state_and_keeps_what_was_typed(new_page, live_server,
                                                               javascript):
    page = new_page(htmx=javascript, java_script_enabled=javascript)
    page.goto("/workflows")
    page.locator("#start-flow").select_option("simple")
    typed = '{"name": "Ada",'
    page.locator("#start-state").fill(typed)
    page.locator("#start-id").fill(f"e2e-start-{'js' if javascript else 'nojs'}")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("#start-form").get_by_role("button", name="Start").click()
    assert posted.value.status == 422

    alert = page.locator("#start-form [role=alert]")
    expect(alert).to_contain_text("The initial state is not valid JSON")
    expect(page.locator("#start-state")).to_have_value(typed)
    expect(page.locator("#start-flow")).to_have_value("simple")
    expect(page.locator("#start-id")).to_have_value(f"e2e-start-{'js' if javascript else 'nojs'}")

    page.locator("#start-state").fill('{"name": "Ada"}')
    page.locator("#start-form").get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/workflows/e2e-start-(js|nojs)$"))
    expect(page.locator(".notice")).to_contain_text("Started simple workflow")
    expect(page.locator("#wf-status")).to_have_text("finished")
