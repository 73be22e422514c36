"""Versions of a flow's code, and the workflows that started on another one (DESIGN.md
"Versions: changing code under running workflows").

A flow class's ``version`` is its own ``version`` attribute, else a short hash of its
definition (steps, transitions, handlers, static keys). A stored workflow records the version
it started on (``flow_version``; None for a row older than versions: unknown, run by any).
The loaded class runs it as it is when it is that version or one of ``compatible_versions``;
else, if the class has a classmethod ``migrate(snapshot, from_version)``, the snapshot it
returns (the workflow then records the loaded version); else the workflow is *held*: runners
leave it, commands that would run its code answer 409 ``version_mismatch`` (cancel works),
until compatible code is loaded or it is migrated (``tiny-workflow migrate``). A migration
that fails keeps its error on the row (``migrate_error``) and holds the workflow too.
"""
from __future__ import annotations

import copy

from .. import store as storage
from .errors import VersionMismatch


def accepted(cls) -> tuple[str, ...]:
    """The versions ``cls`` runs as they are: its own and its ``compatible_versions``."""
    return (cls.version, *getattr(cls, "compatible_versions", ()))


def migrates(cls) -> bool:
    return callable(getattr(cls, "migrate", None))


def claim_spec(flows: dict) -> dict:
    """What ``Store.claim_due`` may claim: ``{flow: (accepted versions, migrates)}``."""
    return {name: (accepted(cls), migrates(cls)) for name, cls in flows.items()}


def held(cls, record: storage.Record) -> str | None:
    """Why ``record`` is held by the loaded class ``cls`` (None: not held)."""
    if cls is None:
        return None                 # its flow is not loaded here: not a matter of versions
    found = record.flow_version
    if found is None or found in accepted(cls):
        return None
    if record.migrate_error:
        return (f"started on version {found} of {record.flow}; the loaded code is version "
                f"{cls.version}, and its migrate() failed: {record.migrate_error}. Fix "
                f"migrate() and run tiny-workflow migrate {record.flow}, deploy code that "
                f"accepts version {found}, or cancel it")
    if migrates(cls):
        return None                 # migrated when it next runs
    return (f"started on version {found} of {record.flow}; the loaded code is version "
            f"{cls.version} and accepts {', '.join(accepted(cls))}. Deploy code that accepts "
            f"version {found} (compatible_versions) or migrates it (migrate(), then "
            f"tiny-workflow migrate {record.flow}), or cancel it")


class MigrateFailed(Exception):
    """``cls.migrate`` raised, or returned a snapshot the class cannot load."""


def migrated(cls, doc: dict, from_version: str | None):
    """The engine instance of snapshot ``doc`` migrated by ``cls.migrate`` (MigrateFailed)."""
    try:
        result = cls.migrate(copy.deepcopy(doc), from_version)
        if not isinstance(result, dict):
            raise TypeError(f"migrate() returned {type(result).__name__}, not a snapshot")
        return cls.from_json({**result, "logs": []})
    except Exception as error:  # noqa: BLE001 - a flow's own code: any error holds it
        raise MigrateFailed(f"{type(error).__name__}: {error}") from error


def mismatch(cls, record: storage.Record) -> VersionMismatch:
    return VersionMismatch(f"workflow {record.id!r} is held: {held(cls, record)}")


def note(wf, from_version: str | None, to_version: str, now: float) -> None:
    """Log a migration in the workflow's audit log, at ``now``."""
    wf._Workflow__set_now(now)
    wf.log("migrated", from_version=from_version, to_version=to_version)
