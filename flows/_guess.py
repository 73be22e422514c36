"""What the two guess games share: the secret number and reading an answer."""
import random

FIRST_QUESTION = "number between 0-100"
# What a guess looks like, and what the last wait takes: shown by the dashboard's forms.
GUESS_EXAMPLE = 50
THANKS_EXAMPLE = "thanks!"


def generate_num() -> int:
    return random.randint(0, 100)


def as_number(answer):
    """The answer as a number, or None (the original crashed on 0 and on text)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, float)):
        return answer
    try:
        return int(str(answer).strip())
    except ValueError:
        return None


def hint(answer, number) -> str:
    guess = as_number(answer)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return "an empty answer is not a number - number between 0-100"
    if guess is None:
        return f"{answer!r} is not a number - number between 0-100"
    sign = "<" if guess < number else ">"
    return f"value {guess} is {sign} than the answer - number between 0-100"
