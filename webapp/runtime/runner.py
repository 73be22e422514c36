"""The runner: a loop that claims and runs what is due (timers, retries, runs whose worker
died). ``work(burst=True)`` returns once nothing is due, as rq's workers do; the dashboard runs
``work()`` in a background thread, ``tiny-workflow worker`` in its main thread (adding
signals)."""
from __future__ import annotations

import logging
import threading

from .core import Runtime, owner_id
from .errors import Unavailable

log = logging.getLogger("webapp.runtime")


class Runner:
    """Runs ``rt.run_due`` in a loop until stopped."""

    def __init__(self, rt: Runtime, *, interval: float = 1.0, batch: int = 20,
                 owner: str | None = None, schedule_batch: int | None = None):
        self.rt = rt
        # due schedules fired in one transaction (TINYFLOW_SCHEDULE_BATCH)
        self.schedule_batch = schedule_batch or int(rt.settings["TINYFLOW_SCHEDULE_BATCH"])
        self.interval = interval
        self.batch = batch
        self.owner = owner or owner_id("runner")
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def tick(self) -> int | None:
        """One pass: fire the due schedules, settle a chunk of a batch, then run what is due;
        how many schedules were advanced, batch items settled and workflows ran; None when
        the database was too busy to tell."""
        try:
            fired = self.rt.fire_due_schedules(limit=self.schedule_batch)
        except Unavailable:
            fired = None         # busy is not idle: the workflows may still be run
        try:
            settled = self.rt.run_batches(owner=self.owner)
        except Unavailable:
            settled = None
        try:
            ran = self.rt.run_due(limit=self.batch, owner=self.owner)
        except Unavailable:
            return None          # busy is not idle: try again shortly
        return ran + (fired or 0) + (settled or 0)

    def work(self, burst: bool = False) -> int:
        """Run what is due until ``stop()`` (``burst``: or until nothing is due); how many
        workflow runs it made."""
        total = 0
        while not self.stopped.is_set():
            try:
                ran = self.tick()
            except Exception:
                log.exception("the runner's pass failed")
                ran = 0
            total += ran or 0
            if ran == 0 and burst:
                break
            if not ran:
                self.stopped.wait(self.interval)
        return total

    def start(self) -> Runner:
        """Run ``work()`` in a daemon thread (the web app's background runner)."""
        self.thread = threading.Thread(target=self.work, name="tiny-workflow-runner",
                                       daemon=True)
        self.thread.start()
        return self

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to stop after the pass it is in; wait for its thread (``timeout``)."""
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
