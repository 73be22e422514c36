"""Who may change what, and the headers every answer carries.

- ``TINYFLOW_AUTH_TOKEN`` (optional): every mutating call needs it. Pages ask for it once per
  browser session (``/login``; kept in the signed session cookie, which ends with the browser);
  the API takes ``Authorization: Bearer <token>``. Reading stays open unless
  ``TINYFLOW_AUTH_READS`` is set too.
- ``TINYFLOW_READ_ONLY``: every mutating route answers 403 and the pages show no forms.
- A login is a server-side session (a random id in the cookie, kept in the database until
  **Log out** deletes it), and failed logins (pages and bearer tokens) are limited per client
  address: at most ``LOGIN_FAILURES`` a minute, then 429 with ``Retry-After``.
- Hosts: only ``localhost``, ``127.0.0.1``, ``[::1]``, the host ``serve`` binds to and those in
  ``TINYFLOW_ALLOWED_HOSTS`` are served (Flask's ``TRUSTED_HOSTS``); others get 400, which
  stops DNS rebinding.
- Cross-site mutating requests are refused everywhere (the API takes no CSRF token, so this
  is what keeps another site's page from posting to it through a visitor's browser).
- Security headers, with a Content-Security-Policy that allows only the pinned htmx script.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import deque
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, g, redirect, render_template, request, session,
                   url_for)

from . import web

bp = Blueprint("access", __name__)
bp.record_once(lambda state: web.init_app(state.app))

SESSION_KEY = "auth"
SESSION_ID = "sid"                 # the random id of this login, live in store.LoginSession
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
LOGIN_FAILURES, LOGIN_WINDOW = 10, 60.0   # failed logins allowed per address, per seconds
OPEN_ENDPOINTS = frozenset({"static", "access.login", "access.logout"})


def _store():
    return current_app.extensions["tinyflow"].store


def init_app(app) -> None:
    """The checks, headers and /login (the settings are in app.config already)."""
    if app.config.get("TRUSTED_HOSTS") is None:
        hosts = app.config["TINYFLOW_ALLOWED_HOSTS"]
        hosts = hosts.split(",") if isinstance(hosts, str) else list(hosts or ())
        hosts = [h.strip() for h in hosts if h.strip()]
        # Werkzeug compares names without the port; "[::1]" also lets in any IPv6 literal,
        # which no rebinding attack can use (it needs a name that the attacker resolves).
        app.config["TRUSTED_HOSTS"] = None if "*" in hosts else [*LOCAL_HOSTS, *hosts]
    app.extensions["tinyflow.logins"] = FailedLogins()
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


def allow_host(app, host: str) -> None:
    """Serve ``host`` too (``serve --host``); an address for every interface adds nothing
    (which names reach it is not known here: TINYFLOW_ALLOWED_HOSTS says)."""
    trusted = app.config.get("TRUSTED_HOSTS")
    if trusted is None or host in ("", "0.0.0.0", "::", "*"):
        return
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if name not in trusted:
        app.config["TRUSTED_HOSTS"] = [*trusted, name]


def _session_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def logged_in() -> bool:
    """This browser session gave the token and has not logged out (always true when no token
    is configured)."""
    token = current_app.config.get("TINYFLOW_AUTH_TOKEN")
    if not token:
        return True
    kept, sid = session.get(SESSION_KEY), session.get(SESSION_ID)
    if not (isinstance(kept, str) and hmac.compare_digest(kept, _fingerprint(token))
            and isinstance(sid, str)):
        return False
    if "tinyflow_live" not in g:
        g.tinyflow_live = False      # a failing lookup (database away) counts as logged out
        g.tinyflow_live = _store().login_is_live(_session_hash(sid))
    return g.tinyflow_live


class FailedLogins:
    """At most ``limit`` failed logins per ``window`` seconds per client address, on the app's
    clock (TINYFLOW_CLOCK); kept in memory, for at most ``clients`` addresses."""

    def __init__(self, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW,
                 clients: int = 10_000):
        self.limit, self.window, self.clients = limit, window, clients
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        with self._lock:
            times = self._failures.get(client)
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            times = self._failures.pop(client, None) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[client] = times          # the latest last
            while len(self._failures) > self.clients:
                self._failures.pop(next(iter(self._failures)))


def _logins() -> FailedLogins:
    return current_app.extensions["tinyflow.logins"]


def _client() -> str:
    return request.remote_addr or "?"


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
        wait = _logins().retry_after(_client(), web.now())
        if wait:
            return _too_many(wait)
        if _bearer_ok():
            return None
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and sent.strip():   # a wrong token, not a missing one
            _logins().failed(_client(), web.now())
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


def _too_many(wait: int):
    message = (f"Too many failed logins from your address: try again in {wait} s.")
    if _is_api():
        response = web.api_error(429, "too_many_requests", message)
    else:
        response = current_app.make_response((render_template(
            "login.html", next=_safe_next(request.values.get("next")), message=message), 429))
    response.headers["Retry-After"] = str(wait)
    return response


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
    wait = _logins().retry_after(_client(), web.now())
    if wait:
        return _too_many(wait)
    if not _token_matches(request.form.get("token", "")):
        _logins().failed(_client(), web.now())
        return render_template("login.html", next=target,
                               message="That is not the access token."), 401
    session.clear()                  # a fresh session (and CSRF token) for the logged-in user
    sid = secrets.token_urlsafe(32)
    _store().add_login(_session_hash(sid), int(web.now() * 1000))
    session[SESSION_KEY] = _fingerprint(current_app.config["TINYFLOW_AUTH_TOKEN"])
    session[SESSION_ID] = sid
    return redirect(target, 303)


@bp.post("/logout")
def logout():
    """Ends this login on the server too: a copy of the cookie no longer logs anyone in."""
    sid = session.pop(SESSION_ID, None)
    if isinstance(sid, str):
        _store().end_login(_session_hash(sid))
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
