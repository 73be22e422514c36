"""The input rules: one rule per input, shared by the API, the pages, the CLI and the runtime.

Pure Python (imports neither Flask nor SQLAlchemy). Each check raises ``Refused`` (a
``ValueError``: 422 ``invalid``) saying why, or the error class the caller passes as ``error=``
(the runtime's own calls raise its ``Invalid``), before anything reaches the database:

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

import base64
import binascii
import hashlib
import json
import math
import re
import unicodedata
from datetime import datetime, timezone

from .errors import Invalid, NotFound

MAX_ID = 200          # ids, event names, idempotency keys, log types and steps
MAX_QUERY = 200       # the list's search text
MAX_INT = 2 ** 63 - 1  # what a BIGINT column holds: the largest number a cursor may carry
MAX_SECONDS = 10 ** 9  # how far a workflow's clock may be advanced in one go (about 31 years)
SECONDS_MESSAGE = f"'seconds' must be a number of seconds from 0 to {MAX_SECONDS:,}, like 60"


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


# --- search attributes ------------------------------------------------------------------------
# A value's key is what the index holds and a filter compares with, exactly: text is its JSON
# text (``"3"``, with the quotes), a number its shortest JSON form (``3`` for 3 and 3.0), a
# boolean ``true`` or ``false``; so the text "3", the number 3 and ``true`` never match one
# another. Text longer than INLINE characters is kept as a digest (``#`` and its SHA-256, which
# no JSON text begins with), so any value fits every database's index. Anything else (null, a
# list, an object, nothing at the path) has no key: no filter finds it.

INLINE = 190          # longer text is indexed by its digest (a PostgreSQL index entry is small)
_KEY_TEXT = json.JSONEncoder(ensure_ascii=False).encode


def search_key(value) -> str | None:
    """The index key of a state value (or a filter's), or None: not searchable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        text = _KEY_TEXT(value)
        if len(text) > INLINE:
            return "#" + hashlib.sha256(text.encode()).hexdigest()
        return text
    return None


def lookup(state, path: str):
    """The value at dotted ``path`` in ``state`` (objects only), or None."""
    for part in path.split("."):
        if not isinstance(state, dict):
            return None
        state = state.get(part)
    return state


def state_keys(paths, state) -> list[tuple[str, str | None]]:
    """``[(path, key)]`` for each of ``paths`` in ``state`` (a dict, or its JSON text)."""
    if isinstance(state, str):
        try:
            state = json.loads(state)
        except ValueError:         # a broken row: nothing of it is searchable
            state = None
    return [(path, search_key(lookup(state, path))) for path in paths]


def state_query(pairs) -> dict:
    """The search filters of a query string's or a form's ``pairs`` (``(name, text)``, as
    ``request.args.items(multi=True)``): ``state.<path>=<text>`` -> ``{path: value}``, the
    text as a form's value (``value_or_text``: ``3`` is the number 3, ``"3"`` the text);
    blank ones are left out (an empty input of the page)."""
    found = {}
    for name, text in pairs:
        if name.startswith("state.") and text is not None and text.strip():
            path = name[len("state."):]
            found[path] = value_or_text(text, f"the filter on {path!r}", error=Invalid)
    return found


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


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(dumps(value, separators=(",", ":")).encode()
                                    ).decode().rstrip("=")


def decode_cursor(cursor: str, *, error=Invalid):
    """What ``encode_cursor`` put in ``cursor``; anything else -> ``error``."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise error("the cursor is not one this server gave out") from None
    check_cursor(value, error=error)         # small whole numbers and clean text only
    return value


# --- the runtime's inputs (each raises the runtime's Invalid) -------------------------------

def keyset_cursor(cursor: str | None) -> tuple[int, str] | None:
    """A list's keyset position ``(time ms, id)`` from the cursor it gave out (None: the
    first page); any other cursor -> Invalid."""
    if not cursor:
        return None
    after = decode_cursor(cursor)
    if (not isinstance(after, list) or len(after) != 2
            or not isinstance(after[0], int) or not isinstance(after[1], str)):
        raise Invalid("the cursor is not one this server gave out")
    return tuple(after)


def check_json(value, what: str, max_depth: int, *, serialise: bool = True) -> None:
    """A value from outside: strict JSON and clean text (``check_value``), nested at most
    ``max_depth`` levels (pages render JSON recursively) and, with ``serialise``, one that JSON
    can hold (no sets, objects, ...)."""
    check_value(value, what, max_depth=max_depth, error=Invalid)
    if serialise:
        try:
            dumps(value)
        except (TypeError, ValueError) as problem:
            raise Invalid(f"{what} cannot be stored as JSON: {problem}") from None


def state(value, max_depth: int) -> dict | None:
    """A start's state: a JSON object (a copy the engine may adopt), or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("state must be a JSON object")
    check_json(value, "the state", max_depth, serialise=False)
    try:
        return json.loads(dumps(value))
    except (TypeError, ValueError) as problem:
        raise Invalid(f"state cannot be stored as JSON: {problem}") from None


