"""Step-transition diagrams: audit log (or a flow alone) -> graph model -> DOT -> SVG.

``build()`` models a workflow's history over its flow's static graph, ``static()`` a flow
alone, ``fleet()`` every workflow of a flow from its statistics; a model's ``dot`` is its Graphviz source (``dot.to_dot``) and ``svg()`` renders it
through the process's ``renderer`` (WebAssembly Graphviz in-process, or ``TINYFLOW_DOT``).

Modules: ``history`` (what an audit log says), ``model`` (nodes and edges), ``dot`` (styles
and labels), ``words`` (durations, waits, failures), ``render`` (DOT -> SVG and its cache).
"""
from __future__ import annotations

from . import words
from .history import StepFacts
from .model import (AUDIT_OFF_NOTE, HEAT_SHARES, KEYS_NOTE, NO_LOG_NOTE, NO_STATIC_NOTE,
                    Diagram, FleetFacts, Node, build, fleet, static)
from .render import DiagramError, Renderer, render_svg, renderer, warm_up

__all__ = ["build", "static", "fleet", "Diagram", "Node", "FleetFacts", "HEAT_SHARES", "StepFacts", "DiagramError", "Renderer",
           "renderer", "render_svg", "warm_up", "words", "AUDIT_OFF_NOTE", "KEYS_NOTE",
           "NO_LOG_NOTE", "NO_STATIC_NOTE"]
