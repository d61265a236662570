"""``watch``: reconcile passes woken by the hypervisors' change feeds.

Level-triggered like kopf's reconcile loop: an event only says "look now";
every pass compares the whole current state, so a lost event, a restart of
the watcher (also after kill -9) or of libvirtd costs at most one period.
The periodic pass is the safety net; events cut the latency to about a
second. A burst of events (a live migration emits four) is collapsed into
one pass by waiting ``settle`` seconds after the first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from os_onboard.discovery.loader import driver_for
from os_onboard.exceptions import OnboardError

LOG = logging.getLogger(__name__)


def _feed(uri: str, stop: threading.Event, wake: Callable[[str], None]) -> None:
    driver = driver_for(uri)(uri)
    while not stop.is_set():
        try:
            for event in driver.watch(stop):
                wake(f"{event.kind.value} {event.vm_name or ''} on {uri}".strip())
        except NotImplementedError:
            LOG.info("%s has no change feed: periodic passes only", uri)
            return
        except OnboardError as exc:  # first connection failed: retry later
            LOG.warning("watch %s: %s", uri, exc)
            stop.wait(10)


def watch(uris: Iterable[str], run_pass: Callable[[str], object], stop: threading.Event,
          interval: float = 60.0, settle: float = 1.0) -> int:
    """Run passes until ``stop`` is set; returns how many ran."""
    woken = threading.Event()
    causes: list[str] = []
    lock = threading.Lock()

    def wake(cause: str) -> None:
        with lock:
            causes.append(cause)
        woken.set()

    for uri in uris:
        threading.Thread(target=_feed, args=(uri, stop, wake), daemon=True,
                         name=f"feed {uri}").start()
    passes = 0
    cause = "start"
    while not stop.is_set():
        try:
            run_pass(cause)
        except OnboardError as exc:  # e.g. OpenStack down: the next pass retries
            LOG.warning("reconcile pass failed (%s); retrying in %.0f s", exc, interval)
        passes += 1
        deadline = time.monotonic() + interval
        while not (stop.is_set() or woken.is_set()) and time.monotonic() < deadline:
            woken.wait(0.5)  # short waits: a stop request is seen within half a second
        if stop.is_set():
            break
        if woken.is_set():
            stop.wait(settle)
            with lock:
                cause = "event: " + "; ".join(dict.fromkeys(causes))[:200]
                causes.clear()
            woken.clear()
        else:
            cause = "periodic pass"
    return passes
