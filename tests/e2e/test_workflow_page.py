"""One workflow's page in a real browser: events, timers, cancel, retry, without JavaScript,
and in dark mode."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e_helpers import (computed, contrast, expect_step_classes, luminance, shown_state,
                         tab_to)

pytestmark = pytest.mark.e2e


def test_guess_game_played_to_the_end_through_the_event_form(page, live_server):
    # Started from the flows page's button, as a newcomer would.
    page.goto("/flows")
    page.locator("#start-guess_game button").click()
    expect(page).to_have_url(re.compile(r"/workflows/[^/]+$"))
    expect(page.locator(".notice")).to_contain_text("Started guess_game workflow")
    expect(page.locator("#wf-status")).to_have_text("waiting")
    ask = page.locator("#event-form-event_ask_0")
    # (issue 12: the terminal's "Empty for simulate save/load" is not asked on the web, and
    # the field shows what an answer looks like)
    expect(ask.locator(".question")).to_have_text("number between 0-100")
    expect(ask.locator("input[name=value]")).to_have_attribute("placeholder", "50")
    number = shown_state(page)["number"]
    expect_step_classes(page, "step_play", "step", "current", "waiting")

    # A wrong guess: the next round asks again, with a hint. htmx swaps the block in place
    # (the page is not reloaded: the marker survives).
    page.evaluate("window.notReloaded = true")
    wrong = number + 1 if number < 100 else number - 1
    ask.locator("#event-form-event_ask_0-value").fill(str(wrong))
    ask.get_by_role("button", name="Send").click()
    expect(page.locator(".notice")).to_have_text("Event “event_ask_0” sent.")
    expect(page.locator("#event-form-event_ask_0")).to_have_count(0)
    sign = ">" if wrong > number else "<"
    expect(page.locator("#event-form-event_ask_1 .question")).to_have_text(
        f"value {wrong} is {sign} than the answer - number between 0-100")
    assert page.evaluate("window.notReloaded === true")

    # The right one, by keyboard only: Tab to the field, type, Enter.
    tab_to(page, "#event-form-event_ask_1-value")
    page.keyboard.type(str(number))
    page.keyboard.press("Enter")
    congratulation = page.locator("#event-form-event_congratulation")
    expect(congratulation.locator(".question")).to_have_text(
        f"You need 2 rounds to guess the number {number}. Congratulation!")
    expect(page.locator("#wf-step")).to_have_text("step_end")

    congratulation.locator("input[name=value]").fill("thanks")
    congratulation.get_by_role("button", name="Send").click()
    expect(page.locator("#workflow-live")).to_have_attribute("data-status", "finished")
    expect(page.locator("#wf-status")).to_have_text("finished")
    expect(page.locator("#no-waits")).to_have_text("None: the workflow has finished.")
    assert shown_state(page)["answer"] == [wrong, number]
    expect_step_classes(page, "step_end", "visited")
    expect(page.locator("#audit-log tr.log-finished")).to_have_count(1)


def test_onboarding_timer_fired_and_clock_advanced(page, live_server):
    wf_id = live_server.start("user_onboarding", {"userEmail": "ada@example.com"},
                              id="e2e-onboarding")
    page.goto(f"/workflows/{wf_id}")
    expect(page.locator("#wf-step")).to_have_text("step_process")
    timer = page.locator("#waits form.wait-timer")
    expect(timer).to_have_count(1)
    expect(timer.locator("h3")).to_have_text("Timer wait_before_promotion_email")
    assert "waitBeforeEnd" not in shown_state(page)
    expect(page.locator("#audit-log tr.log-email_sent")).to_have_count(1)

    timer.get_by_role("button", name="Fire now").click()
    expect(page.locator(".notice")).to_have_text("Timer fired.")
    # The workflow moved on: the promotion email went out and the next timer is open.
    expect(timer.locator("h3")).to_have_text("Timer wait_before_end")
    expect(page.locator("#audit-log tr.log-email_sent")).to_have_count(2)
    assert "waitBeforeEnd" in shown_state(page)
    expect(page.locator("#wf-status")).to_have_text("waiting")

    # The other way to move time: "Advance the clock" fires the remaining timer (at most 2 s).
    page.locator("#advance-seconds").fill("60")
    page.locator("#advance-form").get_by_role("button", name="Advance").click()
    expect(page.locator(".notice")).to_have_text(
        "Advanced by 60 s. The workflow's clock is now 1 min ahead of the wall clock.")
    expect(page.locator("#wf-status")).to_have_text("finished")
    expect(page.locator("#wf-step")).to_have_text("step_end")
    expect(timer).to_have_count(0)
    expect(page.locator("#advance-form")).to_have_count(0)


def test_cancel_asks_for_confirmation_then_cancels(page, live_server):
    wf_id = live_server.start("guess_game_2", id="e2e-cancel")
    page.goto(f"/workflows/{wf_id}")
    form = page.locator("#cancel-form")
    expect(form).to_be_hidden()               # nothing is cancelled by a single click
    page.locator("details#cancel > summary").click()
    expect(form).to_be_visible()
    page.locator("#cancel-reason").fill("changed my mind")
    form.get_by_role("button", name="Yes, cancel the workflow").click()

    expect(page.locator("#wf-status")).to_have_text("cancelled")
    expect(page.locator("#workflow-live")).to_have_attribute("data-status", "cancelled")
    expect(page.locator(".notice")).to_have_text("Workflow cancelled.")
    expect(page.locator("#event-form-event_ask")).to_have_count(0)
    expect(page.locator("details#cancel")).to_have_count(0)
    expect(page.locator("#audit-log tr.log-cancelled")).to_contain_text("changed my mind")
    assert live_server.describe(wf_id)["status"] == "cancelled"


def test_failed_workflow_retried(page, live_server):
    # Started from the list's start form (htmx answers with HX-Redirect to the new page).
    page.goto("/workflows")
    page.locator("#start-flow").select_option("flaky_payment")
    page.locator("#start-state").fill('{"amount": 42}')
    page.locator("#start-id").fill("e2e-retry")
    page.locator("#start-form").get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/workflows/e2e-retry$"))

    # Each attempt fails; fire the two retry timers to use up the three attempts.
    for attempt in (1, 2):
        timer = page.locator("#waits form.wait-timer")
        expect(timer.locator("h3")).to_have_text("Retry timer charge_card")
        timer.get_by_role("button", name="Fire now").click()
        expect(page.locator("#audit-log tr.log-action_error")).to_have_count(attempt + 1)
    expect(page.locator("#wf-status")).to_have_text("failed")
    expect(page.locator("#wf-error")).to_contain_text(
        "payment provider unreachable while charging 42")
    expect_step_classes(page, "step_charge", "failed")
    expect(page.locator("#retry-form")).to_be_hidden()

    page.locator("details#retry > summary").click()
    page.locator("#retry-form").get_by_role("button", name="Yes, retry").click()
    expect(page.locator(".notice")).to_have_text("Retrying the failed action.")
    expect(page.locator("#workflow-live")).to_have_attribute("data-status",
                                                             re.compile("running|waiting"))
    expect(page.locator("#waits form.wait-timer h3")).to_have_text("Retry timer charge_card")
    expect(page.locator("details#retry")).to_have_count(0)
    expect(page.locator("#audit-log tr.log-retried")).to_have_count(1)


def test_event_form_works_without_javascript(new_page, live_server):
    page = new_page(htmx=False, java_script_enabled=False)
    wf_id = live_server.start("guess_game_2", id="e2e-nojs")
    page.goto(f"/workflows/{wf_id}")
    number = shown_state(page)["number"]
    page.locator("#event-form-event_ask-value").fill(str(number))
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("#event-form-event_ask").get_by_role("button", name="Send").click()
    assert posted.value.status == 303                  # a real POST, then a redirect
    assert posted.value.header_value("location").endswith(f"/workflows/{wf_id}")
    expect(page.locator(".notice")).to_have_text("Event “event_ask” sent.")
    expect(page.locator("#wf-step")).to_have_text("step_end")
    expect(page.locator("#event-form-event_congratulation .question")).to_have_text(
        f"You need 1 rounds to guess the number {number}. Congratulation!")

    # A refused value: the same page again, the message beside the form, the text kept.
    onboarding = live_server.start("user_onboarding", id="e2e-nojs-refused")
    page.goto(f"/workflows/{onboarding}")
    field = page.locator("#handler-form-set_email-value")
    field.fill("not an email")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("#handler-form-set_email").get_by_role("button", name="Send").click()
    assert posted.value.status == 422
    expect(page.locator("#handler-form-set_email [role=alert]")).to_contain_text(
        "is not an email address")
    expect(field).to_have_value("not an email")
    field.fill("ada@example.com")
    page.locator("#handler-form-set_email").get_by_role("button", name="Send").click()
    expect(page.locator(".notice")).to_have_text("Event “set_email” sent.")
    assert shown_state(page)["userEmail"] == "ada@example.com"


def test_dark_mode(new_page, live_server):
    wf_id = live_server.start("guess_game", id="e2e-dark")
    light = new_page(htmx=False, color_scheme="light")
    light.goto(f"/workflows/{wf_id}")
    assert luminance(computed(light, "body", "background-color")) > 0.8

    page = new_page(htmx=False, color_scheme="dark")
    page.goto(f"/workflows/{wf_id}")
    background = computed(page, "body", "background-color")
    assert luminance(background) < 0.05, background
    assert contrast(computed(page, "body", "color"), background) >= 7
    card = computed(page, "#summary", "background-color")
    assert luminance(card) < 0.05, card

    # The diagram follows: the current step is marked, and drawn dark with light text.
    expect_step_classes(page, "step_play", "current", "waiting")
    node = page.locator('[id="step-step_play"]')
    node_fill = node.locator('path:not([fill="none"]), polygon:not([fill="none"])').first \
        .evaluate("el => getComputedStyle(el).fill")
    node_text = node.locator("text").first.evaluate("el => getComputedStyle(el).fill")
    assert luminance(node_fill) < 0.1, node_fill
    assert contrast(node_text, node_fill) >= 4.5


def failed_workflow(live_server, id: str) -> str:
    """A flaky_payment workflow whose three attempts have all failed."""
    live_server.start("flaky_payment", {"amount": 7}, id=id)
    while live_server.describe(id)["status"] == "waiting":
        live_server.runtime("fire_timer", id, live_server.describe(id)["pending"][0]["resumeId"])
    return id


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_buttons_are_readable(new_page, live_server, scheme):
    """Every button's text against its own background (WCAG AA: 4.5:1), the confirmations
    opened so their buttons show too."""
    wf_id = failed_workflow(live_server, f"e2e-buttons-{scheme}")
    page = new_page(htmx=False, color_scheme=scheme)
    page.goto(f"/workflows/{wf_id}")
    page.locator("details#retry > summary").click()
    page.locator("details#cancel > summary").click()
    buttons = page.locator("main button, main .button").filter(visible=True)
    expect(buttons).not_to_have_count(0)
    for button in buttons.all():
        fg, bg = button.evaluate(
            "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
        if bg == "rgba(0, 0, 0, 0)":                      # an outlined button: the card's
            bg = computed(page, "#summary", "background-color")
        label = button.inner_text().strip()
        assert contrast(fg, bg) >= 4.5, f"{label!r} in {scheme} mode: {fg} on {bg}"
