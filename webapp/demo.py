"""Example workflows in every state, so a newcomer's first dashboard is alive.

Each workflow is driven through the runtime with an injected ``now``: its history is spread
over the last hours and every timer still open is due in the future. Ids start with
``demo-``; filling twice adds nothing the second time.
"""
from __future__ import annotations

import contextlib
import io
from collections import Counter

from . import runtime
from .runtime import NotFound

MINUTE, HOUR = 60.0, 3600.0
FIRST_ID = "demo-simple-1"


def fill(now: float | None = None) -> Counter:
    """Create the demo workflows; return how many ended in each status (empty if already there)."""
    base = float(now if now is not None else runtime.current().clock())
    try:
        runtime.get(FIRST_ID)
        return Counter()
    except NotFound:
        pass
    flows = runtime.registry()
    made = []
    # The example flows print what they do for `tiny-workflow play` ("... do heavy computed
    # ..."): noise here, once per workflow.
    with contextlib.redirect_stdout(io.StringIO()):
        for flow, build in SCENES:
            if flow in flows:
                made.extend(build(base))
    return Counter(runtime.summary(runtime.get(wf_id))["status"] for wf_id in made)


def at(t: float) -> float:
    """``now=at(t)``: run a step of the story at ``t`` (its row times follow)."""
    return t


def run_until(wf_id: str, t: float, until: float) -> float:
    """Fire the workflow's timers one by one, each when it is due, while due before ``until``."""
    for _ in range(50):
        info = runtime.describe(runtime.get(wf_id))
        dues = [w["resumeAfter"] / 1000 for w in info["pending"] if w["type"] == "timer"]
        if not dues or min(dues) >= until:
            break
        t = max(t, min(dues))
        runtime.advance(wf_id, 0, now=at(t))
    return t


# --- scenes: each starts some workflows of one flow and drives them ----------------------------

def simple(base):
    runtime.start("simple", id="demo-simple-1", now=at(base - 26 * HOUR))
    runtime.start("simple", id="demo-simple-2", now=at(base - 40 * MINUTE))
    return ["demo-simple-1", "demo-simple-2"]


def number_of(wf_id) -> int:
    return runtime.describe(runtime.get(wf_id))["state"]["number"]


def wrong_guess(number: int, guess: int) -> int:
    return guess if guess != number else (guess + 1) % 101


def bisect(wf_id, event_name, t):
    """Guess by halving until right; ``event_name(round)`` names each answer's event."""
    number, low, high = number_of(wf_id), 0, 100
    for round_no in range(8):
        guess = (low + high) // 2
        t += 20
        runtime.send(wf_id, event_name(round_no), guess, now=at(t))
        if guess == number:
            return t
        low, high = (guess + 1, high) if guess < number else (low, guess - 1)
    raise AssertionError("bisection over 0..100 needs at most 7 guesses")


def guess_game(base):
    runtime.start("guess_game", id="demo-guess-1", now=at(base - 3 * MINUTE))

    runtime.start("guess_game", id="demo-guess-2", now=at(base - 12 * MINUTE))
    number = number_of("demo-guess-2")
    runtime.send("demo-guess-2", "event_ask_0", wrong_guess(number, 50), now=at(base - 11 * MINUTE))
    runtime.send("demo-guess-2", "event_ask_1", wrong_guess(number, 75), now=at(base - 10 * MINUTE))

    runtime.start("guess_game", id="demo-guess-3", now=at(base - 2 * HOUR))
    t = bisect("demo-guess-3", lambda n: f"event_ask_{n}", base - 2 * HOUR)
    runtime.send("demo-guess-3", "event_congratulation", "thanks!", now=at(t + 30))

    runtime.start("guess_game", id="demo-guess-4", now=at(base - 5 * HOUR))
    runtime.send("demo-guess-4", "event_ask_0", "no idea", now=at(base - 5 * HOUR + 30))
    runtime.cancel("demo-guess-4", reason="the player gave up", now=at(base - 4 * HOUR))
    return ["demo-guess-1", "demo-guess-2", "demo-guess-3", "demo-guess-4"]


