"""The flows a runtime knows: workflow classes found in the modules ``TINYFLOW_FLOWS`` names."""
from __future__ import annotations

import importlib
import pkgutil

from ..engine import Workflow


class FlowsError(RuntimeError):
    """A module of TINYFLOW_FLOWS cannot be loaded, or two flows share a name (one line)."""


def load_flows(modules) -> dict[str, type]:
    """``{name: WorkflowClass}`` of every flow defined in ``modules`` (a package: its modules
    too)."""
    if isinstance(modules, str):
        modules = [modules]
    flows: dict[str, type] = {}
    for name in filter(None, (m.strip() for m in modules)):
        loaded = [_import(name)]
        if hasattr(loaded[0], "__path__"):   # a package: its modules too
            loaded += [_import(f"{name}.{info.name}")
                       for info in pkgutil.iter_modules(loaded[0].__path__)]
        for module in loaded:
            for value in vars(module).values():
                if (isinstance(value, type) and issubclass(value, Workflow)
                        and value is not Workflow and hasattr(value, "__workflow__")):
                    other = flows.setdefault(value.__workflow__.name, value)
                    if other is not value:
                        raise FlowsError(
                            f"two flows are named {value.__workflow__.name!r}: "
                            f"{other.__module__}.{other.__qualname__} and "
                            f"{value.__module__}.{value.__qualname__}")
    return flows


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception as error:    # the flow module's own failure, whatever it is
        raise FlowsError(f"TINYFLOW_FLOWS: cannot import {name!r}: "
                         f"{type(error).__name__}: {error}") from None