def event_name(value) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("an event needs a name")
    check_text(value, "the event's name", most=MAX_ID, error=Invalid)
    return value


def idempotency_key(value) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise Invalid(f"an idempotency key is 1 to {MAX_ID} characters of text")
    check_text(value, "the idempotency key", most=MAX_ID, error=Invalid)
    return value


def seconds_text(text: str, *, error=Invalid) -> float:
    """``seconds`` for the text a page's or the command line's field holds."""
    try:
        value = float(text.strip())
    except (AttributeError, ValueError):
        raise error(SECONDS_MESSAGE) from None
    return seconds(value, error=error)


def seconds(value, *, error=Invalid) -> float:
    """How far to advance a workflow's clock: a number from 0 to MAX_SECONDS."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= MAX_SECONDS):
        raise error(SECONDS_MESSAGE)
    return float(value)


def moment(text, what: str = "the time", *, error=Invalid) -> int:
    """An ISO 8601 time (``2026-12-01T21:00:00Z``; no zone: UTC) as epoch ms."""
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return round(parsed.timestamp() * 1000)
    except (AttributeError, ValueError, OverflowError, OSError):
        raise error(f"{what!r} must be an ISO 8601 time such as 2026-12-01T21:00:00Z, "
                    f"not {text!r}") from None


def limit(value, most: int = 500) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid("limit must be a whole number from 1 up")
    return min(value, most)


def found(kind: str, id, load):
    """``load(id)`` for an id from outside (a workflow's, a schedule's): clean text, and
    there (else NotFound)."""
    check_text(id if isinstance(id, str) else None, f"a {kind} id", error=Invalid)
    record = load(id) if isinstance(id, str) else None
    if record is None:
        raise NotFound(f"no {kind} {id!r}")
    return record


def filters(names, statuses=(), q=None, *, flows=(), steps=(), state=None,
            known=None) -> list[tuple]:
    """List filters are clean text (no NUL, no lone surrogate) and ``q`` at most MAX_QUERY
    characters, refused before they reach the database.

    With ``known`` (``{name: flow class}``, the loaded flows), ``steps`` and ``state``
    (``{path: value}``) are checked against the selected ``flows`` (every loaded one when
    none is selected): a step none of them has, or a path none of them declares in its
    ``search_attributes``, is refused naming the ones there are. Returns the search filters
    as the store's terms: ``[(flows declaring the path, path, search_key(value))]``."""
    for value in (*names, *statuses, *flows, *steps):
        check_text(value, "a filter", most=MAX_ID, error=Invalid)
    check_query(q, error=Invalid)
    if state is not None and not isinstance(state, dict):
        raise Invalid("the search filters must be an object of {path: value}")
    if known is None:
        return []
    selected = list(flows) or sorted(known)
    loaded = {name: known[name] for name in selected if name in known}
    if steps and len(loaded) == len(selected):      # a flow not loaded: its steps are unknown
        have = list(dict.fromkeys(s for cls in loaded.values() for s in cls.__workflow__.steps))
        unknown = [s for s in steps if s not in have]
        if unknown:
            which = (f"flow {selected[0]!r}" if len(selected) == 1 else
                     f"any of the flows {', '.join(selected)}" if flows else "any loaded flow")
            raise Invalid(f"{unknown[0]!r} is not a step of {which} (steps: {', '.join(have)})")
    terms = []
    for path, value in (state or {}).items():
        check_text(path, "a search attribute's path", most=MAX_ID, error=Invalid)
        declaring = [name for name, cls in loaded.items() if path in cls.search_attributes]
        if not declaring:
            declared = {}
            for name, cls in loaded.items():
                for p in cls.search_attributes:
                    declared.setdefault(p, []).append(name)
            if len(selected) == 1:
                which, named = f"flow {selected[0]!r}", ", ".join(declared) or "none"
                said = f"it declares {named}"
            else:
                which = f"the flows {', '.join(selected)}" if flows else "any loaded flow"
                said = "they declare " + ("; ".join(
                    f"{p} ({', '.join(names)})" for p, names in declared.items()) or "none")
            raise Invalid(f"{path!r} is not a search attribute of {which}: {said} (a flow "
                          "names them in its search_attributes)")
        check_value(value, f"the filter on {path!r}", error=Invalid)
        key = search_key(value)
        if key is None:
            raise Invalid(f"the filter on {path!r} must be text, a number, true or false, "
                          f"not {dumps(value)[:40]}")
        terms.append((declaring, path, key))
    return terms


