"""A flow for the demo only: its payment provider is always down, so it fails after retries.

The five example flows cannot fail on their own, and a newcomer should see what a failed
workflow looks like (its error, its retry timers in the audit log, the retry button).
"""
from webapp.engine import Retry, Workflow, step


class ProviderDown(ConnectionError):
    """The payment provider did not answer."""


def charge_card(amount):
    raise ProviderDown(f"payment provider unreachable while charging {amount}")


class FlakyPayment(Workflow):
    """Charges `amount` through a payment provider that is always down: it fails after three
    attempts. Retry it to watch the attempts again."""

    name = "flaky_payment"
    first_step = "step_charge"

    @step
    def step_charge(self):
        amount = self.state.get("amount", 0)
        receipt = yield self.action("charge_card", charge_card, amount,
                                    retry=Retry(maximum_attempts=3, initial_interval=5.0))
        self.state["receipt"] = receipt
        return "step_done"

    @step
    def step_done(self):
        self.log("charged", amount=self.state.get("amount", 0))
        return None
