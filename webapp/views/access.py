"""Who may change what, and the headers every answer carries.

- ``TINYFLOW_AUTH_TOKEN`` (optional): every mutating call needs it. Pages ask for it once per
  browser session (``/login``; kept in the signed session cookie, which ends with the browser);
  the API takes ``Authorization: Bearer <token>``. Reading stays open unless
  ``TINYFLOW_AUTH_READS`` is set too.
- ``TINYFLOW_READ_ONLY``: every mutating route answers 403 and the pages show no forms.
- Cross-site mutating requests are refused everywhere (the API takes no CSRF token, so this
  is what keeps another site's page from posting to it through a visitor's browser).
- Security headers, with a Content-Security-Policy that allows only the pinned htmx script.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, redirect, render_template, request, session,
                   url_for)

from . import web

bp = Blueprint("access", __name__)
bp.record_once(lambda state: web.init_app(state.app))

SESSION_KEY = "auth"
OPEN_ENDPOINTS = frozenset({"static", "access.login", "access.logout"})
TRUE = frozenset({"1", "true", "yes", "on"})


def init_app(app) -> None:
    """Config from the environment (a test's config wins), the checks, headers and /login."""
    env = os.environ.get
    app.config.setdefault("TINYFLOW_AUTH_TOKEN", env("TINYFLOW_AUTH_TOKEN", "").strip() or None)
    app.config.setdefault("TINYFLOW_AUTH_READS", env("TINYFLOW_AUTH_READS", "").lower() in TRUE)
    app.config.setdefault("TINYFLOW_READ_ONLY", env("TINYFLOW_READ_ONLY", "").lower() in TRUE)
    if env("TINYFLOW_SECURE_COOKIES", "").lower() in TRUE:   # served over HTTPS only
        app.config["SESSION_COOKIE_SECURE"] = True
    app.before_request(guard)
    web.init_csrf(app)          # after the guard: cross-site, read-only and login come first
    app.after_request(security_headers)
    app.jinja_env.globals.update(can_change=can_change, logged_in=logged_in,
                                 auth_enabled=auth_enabled, read_only=read_only)
    app.register_blueprint(bp)


# --- what the current request may do --------------------------------------------------------

def read_only() -> bool:
    return bool(current_app.config.get("TINYFLOW_READ_ONLY"))


def auth_enabled() -> bool:
    return bool(current_app.config.get("TINYFLOW_AUTH_TOKEN"))


def _fingerprint(token: str) -> str:
    """What the session keeps: a keyed hash, so the cookie never shows the token, and a new
    token (or secret key) logs every browser out."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def _token_matches(sent: str) -> bool:
    token = current_app.config.get("TINYFLOW_AUTH_TOKEN") or ""
    return bool(token) and hmac.compare_digest(sent.encode(), token.encode())


def logged_in() -> bool:
    """This browser session gave the token (always true when no token is configured)."""
    token = current_app.config.get("TINYFLOW_AUTH_TOKEN")
    if not token:
        return True
    kept = session.get(SESSION_KEY)
    return isinstance(kept, str) and hmac.compare_digest(kept, _fingerprint(token))


def can_change() -> bool:
    """Whether the pages show their forms."""
    return not read_only() and logged_in()


def _bearer_ok() -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and _token_matches(sent.strip())


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _cross_site() -> bool:
    """Sent by a browser from another site (Sec-Fetch-Site, else Origin); tools send neither."""
    site = request.headers.get("Sec-Fetch-Site")
    if site:
        return site in ("cross-site", "same-site")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.host


def guard():
    """``before_request`` of the whole app: cross-site, read-only, then the token."""
    unsafe = request.method in web.UNSAFE_METHODS
    if unsafe and _cross_site():
        return _deny(403, "forbidden", "Requests from other sites are refused.")
    if request.endpoint is None or request.endpoint in OPEN_ENDPOINTS:
        return None                  # no route (404, 405: nothing happens), or the login
    if unsafe and read_only():
        return _deny(403, "read_only", "This dashboard is read-only (TINYFLOW_READ_ONLY): "
                                       "nothing can be changed here.")
    if not auth_enabled() or not (unsafe or current_app.config.get("TINYFLOW_AUTH_READS")):
        return None
    if _is_api():
        if _bearer_ok():
            return None
        response = web.api_error(401, "unauthorized",
                                 "Send the access token as 'Authorization: Bearer <token>'.")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if logged_in():
        return None
    target = url_for("access.login", next=_back_to())
    if web.is_htmx():
        return "", 401, {"HX-Redirect": target}
    return redirect(target, 303)


def _back_to() -> str:
    """Where to go after logging in: this page (a GET), or the page a refused form was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("workflows.index")


def _deny(status: int, code: str, message: str):
    if _is_api():
        return web.api_error(status, code, message)
    return web.error_page(status, message)


def _safe_next(target: str | None) -> str:
    """A local path only: never another site (an open redirect)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return url_for("workflows.index")
    return target


# --- the login page -------------------------------------------------------------------------

@bp.route("/login", methods=("GET", "POST"))
def login():
    """Type the access token once; the signed session cookie keeps it until the browser ends."""
    target = _safe_next(request.values.get("next"))
    if not auth_enabled():
        return redirect(target, 303)
    if request.method == "GET":
        return render_template("login.html", next=target, message=None)
    if not _token_matches(request.form.get("token", "")):
        return render_template("login.html", next=target,
                               message="That is not the access token."), 401
    session.clear()                  # a fresh session (and CSRF token) for the logged-in user
    session[SESSION_KEY] = _fingerprint(current_app.config["TINYFLOW_AUTH_TOKEN"])
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    session.pop(SESSION_KEY, None)
    return redirect(url_for("workflows.index"), 303)


# --- headers --------------------------------------------------------------------------------

def content_security_policy() -> str:
    """Scripts: only the pinned htmx file (its integrity hash is in the page's script tag).
    No inline script, style or event handler is allowed anywhere."""
    htmx = current_app.config.get("TINYFLOW_HTMX_URL") or ""
    script = htmx if urlsplit(htmx).scheme in ("http", "https") else "'self'"
    return ("default-src 'self'; "
            f"script-src {script}; "
            "style-src 'self'; "
            "img-src 'self' data:; "
            "object-src 'none'; "
            "base-uri 'none'; "
            "form-action 'self'; "
            "frame-ancestors 'none'")


def security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response
