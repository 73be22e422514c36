"""One rule per input from outside, shared by the API, the pages and the CLI: each either
returns the value to use or raises ``Invalid`` saying what is wrong."""
from __future__ import annotations

import base64
import binascii
import json
import math

from .. import store
from .errors import Invalid

MAX_ID = 200                # ids, event names, idempotency keys: their columns' size
MAX_SECONDS = 10 ** 9       # how far the clock may be advanced in one go (about 31 years)


def check_json(value, what: str, max_depth: int, *, serialise: bool = True) -> None:
    """Refuse a value nested deeper than ``max_depth`` levels (pages render JSON
    recursively) or, with ``serialise``, one JSON cannot hold."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, (list, tuple)) else None
        if children is None:
            continue
        if depth > max_depth:
            raise Invalid(f"{what} is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
    if serialise:
        try:
            store.dumps(value)
        except (TypeError, ValueError) as error:
            raise Invalid(f"{what} cannot be stored as JSON: {error}") from None


def state(value, max_depth: int) -> dict | None:
    """A start's state: a JSON object (a copy the engine may adopt), or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("state must be a JSON object")
    check_json(value, "the state", max_depth, serialise=False)
    try:
        return json.loads(store.dumps(value))
    except (TypeError, ValueError) as error:
        raise Invalid(f"state cannot be stored as JSON: {error}") from None


def workflow_id(value) -> str:
    """A new workflow's id: 1 to MAX_ID characters of text."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise Invalid(f"a workflow id is 1 to {MAX_ID} characters of text")
    return value


def event_name(value) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("an event needs a name")
    if len(value) > MAX_ID:
        raise Invalid(f"an event name is at most {MAX_ID} characters")
    return value


def idempotency_key(value) -> str | None:
    if value is not None and (not isinstance(value, str) or not value
                              or len(value) > MAX_ID):
        raise Invalid(f"an idempotency key is 1 to {MAX_ID} characters of text")
    return value


def seconds(value) -> float:
    """How far to advance a workflow's clock: a number from 0 to MAX_SECONDS."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Invalid("seconds must be a number, like 60") from None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= MAX_SECONDS):
        raise Invalid(f"seconds must be a number from 0 to {MAX_SECONDS:,}")
    return float(value)


def json_or_text(text: str | None):
    """A value typed as text (a page's event form, the CLI's payload): what it parses to as
    JSON (``42`` is the number 42), else the text itself; nothing typed is None."""
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text.strip())
    except ValueError:
        return text
    except RecursionError:
        raise Invalid("that value is JSON nested too deeply") from None


def limit(value, most: int = 500) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid("limit must be a whole number from 1 up")
    return min(value, most)


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(store.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str):
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise Invalid("the cursor is not one this server gave out") from None
