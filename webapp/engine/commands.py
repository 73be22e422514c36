"""What a step yields (commands), what the engine yields back (checkpoints), and its errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple


class WorkflowClosed(Exception):
    """The workflow's status does not allow this (it is finished, cancelled or failed)."""


class EventTimeout(Exception):
    """Raised inside a step when an awaited event's deadline passed before it arrived."""

    def __init__(self, key: str, timeout_at: int):
        super().__init__(f"event {key!r} did not arrive before its deadline")
        self.key = key
        self.timeout_at = timeout_at


class Checkpoint(NamedTuple):
    """A point where a runtime may persist: ``kind`` is "action", "transition" or "wait"."""

    kind: str
    step: str
    key: str | None = None


@dataclass(frozen=True)
class Retry:
    """How a failing action is retried (Temporal's names). Delays are in seconds."""

    maximum_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    non_retryable: tuple = ()

    def __post_init__(self):
        if self.maximum_attempts < 1:
            raise ValueError("maximum_attempts must be at least 1")
        object.__setattr__(self, "non_retryable", tuple(self.non_retryable))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.initial_interval * self.backoff_coefficient ** (attempt - 1),
                   self.maximum_interval)

    def retryable(self, exc: BaseException) -> bool:
        """False when ``exc`` is (a subclass of) one of ``non_retryable`` (classes or names)."""
        names = {c.__name__ for c in type(exc).__mro__}
        for item in self.non_retryable:
            if isinstance(item, str) and item in names:
                return False
            if isinstance(item, type) and isinstance(exc, item):
                return False
        return True


DEFAULT_RETRY = Retry()


@dataclass
class Action:
    key: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    retry: Retry | None = None


@dataclass
class Sleep:
    key: str
    until_ms: int | None = None     # absolute due time, or
    seconds: float | None = None    # relative to the run's now at registration


@dataclass
class WaitEvent:
    key: str
    request: Any = None
    timeout: float | None = None
    example: Any = None             # a payload the step accepts (shown to senders)


class NonJSONResult(TypeError):
    """An action returned something that cannot be stored as JSON (never retried)."""
