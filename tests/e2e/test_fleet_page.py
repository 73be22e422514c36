"""The flow page in a real browser (issue 13): one graph over every workflow of a flow, a
step's count clicked lands on the list filtered by that step; screenshots light and dark of
the flow page and the overview, saved to /work/shots (or TINYFLOW_SHOTS) for people to
look at."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("TINYFLOW_SHOTS") or "/work/shots")


def seed(live) -> None:
    """Guess-game-2 workflows on every path: won at once, won after wrong guesses, waiting,
    cancelled; time passes between guesses (the fake clock), so steps have times."""
    for i in range(8):
        id = live.start("guess_game_2", id=f"fleet-{i}")
        number = live.describe(id)["state"]["number"]
        wrong = [g for g in (1, 99, 50) if g != number][: i % 4]
        for guess in wrong:
            live.clock.advance(5 + 20 * i)
            live.runtime("send", id, "event_ask", guess)
        live.clock.advance(3 + i)
        if i % 4 == 3:
            continue                                   # still waiting for a guess
        if i == 6:
            live.runtime("cancel", id, "gave up")
            continue
        live.runtime("send", id, "event_ask", number)


@pytest.fixture(scope="module")
def seeded(live_server):
    seed(live_server)
    return live_server


def test_click_a_steps_count_and_land_on_the_filtered_list(new_page, seeded):
    page = new_page(htmx=False, color_scheme="light")
    page.goto("/flows/guess_game_2")
    expect(page.locator("#fleet-heading")).to_contain_text("workflows of guess_game_2")
    stats = seeded.runtime("current").flow_stats("guess_game_2")
    node = page.locator("#fleet svg g#step-step_ask")
    expect(node).to_contain_text(f"{stats['steps']['step_ask']['now']} now")
    won = next(t["count"] for t in stats["transitions"]
               if (t["from"], t["to"]) == ("step_check", "step_end"))
    assert won >= 5                                # the five seeded here that won
    expect(page.locator("#fleet svg g#edge-step_check-step_end")).to_contain_text(str(won))
    node.locator("a").first.click()
    expect(page.locator("main h1")).to_have_text("Workflows")
    parts = urlsplit(page.url)
    assert parts.path == "/workflows"
    assert parse_qs(parts.query) == {"flow": ["guess_game_2"], "step": ["step_ask"]}
    # The table's twin link goes to the same place.
    page.go_back()
    page.locator('#fleet-steps tr[data-step="step_ask"] a.now-link').click()
    expect(page.locator("main h1")).to_have_text("Workflows")
    assert parse_qs(urlsplit(page.url).query) == {"flow": ["guess_game_2"], "step": ["step_ask"]}


def test_no_csp_violation_on_the_flow_page_and_overview(new_page, seeded):
    page = new_page(htmx=False, color_scheme="dark")
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    for path in ("/flows/guess_game_2", "/"):
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
    assert problems == []


def test_screenshots_light_and_dark(new_page, seeded):
    SHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for scheme in ("light", "dark"):
        page = new_page(htmx=False, color_scheme=scheme, viewport={"width": 1280, "height": 900})
        page.emulate_media(color_scheme=scheme)
        for name, path in (("flow-guess_game_2", "/flows/guess_game_2"), ("overview", "/")):
            page.goto(path)
            expect(page.locator("main h1").first).to_be_visible()
            target = SHOTS / f"{name}-{scheme}.png"
            page.screenshot(path=str(target), full_page=True)
            saved.append(target)
        page.close()
    assert all(p.stat().st_size > 10_000 for p in saved)
