"""Shared fixtures, flaskr style: ``app`` (a SQLite file in a temp dir), ``client``, ``runner``,
a fake ``clock`` and, for the runtime's tests, ``any_db_app`` parametrised over SQLite and a
throwaway PostgreSQL server (skipped, with the reason, where its binaries are missing)."""
from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fakeclock import FakeClock
from webapp import create_app
from webapp.cli import CLI_FLOWS
from webapp.store import db

ROOT = Path(__file__).resolve().parent.parent
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(tmp_path, clock, monkeypatch):
    """``make_app(url=None, **config)``: a test app on ``url`` (default: a SQLite file in
    tmp_path) with the fake clock; its database connections are closed afterwards."""
    monkeypatch.setenv("TINYFLOW_INSTANCE", str(tmp_path / "instance"))
    made = []

    def make(url: str | None = None, **config):
        app = create_app({
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp_path / 'tiny-workflow.sqlite'}",
            "TINYFLOW_CLOCK": clock,
            "TINYFLOW_FLOWS": CLI_FLOWS,        # as served by `tiny-workflow serve`
            **config,
        })
        made.append(app)
        return app

    yield make
    for app in made:
        runner = app.extensions.get("tinyflow.runner")
        if runner is not None:
            runner.stop(timeout=10)
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- PostgreSQL ---------------------------------------------------------------------------------

def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


class PostgresServer:
    """A PostgreSQL server in a temp dir, on a unix socket only; trust authentication."""

    def __init__(self):
        self.initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.prefix: list[str] = []
        self.user = None
        if os.geteuid() == 0:   # PostgreSQL refuses to run as root: run it as `postgres`
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run "
                                   "the server as") from None
            runuser = shutil.which("runuser")
            if not runuser:
                raise RuntimeError("running as root and `runuser` is missing")
            self.prefix = [runuser, "-u", "postgres", "--"]
        # A short path: a unix socket's path is limited to about 100 characters.
        self.dir = Path(tempfile.mkdtemp(prefix="twpg-"))
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.names = itertools.count(1)

    def _run(self, *args):
        subprocess.run([*self.prefix, *args], cwd=self.dir, check=True, capture_output=True,
                       text=True, timeout=120)

    def start(self, durable: bool = False):
        """Start it: for tests, without fsync; ``durable`` (benchmarks): PostgreSQL's
        defaults, every commit flushed to the disk before it returns."""
        self._run(self.initdb, "-D", str(self.data), "-U", "tw", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        options = f"-k {self.dir} -c listen_addresses='' -c max_connections=300"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")

    def stop(self):
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self, copy_of: str | None = None) -> str:
        """A new database, empty or a copy of the one at the URL ``copy_of`` (which no one
        may be connected to); its SQLAlchemy URL."""
        import psycopg

        name = f"tw_{next(self.names)}"
        template = f" TEMPLATE {copy_of.split('/')[3].split('?')[0]}" if copy_of else ""
        with psycopg.connect(host=str(self.dir), user="tw", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{template}")
        return f"postgresql+psycopg://tw@/{name}?host={self.dir}"


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = PostgresServer()
    except RuntimeError as error:
        pytest.skip(str(error))
    try:
        server.start()
    except subprocess.CalledProcessError as error:
        server.stop()
        pytest.fail(f"could not start PostgreSQL: {error.stderr or error.stdout}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_url(request, tmp_path) -> str:
    """A fresh database: a SQLite file, then a PostgreSQL database (parametrised)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tiny-workflow.sqlite'}"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture
def any_db_app(make_app, any_db_url):
    """The test app on each database the runtime supports (SQLite, PostgreSQL)."""
    return make_app(any_db_url)