# --- batches ---------------------------------------------------------------------------------

BATCH_ACTIONS = ("cancel", "retry", "send")
# The list's filters a batch takes, by their API names: the keywords of ``Commands.where`` (so
# a batch chooses exactly what the list shows, by the same rule). ``state`` is ``{path: value}``.
LIST_FILTERS = ("flow", "status", "version", "step", "q", "state")


def batch_action(value) -> str:
    if value not in BATCH_ACTIONS:
        raise Invalid(f"unknown action {value!r}: a batch can {', '.join(BATCH_ACTIONS)}")
    return value


def batch_ids(value) -> list[str]:
    """The chosen workflow ids: a non-empty list of ids, each once (in the order given)."""
    if not isinstance(value, list) or not value:
        raise Invalid("the selection is empty: choose at least one workflow")
    for id in value:
        check_text(id if isinstance(id, str) else None, "a workflow id", most=MAX_ID,
                   error=Invalid)
        if not isinstance(id, str) or not id:
            raise Invalid("each chosen id must be a workflow id (text)")
    return list(dict.fromkeys(value))


def batch_filter(value, statuses) -> dict:
    """The list's filters as a batch takes them (``{"flow": [...], "status": [...], "q": ...,
    "state": {path: value}}``, a name or a list each but ``q`` and ``state``) -> the keyword
    arguments of ``Commands.where``, which checks them as the list does (an unknown step, an
    undeclared search attribute). One that names nothing would act on every workflow:
    refused."""
    if not isinstance(value, dict):
        raise Invalid("the filter must be a JSON object, like {\"status\": [\"failed\"]}")
    unknown = [name for name in value if name not in LIST_FILTERS]
    if unknown:
        raise Invalid(f"unknown filter {unknown[0]!r}: the list filters on "
                      f"{', '.join(LIST_FILTERS)}")
    found: dict = {}
    for name in LIST_FILTERS:
        given = value.get(name)
        if name == "q":
            check_query(given, error=Invalid)
            if given is not None and not isinstance(given, str):
                raise Invalid("the filter's 'q' must be text")
            if given and given.strip():
                found["q"] = given.strip()
            continue
        if name == "state":
            if given is not None and not isinstance(given, dict):
                raise Invalid("the filter's 'state' must be an object of {path: value}, like "
                              "{\"userEmail\": \"ada@example.com\"}")
            if given:
                found["state"] = dict(given)
            continue
        items = [given] if isinstance(given, str) else given if given is not None else []
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise Invalid(f"the filter's {name!r} must be a name or a list of names")
        items = [v for v in items if v]
        filters(items)
        if name == "status":
            wrong = [v for v in items if v not in statuses]
            if wrong:
                raise Invalid(f"unknown status {wrong[0]!r}: use one of {', '.join(statuses)}")
        if items:
            found[name] = items
    if not found:
        raise Invalid("the filter names nothing, so it would act on every workflow: name a "
                      "flow, a status, a step, a search attribute or a search (or choose the "
                      "workflows by id)")
    return found
