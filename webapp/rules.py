"""The input rules: one rule per input, shared by the API, the pages, the CLI and the runtime.

Pure Python (imports neither Flask nor SQLAlchemy). Each check raises ``Refused`` (a
``ValueError``: 422 ``invalid``) saying why, or the error class the caller passes as ``error=``
(the runtime passes its own ``Invalid``), before anything reaches the database:

- JSON is strict, in and out: no ``NaN``, ``Infinity``, ``-Infinity``, nor numbers that
  overflow to infinity (``1e400``); ``loads`` refuses them, ``dumps`` never writes them.
- Text (state, payloads, names, keys, reasons, filters, cursors) holds no lone surrogate
  (``"\\ud800"``: not Unicode, cannot be stored as UTF-8) and no NUL (PostgreSQL refuses it).
- A workflow id works in every URL and file name: 1 to 200 characters, no ``/``, no control
  character, no leading or trailing white space, not ``.`` or ``..``.
- A search (``q``) is at most 200 characters; a cursor is a list of small whole numbers and
  clean text, as this server gives out.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata

MAX_ID = 200          # ids, event names, idempotency keys, log types and steps
MAX_QUERY = 200       # the list's search text
MAX_INT = 2 ** 63 - 1  # what a BIGINT column holds: the largest number a cursor may carry


class Refused(ValueError):
    """A value the rules refuse (422 ``invalid``)."""

    status = 422
    code = "invalid"


class NotJSON(ValueError):
    """Text that is not JSON at all (the API answers 400 ``bad_request``); ``detail`` is the
    parser's word on where."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


# --- text ------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "holds a NUL character"
    if _SURROGATE.search(value):
        return "holds a lone surrogate (not Unicode text)"
    return None


def check_text(value, what: str, *, most: int | None = None, error=Refused) -> None:
    """``value`` (a str, or None: nothing to check) is text the database can store, at most
    ``most`` characters."""
    if value is None:
        return
    if not isinstance(value, str):
        raise error(f"{what} must be text")
    why = text_problem(value)
    if why:
        raise error(f"{what} {why}")
    if most is not None and len(value) > most:
        raise error(f"{what} is at most {most} characters")


def check_id(value, what: str = "a workflow id", *, error=Refused) -> None:
    """A workflow id that works everywhere: in page and API URLs, as a download's file name,
    as a command-line argument."""
    if not isinstance(value, str) or not value:
        raise error(f"{what} is 1 to {MAX_ID} characters of text")
    check_text(value, what, most=MAX_ID, error=error)
    if "/" in value:
        raise error(f"{what} cannot contain '/' (it would not work in a URL)")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise error(f"{what} cannot contain control characters (tabs, line breaks...)")
    if value != value.strip():
        raise error(f"{what} cannot begin or end with white space")
    if value.strip(".") == "":
        raise error(f"{what} cannot be '.' or '..' (browsers drop them from URLs)")


def check_query(value, what: str = "the search text", *, error=Refused) -> None:
    check_text(value, what, most=MAX_QUERY, error=error)


# --- JSON ------------------------------------------------------------------------------------

def _constant(name: str):
    raise Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(f"the number {text[:40]} is too large")
    return value


def check_value(value, what: str, *, max_depth: int | None = None, error=Refused) -> None:
    """``value`` (decoded JSON, or what a Python caller passes) holds only what strict JSON
    and the database can: finite numbers, clean text (keys too), nested at most ``max_depth``
    levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            why = text_problem(item)
            if why:
                raise error(f"{what} {why}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise error(f"{what} holds {item}, which JSON cannot hold")
        elif isinstance(item, (dict, list, tuple)):
            if max_depth is not None and depth > max_depth:
                raise error(f"{what} is nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str) and text_problem(key):
                        raise error(f"{what} has a key that {text_problem(key)}")
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def loads(text, what: str = "the JSON", *, max_depth: int | None = None, error=Refused):
    """Strict JSON from text or UTF-8 bytes. Not JSON -> NotJSON; NaN, Infinity, a number
    that overflows, a lone surrogate, a NUL, or nesting past ``max_depth`` (or past the
    parser) -> ``error``."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except Refused as problem:
        raise error(f"{what}: {problem}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
    except ValueError as problem:          # UnicodeDecodeError is a ValueError too
        raise NotJSON(f"{what} is not JSON: {problem}", str(problem)) from None
    check_value(value, what, max_depth=max_depth, error=error)
    return value


def dumps(value, **options) -> str:
    """JSON text, strict: NaN or Infinity -> ValueError (never served as invalid JSON)."""
    return json.dumps(value, allow_nan=False, **options)


def value_or_text(text: str | None, what: str = "the value", *, error=Refused):
    """A form's or the command line's value: text that parses as JSON is that JSON, anything
    else the text itself (``42`` is the number 42, ``hello`` the string). Blank -> None.
    JSON that the rules refuse (``1e400``, ``NaN``, ``"\\ud800"``) -> ``error``."""
    if text is None or not text.strip():
        return None
    try:
        return loads(text.strip(), what, error=error)
    except NotJSON:
        if text.strip() in ("NaN", "Infinity", "-Infinity"):
            raise error(f"{what}: {text.strip()} is not a JSON number") from None
        check_text(text, what, error=error)
        return text


# --- cursors ---------------------------------------------------------------------------------

def check_cursor(value, *, error=Refused) -> None:
    """A decoded cursor holds what this server puts in one: whole numbers from 0 to
    ``MAX_INT`` and clean text (alone, or in a list)."""
    message = "the cursor is not one this server gave out"
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool):
            raise error(message)
        if isinstance(item, int):
            if not 0 <= item <= MAX_INT:
                raise error(message)
        elif isinstance(item, str):
            if text_problem(item) or len(item) > MAX_ID:
                raise error(message)
        else:
            raise error(message)
