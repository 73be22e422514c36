"""Search attributes: the values a flow's ``search_attributes`` name, indexed at every commit
(by ``unit.Job``, keys as ``rules.search_key`` makes them); here, what list items show and
the commands that index existing workflows again."""
from __future__ import annotations

import json

from .rules import lookup, state_keys
from .unit import public

def attributes(cls, state_text: str) -> dict:
    """A list item's ``attributes``: ``{path: value}`` of ``cls``'s declared paths (None
    where nothing is there); ``{}`` for a flow not loaded or declaring none."""
    paths = getattr(cls, "search_attributes", ()) if cls is not None else ()
    if not paths:
        return {}
    try:
        state = json.loads(state_text)
    except ValueError:
        state = None
    return {path: lookup(state, path) for path in paths}


class SearchCommands:
    """The runtime's commands on the search index (mixed into ``Commands``)."""

    REINDEX_CHUNK = 1000

    @public
    def sync_search_index(self) -> list[str]:
        """Index the workflows of each loaded flow whose declared paths are not what its
        workflows are indexed by (a database made before search attributes, or a flow that
        changed its ``search_attributes``); the flows indexed."""
        indexed = self.store.indexed_paths()
        stale = [name for name, cls in sorted(self.flows.items())
                 if sorted(cls.search_attributes) != sorted(indexed.get(name, ()))]
        for name in stale:
            self.reindex(name)
        return stale

    @public
    def reindex(self, flow: str | None = None, progress=None) -> dict[str, int]:
        """Index again every workflow of ``flow`` (every loaded flow when None) by its
        declared paths, ``REINDEX_CHUNK`` at a time; ``{flow: workflows indexed}``.
        ``progress(flow, n)`` is told after each chunk."""
        names = [flow] if flow is not None else sorted(self.flows)
        if flow is not None:
            self.flow_class(flow)                   # NotFound for a flow not loaded
        done = {}
        for name in names:
            paths = self.flows[name].search_attributes
            n, after = 0, ""
            while paths:
                after, found = self.store.reindex(name, paths, lambda text: state_keys(paths, text),
                                                  after, self.REINDEX_CHUNK)
                n += found
                if progress is not None and found:
                    progress(name, n)
                if found < self.REINDEX_CHUNK:
                    break
            self.store.set_indexed(name, paths)
            done[name] = n
        return done
