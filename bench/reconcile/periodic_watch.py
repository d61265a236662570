"""``os-onboard watch`` with its change feeds switched off: periodic passes only.

    python periodic_watch.py URI... --policy tolerate --interval 30

The baseline of the latency benchmark. The CLI and its pass are the shipped
ones; only the ``feed`` of :func:`os_onboard.reconcile.loop.watch` (the
thread per host that turns libvirt events into wake-ups) is a no-op here.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable


def _no_feed(uri: str, stop: threading.Event, wake: Callable[[str], None]) -> None:
    """No events from this host: the watcher relies on its period alone."""


def main() -> int:
    import os_onboard.cli.reconcile as cli
    from os_onboard.cli.main import main as cli_main
    from os_onboard.reconcile import loop

    cli.watch = functools.partial(loop.watch, feed=_no_feed)
    return cli_main(["watch", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
