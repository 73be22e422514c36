"""What a new user tripped on (issue 12), in a real browser: typing kept through a refresh,
refused forms in view without JavaScript at an address that answers, tables that hold at
1024 px and on a 390 px phone, and axe-core finding nothing on every page."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1024, "height": 768}


def test_typing_survives_a_refresh(page, live_server):
    wf_id = live_server.start("interval_payment", {"paymentIntervalMs": 600_000},
                              id="e2e-typing")
    page.goto(f"/workflows/{wf_id}")
    live = page.locator("#workflow-live")
    version = live.get_attribute("data-version")
    page.locator("#send-event-name").fill("my_event")
    value = page.locator("#send-event-value")
    value.fill('{"half": "typed')
    cancel_reason = page.locator("#cancel-reason")
    # An event arrives through the API: the page refreshes itself (its poll finds a change).
    live_server.runtime("send", wf_id, "add_usage", {"item": "tea", "amount": 2})
    value.focus()
    expect(live).not_to_have_attribute("data-version", version)
    expect(page.locator("#audit-log tr.log-add_usage")).to_have_count(1)   # refreshed
    expect(page.locator("#send-event-name")).to_have_value("my_event")
    expect(value).to_have_value('{"half": "typed')
    assert page.evaluate("document.activeElement.id") == "send-event-value"
    expect(cancel_reason).to_have_value("")
    # A form sent afterwards still answers with its own fresh fields.
    page.locator("#send-event-form").get_by_role("button", name="Send").click()
    expect(page.locator(".notice")).to_contain_text("kept in the inbox")
    expect(page.locator("#send-event-name")).to_have_value("")


def test_a_refused_form_without_javascript_is_in_view_and_its_address_answers(new_page,
                                                                              live_server):
    page = new_page(htmx=False, java_script_enabled=False, viewport=LAPTOP)
    wf_id = live_server.start("interval_payment", id="e2e-nojs-view")
    page.goto(f"/workflows/{wf_id}")
    field = page.locator("#handler-form-add_usage-value")
    expect(field).to_have_attribute("placeholder", '{"item": "coffee", "amount": 3}')
    field.fill("lots")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("#handler-form-add_usage").get_by_role("button", name="Send").click()
    assert posted.value.status == 422
    alert = page.locator("#handler-form-add_usage [role=alert]")
    expect(alert).to_contain_text("add_usage needs")
    expect(alert).to_be_in_viewport()
    expect(field).to_be_in_viewport()
    expect(field).to_have_value("lots")
    # The address is now the form's; opened again, it answers with the workflow's page.
    assert page.url.endswith(f"/workflows/{wf_id}/events")
    again = page.goto(page.url)
    assert again.status == 200
    expect(page.locator("#wf-id")).to_have_text(wf_id)

    # The start form: the refused state is in view too, and the address answers.
    page.goto("/workflows")
    page.locator("#start-flow").select_option("simple")
    page.locator("#start-state").fill("[1]")
    page.locator("#start-form").get_by_role("button", name="Start").click()
    expect(page.locator("#start-form-error")).to_contain_text("must be a JSON object")
    expect(page.locator("#start-form-error")).to_be_in_viewport()
    assert page.goto(page.url).status == 200


def cells_overflowing(page, table: str) -> list[str]:
    """Each cell whose content spills out of its own box (over a neighbour), as text."""
    return page.evaluate("""table => {
        const out = [];
        for (const td of document.querySelectorAll(table + ' tbody td')) {
            const box = td.getBoundingClientRect();
            const range = document.createRange();
            range.selectNodeContents(td);
            for (const r of range.getClientRects()) {
                if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) {
                    out.push(td.className + ': ' + td.innerText.slice(0, 40));
                    break;
                }
            }
        }
        return out;
    }""", table)


def sideways(page, selector: str) -> int:
    """How far ``selector`` (or the page) scrolls sideways, in px."""
    return page.evaluate("""sel => {
        const el = sel ? document.querySelector(sel) : document.documentElement;
        return el.scrollWidth - el.clientWidth;
    }""", selector)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1024px", "390px"])
def test_the_list_and_the_audit_log_hold_at_1024px_and_on_a_phone(new_page, live_server,
                                                                   viewport):
    tag = viewport["width"]
    for flow in ("interval_payment", "user_onboarding", "guess_game_2"):
        live_server.start(flow, id=f"e2e-layout-{tag}-{flow}-with-a-rather-long-id")
    flaky = live_server.start("flaky_payment", {"amount": 3}, id=f"e2e-layout-{tag}-flaky")
    page = new_page(htmx=False, viewport=viewport)
    page.goto(f"/workflows?q=e2e-layout-{tag}")
    expect(page.locator("#workflow-results tr.workflow-row")).to_have_count(4)
    assert cells_overflowing(page, "table.workflows") == []
    assert sideways(page, None) <= 0
    assert sideways(page, "#workflow-results .table-wrap") <= 0       # every column shows
    for cell in page.locator("table.workflows tr.workflow-row").first.locator("td").all():
        expect(cell).to_be_visible()

    page.goto(f"/workflows/{flaky}")
    assert cells_overflowing(page, "table.log") == []
    assert sideways(page, None) <= 0
    assert sideways(page, "#audit-log .table-wrap") <= 0
    widths = page.locator("table.log td.col-values").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().width)")
    # The values have room: a whole line on a phone (not 84 px), the widest column on a laptop.
    assert min(widths) >= (viewport["width"] * 0.6 if viewport is PHONE else 300), widths


def axe_violations(page, axe_script) -> list[str]:
    page.add_script_tag(path=str(axe_script))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
            targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [json.dumps(v) for v in result]


def audited_pages(live) -> list[str]:
    ids = [live.start("guess_game", id="e2e-axe-guess"),
           live.start("interval_payment", id="e2e-axe-billing"),
           live.start("user_onboarding", {"userEmail": "a@b.c"}, id="e2e-axe-onboarding"),
           live.start("simple", id="e2e-axe-simple")]
    live.runtime("advance", "e2e-axe-billing", 30)
    cancelled = live.start("guess_game_2", id="e2e-axe-cancelled")
    live.runtime("cancel", cancelled, reason="testing")
    failed = live.start("flaky_payment", {"amount": 1}, id="e2e-axe-failed")
    while live.describe(failed)["status"] == "waiting":
        live.runtime("fire_timer", failed, live.describe(failed)["pending"][0]["resumeId"])
    return ["/workflows", "/workflows?status=waiting&flow=guess_game", "/flows",
            "/flows/interval_payment", "/flows/guess_game", "/workflows/no-such-workflow",
            "/schedules", *(f"/workflows/{i}" for i in [*ids, cancelled, failed])]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violation_on_any_page(new_page, live_server, axe_script, scheme):
    paths = audited_pages(live_server) if scheme == "light" else [
        "/workflows", "/flows", "/flows/interval_payment", "/workflows/e2e-axe-billing",
        "/workflows/e2e-axe-failed", "/workflows/e2e-axe-cancelled", "/schedules"]
    found = {}
    for viewport in (None, PHONE):
        options = {"viewport": viewport} if viewport else {}
        # axe is added as an inline script, which the pages' CSP refuses: bypass it here.
        page = new_page(htmx=False, color_scheme=scheme, bypass_csp=True, **options)
        for path in paths:
            page.goto(path)
            violations = axe_violations(page, axe_script)
            if violations:
                found[f"{path} @{viewport['width'] if viewport else 1280}px"] = violations
        page.close()
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())
