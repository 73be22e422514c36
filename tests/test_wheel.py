"""A real install: the built wheel in a fresh virtual environment, used from a directory that
is not the checkout, serves every page of the demo.

It builds the wheel and installs it with its dependencies from the package index (pip's
cache makes a second run quick), so it takes a minute; ``-m "not install"`` leaves it out.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.install


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, the wheel) with the wheel installed in a new virtual environment."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, cwd=tmp)
    [wheel] = (tmp / "dist").glob("tiny_workflow-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    bin_dir = tmp / "venv" / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, cwd=tmp)
    return bin_dir, wheel


def test_the_wheel_puts_only_the_two_packages_at_the_top(installed):
    _, wheel = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {top for top in tops if not top.endswith(".dist-info")} == {"webapp", "flows"}
    assert {"webapp/templates/base.html", "webapp/templates/workflows/detail.html",
            "webapp/templates/flows/list.html", "webapp/static/style.css"} <= names


def test_an_installed_copy_runs_the_demo_and_serves_every_page(installed, tmp_path):
    bin_dir, _ = installed
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TINYFLOW_", "PYTHON"))}
    env["TINYFLOW_INSTANCE"] = str(tmp_path / "instance")
    command = str(bin_dir / "tiny-workflow")
    demo = subprocess.run([command, "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "Started" in demo.stdout
    where = subprocess.run([str(bin_dir / "python"), "-c", "import webapp; print(webapp.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert str(bin_dir.parent) in where.stdout       # the installed copy, not the checkout

    port = _free_port()
    server = subprocess.Popen([command, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                status, _ = _get(base + "/api/flows")
                break
            except OSError:
                time.sleep(0.1)      # the server is still starting: nothing to wait on but it
        else:
            pytest.fail("serve did not answer")
        assert status == 200
        flows = [flow["name"] for flow in json.loads(_get(base + "/api/flows")[1])]
        items = json.loads(_get(base + "/api/workflows?limit=500")[1])["items"]
        assert len(items) >= 10
        pages = ["/", "/workflows", "/workflows?status=waiting", "/flows", "/api/workflows",
                 "/static/style.css", "/static/diagram.css", "/login"]
        pages += [f"/flows/{name}" for name in flows]
        for item in items:
            wf = f"/workflows/{item['id']}"
            pages += [wf, wf + "/diagram.svg", wf + "/snapshot.json",
                      f"/api/workflows/{item['id']}", f"/api/workflows/{item['id']}/logs"]
        failed = {}
        for page in pages:
            status, body = _get(base + page)
            if status != 200:
                failed[page] = (status, body[:200])
        assert failed == {}
    finally:
        server.terminate()
        server.wait(timeout=30)
