"""Guess my number: one step plays every round, each round a new event key."""
from webapp.engine import Workflow, step

from ._guess import FIRST_QUESTION, GUESS_EXAMPLE, THANKS_EXAMPLE, as_number, generate_num, hint


class GuessGame(Workflow):
    """Guess a number between 0 and 100; each answer is an event `event_ask_<round>`.
    `rounds` counts the answers so far (a search attribute)."""

    name = "guess_game"
    first_step = "step_begin"
    search_attributes = ("rounds",)

    @step
    def step_begin(self):
        self.state["number"] = yield self.action("generate_num", generate_num)
        return "step_play"

    @step
    def step_play(self):
        number = self.state["number"]
        question = FIRST_QUESTION
        answer = []
        count = 0
        while True:
            last = yield self.wait_event(f"event_ask_{count}", {"question": question},
                                         example=GUESS_EXAMPLE)
            count += 1
            self.state["rounds"] = count
            answer.append(last)
            if as_number(last) == number:
                break
            question = hint(last, number)
        self.state["answer"] = answer
        return "step_end"

    @step
    def step_end(self):
        rounds, number = len(self.state["answer"]), self.state["number"]
        yield self.wait_event("event_congratulation", {
            "question": f"You need {rounds} rounds to guess the number {number}. Congratulation!"},
            example=THANKS_EXAMPLE)
        return None
