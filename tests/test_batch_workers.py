"""A batch carried out by `tiny-workflow worker` processes: one killed with SIGKILL in the
middle of a 10,000-workflow batch, another finishing it; each workflow acted on exactly once,
on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import signal
from dataclasses import asdict

from sqlalchemy import func, select

from test_runtime_workers import finish, start_worker, wait_until
from test_stats import counters, recounted
from webapp import runtime
from webapp.store import EVENT_KEY, LOG, WORKFLOW, db

N = 10_000
FLOWS = ["flows", "batch_flows"]


def clone_tallies(n: int) -> None:
    """``n`` waiting tally workflows: one started through the runtime, the rest its copies
    (written in one transaction, as an import is)."""
    rt = runtime.current()
    first = runtime.start("tally", id="t00000")
    row = {k: v for k, v in asdict(first).items() if k != "note"}
    logs = [dict(r._mapping) for r in rt.store.log_rows("t00000")]
    rows, log_rows = [], []
    for i in range(1, n):
        id = f"t{i:05}"
        rows.append({**row, "id": id})
        log_rows += [{**entry, "workflow_id": id} for entry in logs]
    rt.store.insert_many(rows, log_rows)


def take_over(url: str, tmp_path) -> None:
    """Past a killed worker's leases (60 s), a new worker takes the batch over and finishes
    it."""
    second = start_worker(url, tmp_path, "--exit-when-idle",
                          TINYFLOW_FLOWS=",".join(FLOWS), TINYFLOW_CLOCK_OFFSET="120")
    finish(second, tmp_path, timeout=600)


def finished_batch(id: str, entry: str) -> dict[str, int]:
    """Check batch ``id`` finished with every workflow done; how many ``entry`` audit-log
    entries each workflow has."""
    record = runtime.current().batch(id)
    assert (record.status, record.total, record.done, record.skipped, record.failed) == (
        "finished", N, N, 0, 0)
    return dict(db.session.execute(
        select(LOG.c.workflow_id, func.count()).where(LOG.c.type == entry)
        .group_by(LOG.c.workflow_id)).all())


def test_a_batch_survives_kill_9_and_acts_on_each_workflow_once(make_app, any_db_url,
                                                                  tmp_path, capsys):
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)
    with app.app_context():
        clone_tallies(N)
        batch = runtime.current().create_batch("send", filter={"flow": ["tally"]},
                                               event={"name": "ping"}, confirm=True)
        assert batch.total == N
        db.session.remove()

    def progress():
        """(items settled, workflows that got the batch's event) as the database has them."""
        with app.app_context():
            record = runtime.current().batch(batch.id)
            keys = db.session.execute(select(func.count()).select_from(EVENT_KEY).where(
                EVENT_KEY.c.key == f"batch:{batch.id}")).scalar()
            db.session.remove()
            return record.done + record.skipped + record.failed, keys

    first = start_worker(any_db_url, tmp_path, TINYFLOW_FLOWS=",".join(FLOWS))
    try:
        # Killed in the middle of a chunk: some of its sends committed, their outcomes not.
        wait_until(lambda: (lambda s, k: s >= 2_000 and k >= s + 50)(*progress()), tmp_path,
                   timeout=300)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill, sent_at_kill = progress()
    assert at_kill < sent_at_kill < N, "the kill should cut a chunk in the middle"
    take_over(any_db_url, tmp_path)

    with app.app_context():
        received = finished_batch(batch.id, "event_received")
        session = db.session
        keys = session.execute(select(func.count()).select_from(EVENT_KEY).where(
            EVENT_KEY.c.key == f"batch:{batch.id}")).scalar()
        states = [json.loads(s) for s in session.execute(select(WORKFLOW.c.state)).scalars()]
        statuses = set(session.execute(select(WORKFLOW.c.status)).scalars())
        leased = session.execute(select(func.count()).select_from(WORKFLOW).where(
            WORKFLOW.c.lease_owner.is_not(None))).scalar()
    assert len(received) == N and set(received.values()) == {1}     # each got it once
    assert keys == N
    assert sorted({s["pings"] for s in states}) == [1]
    assert statuses == {"waiting"} and leased == 0
    with capsys.disabled():
        print(f"\n[{any_db_url.split(':')[0]}] kill -9 with {at_kill:,} of {N:,} settled and "
              f"{sent_at_kill:,} sent ({sent_at_kill - at_kill} sent, not yet recorded); the "
              f"second worker settled {N - at_kill:,}; {len(received):,} workflows got the "
              f"event exactly once ({sum(received.values()):,} deliveries)")


def test_a_cancel_batch_survives_kill_9_and_cancels_each_workflow_once(make_app, any_db_url,
                                                                        tmp_path, capsys):
    """A bulk cancel writes each chunk's changes and outcomes in one transaction: killed in
    the middle, the next worker goes on from the first unsettled workflow; none is
    cancelled twice, and the flow statistics still equal a recount of the logs."""
    app = make_app(any_db_url, TINYFLOW_FLOWS=FLOWS)

    with app.app_context():
        clone_tallies(N)
        runtime.current().rebuild_stats()        # the clones were written without counters
        batch = runtime.current().create_batch("cancel", filter={"flow": ["tally"]},
                                               reason="closing the campaign", confirm=True)
        assert batch.total == N
        db.session.remove()

    def settled() -> int:
        with app.app_context():
            record = runtime.current().batch(batch.id)
            db.session.remove()
            return record.done + record.skipped + record.failed

    first = start_worker(any_db_url, tmp_path, TINYFLOW_FLOWS=",".join(FLOWS))
    try:
        wait_until(lambda: settled() >= 1_000, tmp_path, timeout=300)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = settled()
    assert at_kill < N, "the kill should come before the batch finished"
    take_over(any_db_url, tmp_path)

    with app.app_context():
        cancelled = finished_batch(batch.id, "cancelled")
        session = db.session
        statuses = set(session.execute(select(WORKFLOW.c.status)).scalars())
        leased = session.execute(select(func.count()).select_from(WORKFLOW).where(
            WORKFLOW.c.lease_owner.is_not(None))).scalar()
        db.session.remove()
    rt = app.extensions["tinyflow"]
    kept = counters(rt)
    assert recounted(rt) == kept                                    # equal to a recount
    assert len(cancelled) == N and set(cancelled.values()) == {1}   # each cancelled once
    assert statuses == {"cancelled"} and leased == 0
    with capsys.disabled():
        print(f"\n[{any_db_url.split(':')[0]}] cancel batch: kill -9 with {at_kill:,} of "
              f"{N:,} settled; the second worker settled {N - at_kill:,}; each of {N:,} "
              f"workflows cancelled exactly once")
