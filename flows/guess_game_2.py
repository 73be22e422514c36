"""Guess my number, revisiting steps: ask, check, ask again (each visit has fresh keys)."""
from webapp.engine import Workflow, step

from ._guess import FIRST_QUESTION, GUESS_EXAMPLE, THANKS_EXAMPLE, as_number, generate_num, hint


class GuessGame2(Workflow):
    """Guess a number between 0 and 100; every answer is the event `event_ask`.
    `rounds` counts the answers so far (a search attribute)."""

    name = "guess_game_2"
    first_step = "step_begin"
    search_attributes = ("rounds",)

    @step
    def step_begin(self):
        self.state["number"] = yield self.action("generate_num", generate_num)
        self.state["hint"] = FIRST_QUESTION
        return "step_ask"

    @step
    def step_ask(self):
        answer = self.state.get("answer", [])
        value = yield self.wait_event("event_ask", {"question": self.state["hint"]},
                                      example=GUESS_EXAMPLE)
        answer.append(value)
        self.state["answer"] = answer
        self.state["rounds"] = len(answer)
        return "step_check"

    @step
    def step_check(self):
        last = self.state["answer"][-1]
        number = self.state["number"]
        if as_number(last) == number:
            return "step_end"
        self.state["hint"] = hint(last, number)
        return "step_ask"

    @step
    def step_end(self):
        rounds, number = len(self.state["answer"]), self.state["number"]
        yield self.wait_event("event_congratulation", {
            "question": f"You need {rounds} rounds to guess the number {number}. Congratulation!"},
            example=THANKS_EXAMPLE)
        return None
