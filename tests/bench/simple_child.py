"""A child process for instruction counts: ``python simple_child.py COUNT [NAME=VALUE ...]``
runs 100 ``simple`` workflows (warm-up), then COUNT more, through the runtime on a fresh
SQLite file with the app settings given (``on``/``off`` values as booleans).
``common.instructions_per_simple`` runs it under callgrind at two counts and divides."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def main() -> None:
    count = int(sys.argv[1])
    settings = {}
    for pair in sys.argv[2:]:
        name, _, value = pair.partition("=")
        settings[name] = {"on": True, "off": False}.get(value, value)
    app = common.make_app(common.scratch("tw-bench-child-") / "x.sqlite", **settings)
    from webapp import runtime

    with app.app_context(), common.quiet():
        for _ in range(100 + count):
            runtime.start("simple")


if __name__ == "__main__":
    main()
