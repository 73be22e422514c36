"""A subscription billed every interval, its usage added and its end decided from outside."""
from webapp.engine import Workflow, on_event, step


class IntervalPayment(Workflow):
    """Bills `currentUsages` every `paymentIntervalMs`; events `add_usage` and `cancel`."""

    name = "interval_payment"
    first_step = "step_begin"
    search_attributes = ("status",)      # the billing status: "active" or "cancel"

    def _require_active(self):
        if self.state.get("status") != "active":
            raise ValueError("status is not active. can not process")

    @on_event("add_usage", example={"item": "coffee", "amount": 3})
    def add_usage(self, payload):
        self._require_active()
        if (not isinstance(payload, dict) or not isinstance(payload.get("item"), str)
                or isinstance(payload.get("amount"), bool)
                or not isinstance(payload.get("amount"), (int, float))):
            raise ValueError('add_usage needs {"item": <text>, "amount": <number>}')
        usage = {"item": payload["item"], "amount": payload["amount"]}
        self.state["currentUsages"].append(usage)
        self.log("add_usage", **usage)

    @on_event("cancel", example=None)
    def on_cancel(self, payload=None):
        self._require_active()
        self.state["status"] = "cancel"
        self.log("cancel")

    def _now_ms(self) -> int:
        return int(round(self.now() * 1000))

    @step
    def step_begin(self):
        interval = self.state.get("paymentIntervalMs", 10_000)
        self.state.update(paymentIntervalMs=interval, status="active", _cycle=0,
                          _nextPaymentAt=self._now_ms() + interval, currentUsages=[],
                          receipts=[])
        return "step_wait"

    @step
    def step_wait(self):
        state = self.state
        while state["status"] == "active":
            cycle_no = state["_cycle"]
            yield self.sleep_until(f"wait_for_end_cycle_{cycle_no}", state["_nextPaymentAt"] / 1000)
            if state["status"] != "active":
                return "step_cancel"
            state["_cycle"] += 1
            state["_nextPaymentAt"] = self._now_ms() + state["paymentIntervalMs"]
            if state["currentUsages"]:
                state["receipts"].append({"cycle": cycle_no, "createdAt": self._now_ms(),
                                          "usages": list(state["currentUsages"])})
                state["currentUsages"] = []
                return "step_send_receipt"
        return "step_cancel"

    def _send_bill(self, receipt: dict) -> str:
        self.log("bill_sent", receipt=dict(receipt))
        return f"bill-{receipt['cycle']}-{self._now_ms():x}"

    @step
    def step_send_receipt(self):
        last = self.state["receipts"][-1] if self.state["receipts"] else None
        if last is None:
            raise ValueError("lastReceipt is null")
        value = yield self.action(f"send_receipt_email_{last['cycle']}", self._send_bill, last)
        if value:
            last["deliveryId"] = value
        return "step_wait" if self.state["status"] == "active" else "step_end"

    @step
    def step_cancel(self):
        if self.state["currentUsages"]:
            self.state["receipts"].append({"cycle": self.state["_cycle"],
                                           "createdAt": self._now_ms(),
                                           "usages": list(self.state["currentUsages"])})
            self.state["currentUsages"] = []
            return "step_send_receipt"
        return "step_end"

    @step
    def step_end(self):
        return None
