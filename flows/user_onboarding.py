"""Onboarding: a welcome email, a timer, a promotion email, another timer."""
import random
import secrets

from webapp.engine import Workflow, on_event, step


class UserOnboarding(Workflow):
    """Welcomes a user (state `userEmail`), waits, sends a promotion, waits, ends.

    Each wait is a few seconds at random, as in the original, unless the initial state gives
    it in milliseconds (`waitBeforePromotionEmail`, `waitBeforeEnd`)."""

    name = "user_onboarding"
    first_step = "step_begin"
    search_attributes = ("userEmail",)

    @on_event("set_email", example="ada@example.com")
    def set_email(self, email):
        if not isinstance(email, str) or "@" not in email:
            raise ValueError(f"{email!r} is not an email address")
        self.log("email_updated", oldValue=self.state.get("userEmail"), newValue=email)
        self.state["userEmail"] = email

    def _send_email(self, wait_field: str, wait_max_ms: int) -> str:
        delivery_id = secrets.token_hex(6)
        self.log("email_sent", deliveryId=delivery_id)
        given = self.state.get(wait_field)
        if isinstance(given, bool) or not isinstance(given, (int, float)) or given < 0:
            # At least 1 ms: a wait of 0 would fire in the same run, and whoever watches the
            # workflow (a test, the demo) would never see it asleep.
            self.state[wait_field] = random.randint(1, wait_max_ms)
        return delivery_id

    @step
    def step_begin(self):
        return "step_process"

    @step
    def step_process(self):
        yield self.action("send_email_wellcome", self._send_email,
                          "waitBeforePromotionEmail", 5000)
        yield self.sleep("wait_before_promotion_email",
                         self.state["waitBeforePromotionEmail"] / 1000)
        yield self.action("send_email_promotion", self._send_email,
                          "waitBeforeEnd", 2000)
        yield self.sleep("wait_before_end", self.state["waitBeforeEnd"] / 1000)
        return "step_end"

    @step
    def step_end(self):
        return None
