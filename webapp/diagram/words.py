"""The words a diagram uses: durations, counts, waits and failures."""
from __future__ import annotations

from datetime import UTC, datetime


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def stats(f, *, long: bool = False) -> str:
    if f.visits is None:
        if long:
            return "visits unknown (audit log off)"
        return f"seen in {plural(f.entries, 'log entry', 'log entries')}" if f.entries else ""
    if not f.visits:
        return ""
    text = plural(f.visits, "visit")
    if f.total_ms is None:
        return text
    if not long:   # "0 ms" on a label is noise; the tooltip and the table keep it
        return f"{text}, {duration(f.total_ms)}" if f.total_ms >= 1 else text
    if f.visits == 1:
        return f"{text}; {duration(f.total_ms)}"
    return f"{text}; {duration(f.total_ms)} in all, {duration(f.mean_ms)} on average"


def duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, s = divmod(round(s), 60)
        return f"{m} min {s} s"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min"
    d, h = divmod(round(s / 3600), 24)
    return f"{d} d {h} h"


def when(ms) -> str | None:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return None


def wait_text(wait: dict) -> str:
    key = str(wait.get("key") or wait.get("resumeId") or "?")
    if wait.get("type") == "timer":
        what = f"retry of {key}" if wait.get("retry") else f"timer {key}"
        due = when(wait.get("resumeAfter"))
        return f"waiting for {what}" + (f", due {due}" if due else "")
    deadline = when(wait.get("timeoutAt"))
    return f"waiting for event {key}" + (f", times out {deadline}" if deadline else "")


def wait_badge(pending) -> list[str]:
    """Label lines for the open waits: the first one, and how many more."""
    if not pending:
        return ["waiting"]
    wait = pending[0]
    if wait.get("type") == "timer":
        lines = ["waiting for a retry of" if wait.get("retry") else "waiting for timer",
                 str(wait.get("key") or wait.get("resumeId") or "?")]
        due = when(wait.get("resumeAfter"))
        if due:
            lines.append(f"due {due}")
    else:
        lines = [f"waiting for event {wait.get('key') or wait.get('resumeId') or '?'}"]
    if len(pending) > 1:
        lines.append(f"and {plural(len(pending) - 1, 'more wait')}")
    return lines


def failure_text(error: dict | None) -> str:
    if not error:
        return "failed"
    where = f" in action {error['key']}" if error.get("key") else ""
    message = f": {error['message']}" if error.get("message") else ""
    return f"failed{where}: {error.get('type') or 'error'}{message}"
