"""Screenshots for people to look at (no pixels are compared): the list, one workflow of each
example flow in an interesting state, and the flows page, light and dark, on a desktop
and a 390 px phone, saved to test-results/e2e/shots/ (or TINYFLOW_SHOTS)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("TINYFLOW_SHOTS")
             or Path(__file__).resolve().parents[2] / "test-results" / "e2e" / "shots")
PHONE = {"width": 390, "height": 844}


def seed(live) -> dict[str, str]:
    """One workflow per example flow, each part way through (and the demo's failed one)."""
    ids = {"simple": live.start("simple", id="shot-simple")}

    game = ids["guess_game"] = live.start("guess_game", id="shot-guess-game")
    number = live.describe(game)["state"]["number"]
    for round_no, guess in enumerate(g for g in (50, 25, 75) if g != number):
        live.runtime("send", game, f"event_ask_{round_no}", guess)

    game2 = ids["guess_game_2"] = live.start("guess_game_2", id="shot-guess-game-2")
    number = live.describe(game2)["state"]["number"]
    for guess in (g for g in (50, "fifty", 12) if g != number):
        live.runtime("send", game2, "event_ask", guess)

    onboarding = ids["user_onboarding"] = live.start(
        "user_onboarding", {"userEmail": "ada@example.com"}, id="shot-user-onboarding")
    first = live.describe(onboarding)["pending"][0]["resumeId"]
    live.runtime("fire_timer", onboarding, first)

    payment = ids["interval_payment"] = live.start(
        "interval_payment", {"paymentIntervalMs": 60_000}, id="shot-interval-payment")
    live.runtime("send", payment, "add_usage", {"item": "coffee", "amount": 3})
    live.runtime("send", payment, "add_usage", {"item": "bagel", "amount": 2.5})
    live.runtime("advance", payment, 61)
    live.runtime("send", payment, "add_usage", {"item": "muffin", "amount": 4})
    live.runtime("send", payment, "add_usage", {"item": "tea", "amount": 1})

    flaky = ids["flaky_payment"] = live.start("flaky_payment", {"amount": 42},
                                              id="shot-flaky-payment")
    while live.describe(flaky)["status"] == "waiting":
        live.runtime("fire_timer", flaky, live.describe(flaky)["pending"][0]["resumeId"])
    return ids


def test_screenshots(new_page, live_server):
    ids = seed(live_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = [("list", "/workflows"), ("flows", "/flows"),
             *((f"workflow-{flow}", f"/workflows/{id}") for flow, id in ids.items())]
    saved = []
    for scheme in ("light", "dark"):
        for device, viewport in (("desktop", None), ("phone", PHONE)):
            options = {"viewport": viewport} if viewport else {}
            page = new_page(htmx=False, color_scheme=scheme, **options)
            for name, path in pages:
                page.goto(path)
                expect(page.locator("main h1").first).to_be_visible()
                suffix = "" if device == "desktop" else "-phone"
                target = SHOTS / f"{name}-{scheme}{suffix}.png"
                page.screenshot(path=str(target), full_page=True)
                saved.append(target)
                if viewport:      # a phone's page is long: its first screens, at full size
                    height = page.evaluate("document.documentElement.scrollHeight")
                    for i, top in enumerate(range(0, min(height, 3 * 1400), 1400)):
                        page.screenshot(path=str(SHOTS / f"{name}-{scheme}{suffix}-{i + 1}.png"),
                                        full_page=True, clip={"x": 0, "y": top, "width": 390,
                                                              "height": min(1400, height - top)})
            page.close()
    assert all(p.stat().st_size > 10_000 for p in saved), "a screenshot came out (nearly) empty"
