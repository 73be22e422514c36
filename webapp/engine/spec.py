"""A flow class's definition: steps, event handlers, static transitions (read with ``ast``)."""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import re
import textwrap
from dataclasses import dataclass

RESERVED = frozenset({
    "run", "exec", "send", "resolve", "cancel", "retry", "pending", "wake_at", "log", "now",
    "action", "sleep", "sleep_until", "wait_event", "step", "state", "status", "to_json",
    "from_json",
})


class FlowDefinitionError(TypeError):
    """A workflow class is malformed (unknown next step, reserved name, no steps...)."""


@dataclass(frozen=True)
class FlowSpec:
    """What the engine knows about a flow class, before any instance exists."""

    name: str
    first_step: str
    steps: tuple[str, ...]
    transitions: dict[str, list[str]] | None  # None where no source could be read
    handlers: dict[str, str]
    doc: str
    # step -> {"action": [keys], "sleep": [...], "wait_event": [...]}: the literal keys (an
    # f-string key shows as its source text, e.g. "event_ask_{count}")
    keys: dict[str, dict[str, list[str]]] | None = None
    # event name -> an example payload its handler takes (``@on_event(name, example=...)``)
    examples: dict[str, object] | None = None
    # dotted paths into the state whose values are indexed for search (not in ``version``:
    # what is indexed does not change what a stored workflow needs)
    search_attributes: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """A short hash of what a stored workflow depends on: the steps, the transitions,
        the event handlers and the static keys of each step's commands (their order, the
        first step, the docs and the code between them do not count)."""
        keys = {step: {kind: sorted(found) for kind, found in kinds.items()}
                for step, kinds in (self.keys or {}).items()}
        definition = {"steps": sorted(self.steps), "handlers": self.handlers, "keys": keys,
                      "transitions": {n: sorted(t) for n, t in (self.transitions or {}).items()}}
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def step(fn=None, *, next=None):
    """Mark a method as a step. ``@step(next=[...])`` declares the steps it may return
    when its returns are not all string literals."""
    def mark(f):
        f._tw_step = tuple(next) if next is not None else None
        return f
    return mark(fn) if fn is not None else mark


def on_event(name: str, *, example=None):
    """Mark ``handler(self, payload)`` as the handler of events called ``name``.

    ``example`` (JSON) is a payload the handler accepts: the dashboard shows it as the event
    form's placeholder and help, so a sender knows what to send."""
    if not isinstance(name, str) or not name:
        raise FlowDefinitionError("on_event needs an event name")

    def mark(f):
        f._tw_event = name
        f._tw_example = example
        return f
    return mark


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def build_spec(cls) -> FlowSpec:
    """Collect and check the definition of workflow class ``cls`` (raises FlowDefinitionError)."""
    own = vars(cls)
    clash = sorted(RESERVED.intersection(own))
    if clash:
        raise FlowDefinitionError(
            f"{cls.__name__} defines {', '.join(clash)}: reserved by the engine's API")
    steps: dict[str, tuple | None] = {}
    handlers: dict[str, str] = {}
    examples: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if hasattr(value, "_tw_step"):
                steps[attr] = value._tw_step
            if hasattr(value, "_tw_event"):
                handlers[value._tw_event] = attr
                if getattr(value, "_tw_example", None) is not None:
                    examples[value._tw_event] = value._tw_example
                else:
                    examples.pop(value._tw_event, None)
    if not steps:
        raise FlowDefinitionError(f"{cls.__name__} has no @step methods")
    first = own.get("first_step") or getattr(cls, "first_step", None) or next(iter(steps))
    if first not in steps:
        raise FlowDefinitionError(f"{cls.__name__}.first_step {first!r} is not a step")
    name = own.get("name") or snake_case(cls.__name__)
    trees = _step_trees(cls, steps)
    return FlowSpec(name=name, first_step=first, steps=tuple(steps),
                    transitions=_transitions(cls, steps, trees), handlers=handlers,
                    doc=inspect.cleandoc(cls.__doc__ or ""), examples=examples,
                    keys=None if trees is None else {n: command_keys(t) for n, t in trees.items()},
                    search_attributes=search_paths(cls))