def guess_game_2(base):
    runtime.start("guess_game_2", id="demo-guess2-1", now=at(base - 7 * MINUTE))
    number = number_of("demo-guess2-1")
    runtime.send("demo-guess2-1", "event_ask", wrong_guess(number, 50), now=at(base - 6 * MINUTE))

    runtime.start("guess_game_2", id="demo-guess2-2", now=at(base - 3 * HOUR))
    t = bisect("demo-guess2-2", lambda n: "event_ask", base - 3 * HOUR)
    runtime.send("demo-guess2-2", "event_congratulation", "", now=at(t + 30))
    return ["demo-guess2-1", "demo-guess2-2"]


def user_onboarding(base):
    # Its timers last a few seconds at random (the original's): this one has finished.
    runtime.start("user_onboarding", {"userEmail": "ada@example.com"}, id="demo-onboarding-1",
                  now=at(base - 50 * MINUTE))
    run_until("demo-onboarding-1", base - 50 * MINUTE, until=base - 40 * MINUTE)

    # Welcomed ten minutes ago, asleep on a one-day timer before the promotion email: still
    # there at a first look (fire it, or advance its clock, from its page).
    runtime.start("user_onboarding", {"userEmail": "grace@example.com",
                                      "waitBeforePromotionEmail": 24 * 3_600_000,
                                      "waitBeforeEnd": 2000},
                  id="demo-onboarding-2", now=at(base - 10 * MINUTE))

    runtime.start("user_onboarding", {"userEmail": "alan@example.com"}, id="demo-onboarding-3",
                  now=at(base - 90 * MINUTE))
    runtime.cancel("demo-onboarding-3", reason="the user deleted their account",
                   now=at(base - 89 * MINUTE))
    return ["demo-onboarding-1", "demo-onboarding-2", "demo-onboarding-3"]


def interval_payment(base):
    # Billed hourly, two usages so far: asleep until the end of the cycle.
    t = base - 30 * MINUTE
    runtime.start("interval_payment", {"userEmail": "info@company.com",
                                       "paymentIntervalMs": 3_600_000},
                  id="demo-billing-1", now=at(t))
    runtime.send("demo-billing-1", "add_usage", {"item": "api_calls", "amount": 120},
                 now=at(t + 5 * MINUTE))
    runtime.send("demo-billing-1", "add_usage", {"item": "storage_gb", "amount": 3},
                 now=at(t + 20 * MINUTE))

    # Billed every 15 minutes: one receipt sent, one empty cycle, the next due soon.
    t = base - 40 * MINUTE
    runtime.start("interval_payment", {"userEmail": "ops@company.com",
                                       "paymentIntervalMs": 900_000},
                  id="demo-billing-2", now=at(t))
    runtime.send("demo-billing-2", "add_usage", {"item": "seats", "amount": 4}, now=at(t + MINUTE))
    run_until("demo-billing-2", t + MINUTE, until=base)

    # Cancelled by its own `cancel` event: at the end of the cycle it bills and finishes.
    t = base - 2 * HOUR
    runtime.start("interval_payment", {"userEmail": "old@company.com",
                                       "paymentIntervalMs": 600_000},
                  id="demo-billing-3", now=at(t))
    runtime.send("demo-billing-3", "add_usage", {"item": "api_calls", "amount": 7},
                 now=at(t + MINUTE))
    runtime.send("demo-billing-3", "cancel", None, now=at(t + 2 * MINUTE))
    run_until("demo-billing-3", t + 2 * MINUTE, until=base)
    return ["demo-billing-1", "demo-billing-2", "demo-billing-3"]


def flaky_payment(base):
    # Every attempt fails; each retry timer is fired when due, until the attempts run out.
    t = base - 15 * MINUTE
    runtime.start("flaky_payment", {"amount": 42}, id="demo-payment-1", now=at(t))
    run_until("demo-payment-1", t, until=base)
    return ["demo-payment-1"]


SCENES = [("simple", simple), ("guess_game", guess_game), ("guess_game_2", guess_game_2),
          ("user_onboarding", user_onboarding), ("interval_payment", interval_payment),
          ("flaky_payment", flaky_payment)]
