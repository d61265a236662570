"""Discover many hosts at once with a bounded pool and a per-host deadline.

Each host is read by its own driver instance on a worker thread (libvirt
releases the GIL while it waits on the network, so threads overlap the round
trips). A host that fails or does not answer before its deadline is reported
as unreachable; the others go on. Workers are daemon threads: a connect that
hangs in the kernel cannot keep the process alive after we gave up on it.
"""

from __future__ import annotations

import gc
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from os_onboard.drivers.base import DiscoveryOptions
from os_onboard.drivers.registry import driver_for
from os_onboard.exceptions import ConfigError, OnboardError
from os_onboard.inventory.conflicts import find_conflicts
from os_onboard.inventory.leases import join_leases_across_hosts
from os_onboard.inventory.models import (
    Host,
    HostInventory,
    HostStatus,
    Inventory,
    Problem,
    Severity,
)

#: Called after each host: (host inventory, hosts done, hosts total).
ProgressCallback = Callable[[HostInventory, int, int], None]


@dataclass(frozen=True)
class RunOptions:
    workers: int = 16
    host_timeout: float = 60.0
    discovery: DiscoveryOptions = field(default_factory=DiscoveryOptions)


def discover_hosts(uris: Iterable[str], options: RunOptions | None = None,
                   progress: ProgressCallback | None = None) -> Inventory:
    """Read every host; never raises for a single host's failure.

    :raises ConfigError: a URI no driver understands (checked before any I/O).
    """
    options = options or RunOptions()
    targets = list(dict.fromkeys(uris))  # de-duplicate, keep order
    drivers = {uri: driver_for(uri) for uri in targets}  # fail fast on bad URIs
    results: dict[str, HostInventory] = {}
    done: queue.Queue[tuple[str, HostInventory]] = queue.Queue()
    # Hosts served inside this process never wait: they get one worker per CPU
    # (libvirt's C code runs without the GIL beside our Python), the others share
    # the pool (see _in_process).
    remote: queue.Queue[str] = queue.Queue()
    local: queue.Queue[str] = queue.Queue()
    queue_of = {uri: local if _in_process(uri) else remote for uri in targets}
    for uri in targets:
        queue_of[uri].put(uri)
    started: dict[str, float] = {}
    lock = threading.Lock()

    def worker(pending: queue.Queue[str]) -> None:
        while True:
            try:
                uri = pending.get_nowait()
            except queue.Empty:
                return
            with lock:
                started[uri] = time.monotonic()
            done.put((uri, _read_one(uri, drivers[uri], options)))

    def spawn(pending: queue.Queue[str]) -> None:
        threading.Thread(target=worker, args=(pending,), daemon=True, name="discovery").start()

    n_remote = sum(1 for q in queue_of.values() if q is remote)
    for _ in range(min(max(1, options.workers), n_remote)):
        spawn(remote)
    for _ in range(min(max(1, options.workers), os.cpu_count() or 1, len(targets) - n_remote)):
        spawn(local)

    # Finished host inventories are long-lived: freezing them keeps the cyclic
    # GC from rescanning the growing result on every collection (measured:
    # ~1.6 s of pauses per 10,000 VMs without, ~0.4 s when frozen every 50
    # hosts). A freeze costs next to nothing, so after every host: each freeze
    # also resets the count that triggers full collections, and every 50 hosts
    # still left 0.16-0.28 ms/VM of collections in-process, 0.02-0.04 now.
    while len(results) < len(targets):
        gc.freeze()
        try:
            uri, result = done.get(timeout=0.5)
        except queue.Empty:
            uri, result = _next_timed_out(started, results, options.host_timeout, lock), None
            if uri is None:
                continue
            result = _unreachable(uri, f"no answer within {options.host_timeout:g} s")
            spawn(queue_of[uri])  # the stuck worker is abandoned; keep the pool at full strength
        if uri in results:  # a late answer from a host we already gave up on
            continue
        results[uri] = result
        if progress is not None:
            progress(result, len(results), len(targets))
    gc.unfreeze()
    inventory = Inventory(hosts=[results[uri] for uri in targets])
    join_leases_across_hosts(inventory)
    inventory.conflicts = find_conflicts(inventory)
    return inventory


def _in_process(uri: str) -> bool:
    """True for a host served inside this process: libvirt's test driver on a file
    (``test:///path``, ``test:///default``; not ``test+tcp://``, which libvirtd serves).

    A thread pool overlaps waits on the network; such a host has none, and each
    of its libvirt calls (microseconds) releases and retakes the GIL, so spread
    over 16 threads it only adds hand-offs: measured 10,000 VMs in 1,000 files,
    3-4 CPU-s more than the same reads on one thread. One thread per CPU lets
    the test driver's C code (half of the time) run beside the Python: 500
    files on 2 CPUs, 4.2-4.7 s against 5.2-5.8 s on one thread, same CPU.
    """
    parts = urlsplit(uri)
    return parts.scheme == "test" and not parts.netloc


def _read_one(uri: str, driver_cls: type, options: RunOptions) -> HostInventory:
    try:
        return driver_cls.inventory(uri, options.discovery).discover()
    except OnboardError as exc:
        return _unreachable(uri, str(exc))
    except Exception as exc:  # a driver bug must not stop the other hosts
        return _unreachable(uri, f"unexpected {type(exc).__name__}: {exc}", code="driver-error")


def _next_timed_out(started: dict[str, float], results: dict[str, HostInventory],
                    timeout: float, lock: threading.Lock) -> str | None:
    now = time.monotonic()
    with lock:
        for uri, t0 in started.items():
            if uri not in results and now - t0 > timeout:
                return uri
    return None


def redact_uri(uri: str) -> str:
    """The URI without any password typed into it (``user:secret@host``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _unreachable(uri: str, message: str, code: str = "host-unreachable") -> HostInventory:
    uri_shown = redact_uri(uri)
    message = message.replace(uri, uri_shown)
    try:
        kind = driver_for(uri).name
    except ConfigError:
        kind = "unknown"
    return HostInventory(
        host=Host(uri=uri_shown, kind=kind),
        status=HostStatus.UNREACHABLE,
        problems=[Problem(severity=Severity.ERROR, code=code, message=message, host=uri_shown)],
    )
