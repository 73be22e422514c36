"""The durable workflow engine: pure Python, no web, no database.

A workflow is a class of steps; its whole life is one JSON document (the original
TypeScript library's snapshot format), so it can be stopped and resumed anywhere.
"""
from .commands import Checkpoint, EventTimeout, Retry, WorkflowClosed
from .schedule import Schedule
from .spec import FlowDefinitionError, FlowSpec, on_event, step
from .workflow import Status, Workflow

__all__ = [
    "Checkpoint",
    "EventTimeout",
    "FlowDefinitionError",
    "FlowSpec",
    "Retry",
    "Schedule",
    "Status",
    "Workflow",
    "WorkflowClosed",
    "on_event",
    "step",
]
