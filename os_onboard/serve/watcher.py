"""The watcher of a replica: reconcile passes over the hosts this replica holds.

Each replica watches only its share of the registered hosts (the ring,
:mod:`os_onboard.coordination`): :meth:`HostWatcher.set_hosts` is called when
the share changes (a member joined or left, kill -9 included) and restarts
:func:`os_onboard.reconcile.loop.watch` on the new share - events from each
host's change feed and a full pass every ``[watch] interval``. Passes are
report-only here (the reconciler's default policy): drift goes to the audit
log and, while OpenStack cannot be read, to the drift queue - both in the
state store, so a replica that takes hosts over finds the queue its
predecessor left. A pass judges only the VMs of the hosts it read, so a
replica never reports another replica's VMs as gone. The last pass is
published with the member (``/v1/workers``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from os_onboard.discovery.runner import discover_hosts
from os_onboard.exceptions import CloudError
from os_onboard.reconcile.loop import PassReport, watch
from os_onboard.reconcile.passes import PassResult, Stores, reconcile_pass
from os_onboard.reconcile.pending import Records
from os_onboard.reconcile.records import adopted_servers
from os_onboard.reconcile.resident import Reused
from os_onboard.state.audit import AuditLog
from os_onboard.state.credentials import export_registered
from os_onboard.state.drift_queue import DriftQueue
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.jobs import JobState
from os_onboard.state.records_cache import RecordsCache
from os_onboard.state.store import StateStore

LOG = logging.getLogger(__name__)


#: the columns of a drift row (as ``os-onboard drift`` prints them)
COLUMNS = ("vm", "uuid", "kind", "recorded", "actual", "action", "detail")


def report_pass(inventory: Any, connection: Reused[Any], stores: Stores, cause: str
                ) -> PassResult:
    """One report-only reconcile pass over ``inventory`` (drift audited, queued
    while OpenStack cannot be read; nothing written to OpenStack)."""

    def read_records() -> Records:
        try:
            cloud = connection.get()
            hypervisors = cloud.hypervisors()
            servers, others = adopted_servers(cloud)
        except CloudError:
            connection.reset()  # e.g. Keystone restarted: authenticate again
            raise
        return Records(servers, {h["node"]: h["service_host"] for h in hypervisors},
                       hypervisors, others)

    return reconcile_pass(inventory, read_records, stores, cause, None, None)


def run_drift(store: StateStore, ctx: Any, cloud: Callable[[], Any],
              discover: Callable[[list[str]], Any] = discover_hosts
              ) -> tuple[JobState | None, dict[str, Any]]:
    """A drift job (``POST /v1/drift-checks``): one report-only pass over its hosts."""
    hosts = ctx.job.params["hosts"]
    if not ctx.beat({"step": f"reading {len(hosts)} host(s)"}):
        return None, {}
    export_registered(HostRegistry(store), hosts)  # credentials references, resolved now
    result = report_pass(discover(hosts), Reused(cloud),
                         Stores(DriftQueue(store), AuditLog(store), RecordsCache(store)),
                         "drift check (API)")
    return JobState.SUCCEEDED, {"drift": [dict(zip(COLUMNS, row, strict=True))
                                          for row in result.rows],
                                "queued": result.pending, "summary": result.summary(),
                                "unread": result.unread}


class HostWatcher:
    def __init__(self, store: StateStore, cloud: Callable[[], Any], interval: float = 60.0,
                 discover: Callable[[list[str]], Any] = discover_hosts) -> None:
        self.store, self.interval, self.discover = store, interval, discover
        self.connection = Reused(cloud)
        self.stores = Stores(DriftQueue(store), AuditLog(store), RecordsCache(store))
        self.registry = HostRegistry(store)
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.hosts: list[str] = []
        self.last: dict[str, Any] = {}

    def set_hosts(self, hosts: list[str]) -> None:
        """Watch ``hosts`` from now on (a new watch loop; the old one stops)."""
        with self._lock:
            if sorted(hosts) == self.hosts and self._thread is not None:
                return
            self._halt()
            self.hosts = sorted(hosts)
            if not self.hosts:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self.hosts, self._stop),
                                            name="watch", daemon=True)
            self._thread.start()
        LOG.info("watching %d host(s)", len(hosts))

    def _halt(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._stop = self._thread = None

    def stop(self) -> None:
        with self._lock:
            self._halt()

    def _run(self, hosts: list[str], stop: threading.Event) -> None:
        watch(hosts, lambda cause: self.one_pass(hosts, cause), stop, interval=self.interval)

    def one_pass(self, hosts: list[str], cause: str) -> PassReport:
        started = time.monotonic()
        export_registered(self.registry, hosts)  # resolved at each pass: a secret may rotate
        result = report_pass(self.discover(hosts), self.connection, self.stores, cause)
        self.last = {"hosts": len(hosts), "cause": cause, "at": time.time(),
                     "seconds": round(time.monotonic() - started, 3),
                     "drift": len(result.rows), "queued": result.pending,
                     "summary": result.summary()}
        LOG.info("pass (%s) over %d host(s): %s", cause, len(hosts), result.summary())
        return PassReport(result.retry, result.recheck_in)
