"""``os-onboard watch`` for the latency benchmark: as shipped, with a trace of each pass.

    python watch_child.py [--no-events] URI... --policy tolerate --interval S

The CLI, its loop and its pass are the shipped ones. Timers wrapped around
the functions a pass calls print one ``TRACE {json}`` line per call to
stderr (wall-clock start and end): the pass itself, discovery, reading the
records, and each run of the Nova-side helper. ``--no-events`` makes the
change feeds of :func:`os_onboard.reconcile.loop.watch` (one thread per host
turning libvirt events into wake-ups) no-ops: periodic passes only, the
benchmark's baseline.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def _no_feed(uri: str, stop: threading.Event, wake: Callable[[str], None]) -> None:
    """No events from this host: the watcher relies on its period alone."""


def _traced(what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            print("TRACE " + json.dumps({"what": what, "start": start, "end": time.time()}),
                  file=sys.stderr, flush=True)
    return wrapper


def main() -> int:
    import os_onboard.cli.reconcile as cli
    import os_onboard.reconcile.tolerate.base as tolerate_base
    from os_onboard.cli.main import main as cli_main
    from os_onboard.reconcile import loop
    from os_onboard.reconcile.resident import ResidentHelpers

    argv = sys.argv[1:]
    if "--no-events" in argv:
        argv.remove("--no-events")
        cli.watch = functools.partial(loop.watch, feed=_no_feed)
    cli._pass = _traced("pass", cli._pass)
    cli.discover_hosts = _traced("discover", cli.discover_hosts)
    cli.adopted_servers = _traced("records", cli.adopted_servers)
    tolerate_base.run_helper = _traced("nova helper", tolerate_base.run_helper)
    # watch keeps its helpers running between passes: trace those runs too
    ResidentHelpers.run = _traced("nova helper", ResidentHelpers.run)  # type: ignore[method-assign]
    return cli_main(["watch", *argv])


if __name__ == "__main__":
    sys.exit(main())
