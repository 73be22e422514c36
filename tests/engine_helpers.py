"""Helpers shared by the engine's tests: a fixed clock, save and load, views of the audit log."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

# Every engine test runs on this clock (epoch seconds, 2023-11-14): nothing reads the real time.
T0 = 1_700_000_000.0
T0_MS = int(T0 * 1000)

# The original library's sample outputs, read in place (never copied into the project).
COMPAT = Path(__file__).resolve().parents[2] / "shared" / "compat"


def reload(wf, *, drop_logs: bool = False):
    """``wf`` saved and loaded as a store does it: through JSON text.

    With ``drop_logs`` the audit log is left out, as a runtime that stores log rows apart does.
    """
    data = json.loads(json.dumps(wf.to_json()))
    if drop_logs:
        data["logs"] = []
    return type(wf).from_json(data)


def dumps(wf) -> str:
    """The whole snapshot as JSON text: equal texts mean equal documents, key order included."""
    return json.dumps(wf.to_json())


def log_types(wf) -> list[str]:
    return [entry["type"] for entry in wf.to_json()["logs"]]


def logs_without_at(wf) -> list[dict]:
    """The audit log without its ``_at`` times (the original's tests strip them too)."""
    return [{k: v for k, v in entry.items() if k != "_at"} for entry in wf.to_json()["logs"]]


def logs_of(wf, kind: str) -> list[dict]:
    """The ``values`` of every audit-log entry of type ``kind``."""
    return [entry["values"] for entry in wf.to_json()["logs"] if entry["type"] == kind]


def mock_resume_ids(monkeypatch, cls, start: int = 0):
    """Make ``cls`` give resumeIds ``<key>-<n>`` counting from ``start`` (the original's
    ``mockResumeIdSeq``); the counter goes on across reloads of the same class."""
    counter = itertools.count(start)
    monkeypatch.setattr(cls, "_resume_id", lambda self, key: f"{key}-{next(counter)}")
    return counter


def only_pending(wf) -> dict:
    """The one open wait of ``wf`` (fails the test when there is not exactly one)."""
    pending = wf.pending()
    assert len(pending) == 1, pending
    return pending[0]


def resume_ids(wf) -> list[str]:
    return [entry["resumeId"] for entry in wf.to_json()["system"].values()]
