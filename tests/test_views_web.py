"""What all pages share: relative times, JSON for people, the event value, CSRF, 404 pages."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from webapp.views import web


@pytest.mark.parametrize("offset, text", [
    (0, "now"), (-0.4, "just now"), (-42, "42 s ago"), (-180, "3 min ago"), (181, "in 3 min"),
    (-2 * 3600, "2 h ago"), (3 * 86400 + 5, "in 3 d"),
])
def test_times_are_relative_to_the_app_clock(app, clock, offset, text):
    with app.app_context():
        assert web.humanize(offset) == text
        markup = web.reltime((clock.now + offset) * 1000)       # epoch ms, as in snapshots
    moment = datetime.fromtimestamp(clock.now + offset, timezone.utc)
    assert f">{text}</time>" in markup
    assert f'title="{moment:%Y-%m-%d %H:%M:%S} UTC"' in markup
    assert 'datetime="' + moment.isoformat(timespec="milliseconds")[:19] in markup


def test_reltime_reads_iso_strings_and_shows_nothing_as_a_dash(app, clock):
    with app.app_context():
        iso = datetime.fromtimestamp(clock.now - 60, timezone.utc).isoformat()
        assert ">1 min ago</time>" in web.reltime(iso.replace("+00:00", "Z"))
        assert "—" in web.reltime(None)
        assert "nothing due" in web.reltime(None, empty="nothing due")


@pytest.mark.parametrize("typed, value", [
    ("42", 42), ("4.5", 4.5), ("true", True), ("null", None), ('"quoted"', "quoted"),
    ("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}), ("hello", "hello"), ("  73 ", 73),
    ("{not json", "{not json"), ("", None),
])
def test_an_event_value_is_json_if_it_parses_else_text(typed, value):
    assert web.parse_value(typed) == value


def test_json_for_people_is_indented_and_keeps_unicode():
    assert web.pretty({"name": "Zoë", "n": [1]}) == '{\n  "name": "Zoë",\n  "n": [\n    1\n  ]\n}'
    assert web.compact({"a": "x" * 500}, limit=20).endswith("…")


def test_the_secret_key_is_made_once_and_kept_in_the_instance_folder(make_app, tmp_path):
    first = make_app().config["SECRET_KEY"]
    kept = (tmp_path / "instance" / "secret_key").read_text().strip()
    assert first == kept and len(first) >= 32
    assert make_app().config["SECRET_KEY"] == first


def test_unknown_pages_are_html_and_unknown_api_routes_json(client):
    page = client.get("/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert client.get("/api/nowhere").json["error"]["code"] == "not_found"


def test_the_payload_limit_is_the_request_limit(make_app):
    app = make_app(TINYFLOW_MAX_PAYLOAD=2048)
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    client = app.test_client()
    client.get("/workflows")
    response = client.post("/workflows", data={"state": "x" * 5000})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
