"""Search attributes on the list page in a real browser: choose a flow, its attributes become
columns and inputs; filtering by one works with htmx and without JavaScript."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_helpers import query

pytestmark = pytest.mark.e2e


def row_ids(page) -> list[str]:
    return page.locator("#workflow-results tr.workflow-row").evaluate_all(
        "rows => rows.map(r => r.dataset.id)")


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_filter_the_list_by_a_search_attribute(new_page, live_server, javascript):
    tag = "js" if javascript else "nojs"
    email = f"ada-{tag}@example.com"
    for id, address in [(f"srch-{tag}-1", email), (f"srch-{tag}-2", f"bob-{tag}@example.com"),
                        (f"srch-{tag}-3", email)]:
        live_server.start("user_onboarding", {"userEmail": address}, id=id)
    page = new_page(htmx=javascript, java_script_enabled=javascript)
    page.goto("/workflows")
    expect(page.locator("#workflow-results th.col-attr")).to_have_count(0)   # no flow chosen

    page.locator("#filter-flow").get_by_label("user_onboarding", exact=True).check()
    if not javascript:
        page.locator("#filters").get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"flow=user_onboarding"))
    # One flow chosen: its attributes are columns, and the inputs are its own.
    expect(page.locator("#workflow-results th.col-attr")).to_have_text(["userEmail"])
    expect(page.locator("#filter-state input")).to_have_count(1)

    page.locator("#filter-state").get_by_label("userEmail").fill(email)
    page.locator("#filter-state").get_by_label("userEmail").press("Enter")
    expect(page).to_have_url(re.compile(r"state\.userEmail=ada"))
    assert query(page) == {"flow": ["user_onboarding"], "state.userEmail": [email]}
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(2)
    assert sorted(row_ids(page)) == [f"srch-{tag}-1", f"srch-{tag}-3"]
    expect(page.locator("#workflow-results td.col-attr")).to_have_text([email, email])

    # The URL is the view: loaded afresh, the same rows and the typed value.
    page.reload()
    assert sorted(row_ids(page)) == [f"srch-{tag}-1", f"srch-{tag}-3"]
    expect(page.locator("#filter-state").get_by_label("userEmail")).to_have_value(email)

    # A path no chosen flow declares: the message, in the page, and no rows.
    page.goto("/workflows?flow=user_onboarding&state.email=x")
    expect(page.locator("#filter-error")).to_contain_text(
        "'email' is not a search attribute of flow 'user_onboarding': it declares userEmail")
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(0)
