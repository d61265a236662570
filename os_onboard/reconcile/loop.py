"""``watch``: reconcile passes woken by the hypervisors' change feeds.

Level-triggered like kopf's reconcile loop: an event only says "look now";
every pass compares the whole current state, so a lost event, a restart of
the watcher (also after kill -9) or of libvirtd costs at most one period.
The periodic pass is the safety net; events cut the latency to about a
second. A burst of events (a live migration emits four) is collapsed into
one pass by waiting ``settle`` seconds after the first.

Faults: a pass that fails, or leaves drift queued because OpenStack could
not take it, is retried with exponential backoff (2 s, 4 s, ... at most
``max_retry`` and never later than one period), so a down API is neither
hammered nor waited on for a whole period once it is back. A change feed
whose libvirtd went away reconnects by itself (events.py) and wakes a pass
when it is back, since events may have been missed; a feed that fails in
any other way is restarted with backoff. Nothing ends the watch but
``stop``. A pass that deferred a decision (a shutdown inside its grace)
says when it is due, and the next pass runs then, not a period later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from os_onboard.drivers.registry import driver_for
from os_onboard.exceptions import OnboardError

LOG = logging.getLogger(__name__)


class Backoff:
    """Delays of consecutive failures: ``first``, twice that, ... at most ``cap``."""

    def __init__(self, first: float = 2.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; the delay before the next attempt."""
        self.failures += 1
        return min(self.cap, self.first * 2 ** min(self.failures - 1, 30))

    def succeeded(self) -> int:
        """Reset; how many failures came before."""
        failures, self.failures = self.failures, 0
        return failures


def _feed(uri: str, stop: threading.Event, wake: Callable[[str], None],
          backoff: Backoff | None = None) -> None:
    backoff = backoff or Backoff(first=1.0, cap=60.0)
    feed_cls = driver_for(uri).change_feed
    if feed_cls is None:
        LOG.info("%s has no change feed: periodic passes only", uri)
        return
    feed = feed_cls(uri)
    while not stop.is_set():
        try:
            for event in feed.watch(stop):
                backoff.succeeded()
                wake(" ".join(filter(None, (event.kind.value, event.vm_name, "on", uri))))
            return  # the feed ends only when stop is set
        except OnboardError as exc:  # e.g. libvirtd not running when the feed starts
            delay = backoff.failed()
            LOG.warning("change feed of %s: %s; reconnecting in %g s", uri, exc, delay)
        except Exception:  # a bug in a feed must not end it for good
            delay = backoff.failed()
            LOG.exception("change feed of %s failed; restarting it in %g s", uri, delay)
        stop.wait(delay)


def _settle_of(uri: str) -> float:
    try:
        feed = driver_for(uri).change_feed
    except OnboardError:
        return 1.0
    return feed.settle if feed else 1.0


@dataclass(frozen=True)
class PassReport:
    """What a pass tells the loop: why to retry with backoff ("" when no need),
    and when something it had to defer may be decided (sooner than the period)."""

    retry: str = ""
    recheck_in: float | None = None


def watch(uris: Iterable[str], run_pass: Callable[[str], PassReport], stop: threading.Event,
          interval: float = 60.0, settle: float | None = None, retry_first: float = 2.0,
          max_retry: float = 30.0,
          feed: Callable[[str, threading.Event, Callable[[str], None]], None] = _feed) -> int:
    """Run passes until ``stop`` is set; returns how many ran.

    ``run_pass(cause)`` returns a :class:`PassReport`, or raises.
    """
    uris = list(uris)
    if settle is None:  # the longest burst any of the watched feeds makes
        settle = max((_settle_of(uri) for uri in uris), default=1.0)
    woken = threading.Event()
    causes: list[str] = []
    lock = threading.Lock()

    def wake(cause: str) -> None:
        with lock:
            causes.append(cause)
        woken.set()

    for uri in uris:
        threading.Thread(target=feed, args=(uri, stop, wake), daemon=True,
                         name=f"feed {uri}").start()
    backoff = Backoff(retry_first, min(max_retry, interval))
    passes = 0
    cause = "start"
    while not stop.is_set():
        retry, recheck = "", None
        try:
            report = run_pass(cause)
            retry, recheck = report.retry, report.recheck_in
        except OnboardError as exc:  # e.g. OpenStack down before any records were read
            retry = f"reconcile pass failed: {exc}"
        except Exception as exc:  # a bug must not end the service; say so loudly
            LOG.exception("reconcile pass crashed")
            retry = f"reconcile pass crashed: {type(exc).__name__}: {exc}"
        passes += 1
        if retry:
            wait = backoff.failed()
            LOG.error("%s; retry %d in %g s (backoff, at most %g s)", retry,
                      backoff.failures, wait, backoff.cap)
        else:
            failures = backoff.succeeded()
            if failures:
                LOG.warning("reconcile pass succeeded after %d failed attempt(s); "
                            "queue empty", failures)
            wait = interval
            if recheck is not None and recheck < interval:
                # e.g. a shutdown recorded once its grace is over, not a period later
                wait = max(recheck, settle)
        deadline = time.monotonic() + wait
        while not (stop.is_set() or woken.is_set()) and (left := deadline - time.monotonic()) > 0:
            woken.wait(min(0.5, left))  # short waits: a stop request is seen within 0.5 s
        if stop.is_set():
            break
        if woken.is_set():
            stop.wait(settle)
            with lock:
                cause = "event: " + "; ".join(dict.fromkeys(causes))[:200]
                causes.clear()
            woken.clear()
        elif retry:
            cause = f"retry {backoff.failures}"
        elif wait < interval:
            cause = "recheck of a deferred drift"
        else:
            cause = "periodic pass"
    return passes
