"""Real-browser fixtures: the app served from a thread on a SQLite file, Debian's headless
Chromium driven by Playwright, and htmx served from its npm package in place of the CDN.

Nothing here sleeps on the wall clock: the app's clock is a ``FakeClock`` the tests own, and
timers fire through the page's own "Fire now" and "Advance" buttons. A failing test leaves a
screenshot of each of its pages in ``test-results/e2e/<test name>.png``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from fakeclock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results" / "e2e"
CACHE = Path.home() / ".cache" / "tiny-workflow-e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 10_000       # a page that has not shown what we wait for in 10 s is broken


class LiveServer:
    """The app on a real port, plus shortcuts that seed workflows through the runtime."""

    def __init__(self, app, url: str, clock: FakeClock):
        self.app, self.url, self.clock = app, url, clock

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def runtime(self, name: str, *args, **kwargs):
        """``webapp.runtime.<name>(*args, **kwargs)`` inside an app context."""
        from webapp import runtime

        with self.app.app_context():
            return getattr(runtime, name)(*args, **kwargs)

    def start(self, flow: str, state: dict | None = None, id: str | None = None) -> str:
        """A new workflow (run until it waits or ends); its id."""
        from webapp import runtime

        with self.app.app_context():
            return runtime.summary(runtime.start(flow, state=state, id=id))["id"]

    def describe(self, id: str) -> dict:
        from webapp import runtime

        with self.app.app_context():
            return runtime.describe(runtime.get(id))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    from webapp import create_app
    from webapp.cli import CLI_FLOWS
    from webapp.store import db

    tmp = tmp_path_factory.mktemp("e2e")
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as mp:      # the secret key file goes to tmp, not the repo
        mp.setenv("TINYFLOW_INSTANCE", str(tmp / "instance"))
        app = create_app({
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/e2e.sqlite",
            "TINYFLOW_CLOCK": clock,
            "TINYFLOW_RUNNER": False,
            "TINYFLOW_FLOWS": CLI_FLOWS,    # as served by `tiny-workflow serve`
        })
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield LiveServer(app, f"http://127.0.0.1:{server.server_port}", clock)
    server.shutdown()
    thread.join(timeout=10)
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


# -- htmx from npm, in place of the CDN ---------------------------------------------------------

def _htmx_from_npm(url: str) -> Path:
    """dist/htmx.min.js of the exact version in ``url``, from ``npm pack`` (cached)."""
    match = re.search(r"htmx\.org@([^/]+)/(.+)$", url)
    if not match:
        raise RuntimeError(f"cannot read an htmx.org version from TINYFLOW_HTMX_URL {url!r}")
    version, inner = match.groups()
    target = CACHE / f"htmx.org-{version}" / inner
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm is not installed, so htmx cannot be served from its package")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "pack", f"htmx.org@{version}", "--pack-destination", str(CACHE),
                           "--silent"], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"npm pack htmx.org@{version} failed: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    tarball = CACHE / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as tar:
        member = tar.getmember(f"package/{inner}")
        source = tar.extractfile(member)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())
    return target


@pytest.fixture(scope="session")
def htmx_build(live_server):
    """``(cdn_url, local_path)``, or ``(cdn_url, reason)`` as a str when it cannot be had."""
    url = live_server.app.config["TINYFLOW_HTMX_URL"]
    try:
        return url, _htmx_from_npm(url)
    except (RuntimeError, OSError, KeyError, subprocess.TimeoutExpired) as error:
        return url, f"htmx is not available for the browser tests: {error}"


# -- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("Chromium is not installed (Debian package `chromium`): "
                    "the real-browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(request, browser, live_server, htmx_build):
    """``new_page(htmx=True, **context_options)``: a page in a fresh browser context.

    htmx's CDN address is answered with the npm file (its SRI hash must match it); a test that
    needs htmx is skipped when it could not be had. Every other outside address is refused, so
    no test depends on the network. The test's contexts are kept on its node, for the
    failure screenshot, and closed afterwards.
    """
    cdn_url, local = htmx_build
    contexts = request.node.e2e_contexts = []

    def make(htmx: bool = True, **options):
        if htmx and not isinstance(local, Path):
            pytest.skip(local)
        context = browser.new_context(base_url=live_server.url,
                                      viewport=options.pop("viewport", {"width": 1280,
                                                                        "height": 900}),
                                      **options)
        context.set_default_timeout(TIMEOUT_MS)
        context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort())
        if isinstance(local, Path):
            context.route(cdn_url, lambda route: route.fulfill(
                path=local, status=200,
                headers={"Content-Type": "application/javascript",
                         "Access-Control-Allow-Origin": "*"}))
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A page with JavaScript and htmx, light colour scheme."""
    return new_page(color_scheme="light")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, save a screenshot of each page the test had open (before they close)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    pages = [p for c in getattr(item, "e2e_contexts", []) for p in c.pages if not p.is_closed()]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", item.name).strip("-")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for i, page in enumerate(pages):
        path = RESULTS / (f"{name}.png" if i == 0 else f"{name}-{i + 1}.png")
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as error:       # the failure itself matters more than its picture
            report.sections.append(("e2e screenshot", f"could not save {path}: {error}"))
        else:
            report.sections.append(("e2e screenshot", str(path)))


# -- axe-core from npm, for the accessibility audits --------------------------------------------

AXE_VERSION = "4"         # the newest 4.x that npm has


def _axe_from_npm() -> Path:
    """axe.min.js from ``npm pack axe-core@4`` (cached under CACHE; never committed)."""
    cached = sorted(CACHE.glob("axe-core-*/axe.min.js"))
    if cached:
        return cached[-1]
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm is not installed, so axe-core cannot be had from its package")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination",
                           str(CACHE), "--silent"], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"npm pack axe-core@{AXE_VERSION} failed: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    tarball = CACHE / done.stdout.strip().splitlines()[-1]
    target = CACHE / tarball.name.removesuffix(".tgz") / "axe.min.js"
    with tarfile.open(tarball) as tar:
        source = tar.extractfile(tar.getmember("package/axe.min.js"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read())
    return target


@pytest.fixture(scope="session")
def axe_script():
    """The path of axe.min.js; the test is skipped, saying why, where npm cannot fetch it."""
    try:
        return _axe_from_npm()
    except (RuntimeError, OSError, KeyError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"axe-core is not available for the accessibility audits: {error}")
