"""What every page shares: CSRF tokens, htmx detection, time and JSON filters, error pages.

``init_app`` runs once when the first blueprint that needs it is registered, so the app
factory stays as it is.
"""
from __future__ import annotations

import hmac
import json
import re
import secrets
from datetime import datetime, timezone

from flask import current_app, render_template, request, session
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from ..engine import Status
from ..runtime import Invalid

STATUSES = tuple(status.value for status in Status)   # in the engine's order
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRFToken"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app) -> None:
    """Config defaults, template filters and the error pages; safe to call more than once."""
    if app.extensions.get("tinyflow_web"):
        return
    app.extensions["tinyflow_web"] = True
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["TINYFLOW_MAX_PAYLOAD"]
    app.jinja_env.filters.update(reltime=reltime, pretty=pretty, compact=compact, slug=slug,
                              reject_keys=reject_keys, inline_code=inline_code)
    app.jinja_env.globals.update(csrf_token=csrf_token, is_htmx=is_htmx)
    app.register_error_handler(HTTPException, http_error)


# --- CSRF ------------------------------------------------------------------------------------

def csrf_token() -> str:
    """This session's token, created on first use (a hidden field in every form)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_protect():
    """``before_request`` hook of the page blueprints: refuse unsafe methods without the token."""
    if request.method not in UNSAFE_METHODS:
        return None
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if expected and sent and hmac.compare_digest(str(expected), str(sent)):
        return None
    return error_page(400, "The form's security token is missing or out of date. "
                           "Reload the page and try again.")


# --- htmx ------------------------------------------------------------------------------------

def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def vary(response):
    """Pages and fragments share URLs, so caches must key on HX-Request."""
    response.vary.add("HX-Request")
    return response


# --- filters ---------------------------------------------------------------------------------

def now() -> float:
    """The app's clock in epoch seconds (its Runtime's: TINYFLOW_CLOCK, offset included)."""
    return current_app.extensions["tinyflow"].clock()


def to_datetime(value) -> datetime | None:
    """An aware UTC datetime from an ISO string, a datetime, or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def humanize(seconds: float) -> str:
    """``"3 min ago"`` / ``"in 2 h"`` for a signed offset from now (positive: future)."""
    size = abs(seconds)
    if size < 1:
        return "now" if seconds >= 0 else "just now"
    for unit, width in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if size >= width or unit == "s":
            amount = f"{int(size // width)} {unit}"
            break
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def reltime(value, empty: str = "—") -> Markup:
    """``<time datetime=ISO title="exact UTC">3 min ago</time>``, rendered server-side."""
    try:
        moment = to_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):   # not a time (an odd import)
        return Markup('<span class="muted">{}</span>').format(value)
    if moment is None:
        return Markup('<span class="muted">{}</span>').format(empty)
    moment = moment.astimezone(timezone.utc)
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    label = humanize(moment.timestamp() - now())
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, exact, label)


def pretty(value) -> str:
    """JSON for people: indented, unicode kept; the template's autoescape makes it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def compact(value, limit: int = 400) -> str:
    """One-line JSON, cut at ``limit`` characters (audit-log values in a table cell)."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inline_code(text: str) -> Markup:
    """Docstring text with its `backticked` words as <code>, the rest escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:            # an unpaired backtick: show the text as it is
        return Markup("{}").format(text)
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def reject_keys(mapping: dict, *keys) -> dict:
    """The mapping without ``keys`` (query strings for links that change one filter)."""
    return {k: v for k, v in mapping.items() if k not in keys}


def slug(value) -> str:
    """A string safe inside an HTML id (wait keys and resume ids become form ids)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(value))


def flow_dict(flow_cls) -> dict:
    """A registered flow as the API lists it (and the flows page shows it)."""
    spec = flow_cls.__workflow__
    return {
        "name": spec.name,
        "doc": spec.doc,
        "steps": list(spec.steps),
        "first_step": spec.first_step,
        "transitions": {name: list(nexts) for name, nexts in spec.transitions.items()},
    }


# --- form values -----------------------------------------------------------------------------

def parse_value(text: str | None):
    """An event form's value: text that parses as JSON is that JSON, anything else a string."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped == "":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return text
    except RecursionError:
        raise Invalid("That value is JSON nested too deeply.") from None


# --- errors ----------------------------------------------------------------------------------

def error_page(status: int, message: str):
    """A page (or, for htmx, a fragment) saying what went wrong."""
    template = "_error.html" if is_htmx() else "error.html"
    html = render_template(template, status=status, message=message)
    response = vary(current_app.make_response((html, status)))
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def api_error(status: int, code: str, message: str):
    """The API's error answer: ``{"error": {"code", "message"}}``."""
    response = current_app.json.response({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "bad_request", 422: "invalid", 503: "unavailable"}


def http_error(error: HTTPException):
    """JSON under /api, a page elsewhere."""
    status = error.code or 500
    if request.path == "/api" or request.path.startswith("/api/"):
        response = api_error(status, HTTP_CODES.get(status, "error"), error.description or "")
        headers = dict(error.get_headers())
        for name in ("Allow", "WWW-Authenticate"):
            if name in headers:
                response.headers[name] = headers[name]
        return response
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_page(413, f"That was too large: the limit is {limit // 1024} KiB.")
    return error_page(status, error.description or error.name)