MAX_PATH = 200       # a search attribute's path: what the index's path column holds


def search_paths(cls) -> tuple[str, ...]:
    """``cls.search_attributes`` checked: dotted paths into the state (``"plan.tier"``), each
    part a non-empty key, at most MAX_PATH characters, none twice."""
    declared = getattr(cls, "search_attributes", ())
    if isinstance(declared, str) or not isinstance(declared, (tuple, list)):
        raise FlowDefinitionError(
            f"{cls.__name__}.search_attributes must be a tuple of dotted paths into the state, "
            f'like ("userEmail", "plan.tier"), not {declared!r}')
    for path in declared:
        if (not isinstance(path, str) or not path or len(path) > MAX_PATH
                or any(not part or part != part.strip() for part in path.split("."))
                or re.search("[\x00-\x1f\ud800-\udfff]", path)):
            raise FlowDefinitionError(
                f"{cls.__name__}.search_attributes: {path!r} is not a dotted path into the "
                f"state (keys joined by '.', like \"plan.tier\", at most {MAX_PATH} "
                "characters)")
    if len(set(declared)) != len(declared):
        raise FlowDefinitionError(f"{cls.__name__}.search_attributes names a path twice")
    return tuple(declared)


def _step_trees(cls, steps) -> dict | None:
    """Each step method's parsed source, or None where no source can be read (a REPL)."""
    trees = {}
    for name in steps:
        try:
            trees[name] = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, name)))).body[0]
        except (OSError, TypeError, SyntaxError):
            return None
    return trees


COMMANDS = ("action", "sleep", "sleep_until", "wait_event")


def command_keys(fn_node) -> dict[str, list[str]]:
    """The keys given to ``self.action/sleep/sleep_until/wait_event`` calls in a function."""
    found: dict[str, list[str]] = {"action": [], "sleep": [], "wait_event": []}
    for node in ast.walk(fn_node):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in COMMANDS and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "self" and node.args):
            arg = node.args[0]
            key = arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg)
            if isinstance(arg, ast.JoinedStr):
                key = ast.unparse(arg)[2:-1]
            kind = "sleep" if node.func.attr == "sleep_until" else node.func.attr
            found[kind].append(str(key))
    return found


def _transitions(cls, steps: dict[str, tuple | None], trees) -> dict[str, list[str]] | None:
    if trees is None:
        return None  # typed into a REPL: checked at run time instead
    result: dict[str, list[str]] = {}
    for name, declared in steps.items():
        fn = getattr(cls, name)
        literal, dynamic = _returns(trees[name])
        if dynamic and declared is None:
            raise FlowDefinitionError(
                f"{cls.__name__}.{name} returns a computed step name on line "
                f"{dynamic[0] + fn.__code__.co_firstlineno - 1}; declare @step(next=[...])")
        targets = list(dict.fromkeys([*literal, *(declared or ())]))
        unknown = [t for t in targets if t not in steps]
        if unknown:
            raise FlowDefinitionError(
                f"{cls.__name__}.{name} can return {unknown[0]!r}, which is not a step of "
                f"{cls.__name__} (steps: {', '.join(steps)})")
        result[name] = targets
    return result


def _returns(fn_node) -> tuple[list[str], list[int]]:
    """String literals a function returns, and line numbers of returns that are not literals."""
    literal: list[str] = []
    dynamic: list[int] = []

    def value(node, line):
        if node is None or (isinstance(node, ast.Constant) and node.value is None):
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            literal.append(node.value)
        elif isinstance(node, ast.IfExp):
            value(node.body, line)
            value(node.orelse, line)
        else:
            dynamic.append(line)

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue  # their returns are not the step's
            if isinstance(child, ast.Return):
                value(child.value, child.lineno)
            walk(child)

    walk(fn_node)
    return literal, dynamic
