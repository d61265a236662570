"""One reconcile pass: compare, act by policy, queue what OpenStack could not take.

The hypervisors are read by the caller (an :class:`Inventory`); OpenStack is
read through ``read_records``. When that fails (an API down), the pass
compares with the records read last (kept in the state store) and queues
every drift it finds instead of losing it; the watcher then retries with
backoff, and the first pass that reads OpenStack again acts on the queue.

A toleration that fails is queued too (part of it may be written, and only
the queue remembers a half-done move). Whether the watcher comes back
sooner than its period depends on the error's type: after a temporary one
(``OnboardError.temporary``: a service down, an answer lost) it retries with
backoff; after a permanent one (a refusal, a missing setting) the drift is
reported failed and tried again at the next periodic pass only, since an
immediate retry would fail the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from os_onboard.exceptions import CloudError
from os_onboard.inventory.models import HostStatus, Inventory
from os_onboard.reconcile.drift import Drift, DriftKind, find_drift, live_vms
from os_onboard.reconcile.pending import (
    Records,
    drift_key,
    drift_of,
    queued,
    records_document,
    records_from_document,
    sort_queue,
)
from os_onboard.reconcile.policy import Policies
from os_onboard.reconcile.tolerate import Outcome
from os_onboard.state.audit import AuditEntry, AuditLog
from os_onboard.state.drift_queue import DriftQueue, QueuedDrift
from os_onboard.state.records_cache import RecordsCache
from os_onboard.state.statuses import DriftAction, QueueState

#: (VM, UUID, kind, recorded, actual, action, detail), as the CLI lists them.
Row = tuple[str, str, str, str, str, str, str]


class Tolerates(Protocol):
    def apply(self, drift: Drift, policy: str) -> Outcome: ...


@dataclass(frozen=True)
class Stores:
    queue: DriftQueue
    audit: AuditLog
    cache: RecordsCache


@dataclass
class PassResult:
    rows: list[Row] = field(default_factory=list)
    pending: int = 0       # drift still queued after the pass
    unreachable: str = ""  # why OpenStack could not be read ("" when it could)
    unread: list[str] = field(default_factory=list)  # hosts this pass could not read
    recheck_in: float | None = None  # a deferred drift may be decided this many s from now
    #: of ``pending``, those whose write failed permanently in this pass: no backoff
    permanent: int = 0

    def summary(self) -> str:
        """One line per pass for the watch's log."""
        return (f"{len(self.rows)} drift(s), {self.pending} queued"
                + (f" ({self.permanent} after permanent failures, retried each period)"
                   if self.permanent else "")
                + ("; OpenStack unreachable" if self.unreachable else "")
                + (f"; not read (nothing concluded from them): {', '.join(self.unread)}"
                   if self.unread else ""))

    @property
    def retry(self) -> str:
        """Why the watcher should come back sooner than its period ("" if no need)."""
        if self.unreachable:
            return f"{self.unreachable}; {self.pending} drift(s) queued"
        waiting = self.pending - self.permanent
        return f"{waiting} drift(s) queued after failed writes" if waiting > 0 else ""


def reconcile_pass(inventory: Inventory, read_records: Callable[[], Records], stores: Stores,
                   cause: str, policies: Policies | None = None,
                   tolerator_for: Callable[[Records], Tolerates] | None = None) -> PassResult:
    """Compare and act. ``policies`` None is ``os-onboard drift``: compare and
    record in the audit log only, never write to OpenStack or the queue."""
    result = _reconcile(inventory, read_records, stores, cause, policies, tolerator_for)
    result.unread = [h.host.uri for h in inventory.hosts if h.status != HostStatus.OK]
    return result


def _reconcile(inventory: Inventory, read_records: Callable[[], Records], stores: Stores,
               cause: str, policies: Policies | None,
               tolerator_for: Callable[[Records], Tolerates] | None) -> PassResult:
    try:
        records = read_records()
    except CloudError as exc:
        return _unreachable(inventory, stores, cause, exc, queue=policies is not None)
    stores.cache.save(records_document(records))
    fresh = find_drift(inventory, records.servers, records.hosts, records.others)
    if policies is None or tolerator_for is None:
        rows = [_audit(stores, drift, cause, DriftAction.REPORTED, "drift: nothing written")
                for drift in fresh]
        shown = {(d.uuid, drift_key(d)) for d in fresh}
        return PassResult(rows + [_queued_row(i) for i in stores.queue.items()
                                  if (i.vm_uuid, i.key) not in shown],
                          len(stores.queue.items()))
    again, resolved = sort_queue(fresh, stores.queue.items(), inventory)
    rows = []
    for item in resolved:
        stores.queue.remove(item.vm_uuid, item.key)
        rows.append(_audit(stores, drift_of(item), cause, QueueState.RESOLVED,
                           "dropped from the queue: the hypervisors no longer show it"))
    tolerator = tolerator_for(records)
    policy = _policy_of(policies, inventory, records)
    now = datetime.now(UTC)
    recheck: list[float] = []
    permanent = 0  # queued after a permanent failure in this pass
    outcomes = []
    for drift in fresh:
        outcome = tolerator.apply(drift, policy(drift))
        outcomes.append(outcome)
        if outcome.recheck_in is not None:
            recheck.append(outcome.recheck_in)
        if outcome.action is DriftAction.FAILED:
            stores.queue.put(queued(drift, cause, outcome.detail, now))
            permanent += not outcome.temporary
        else:  # done, reported or deferred: the comparison shows it again if need be
            stores.queue.remove(drift.uuid, drift_key(drift))
        rows.append(_audit(stores, drift, cause, outcome.action, outcome.detail))
    for drift in again:
        if policy(drift) == "report":
            continue  # queued by a tolerating pass: a reporting one leaves it be
        outcome = tolerator.apply(drift, policy(drift))
        if outcome.action is DriftAction.TOLERATED:
            stores.queue.remove(drift.uuid, drift_key(drift))
        else:
            stores.queue.put(queued(drift, cause, outcome.detail, now))
            permanent += outcome.action is DriftAction.FAILED and not outcome.temporary
        rows.append(_audit(stores, drift, cause, outcome.action,
                           f"queued earlier: {outcome.detail}"))
    rows += _seen_again(stores, inventory, records, outcomes, cause)
    return PassResult(rows, len(stores.queue.items()),
                      recheck_in=min(recheck) if recheck else None, permanent=permanent)


class _Absent:
    """VMs a pass of this process found gone and left be (deferred, reported).

    vm-gone is concluded on the second pass *in a row* that misses a VM
    (tolerate/gone.py), and the audit log is what remembers the first. A VM
    seen again in between writes no drift row, so this process remembers
    which VMs it left absent and, when a later pass finds one of them again,
    audits that (after: "seen again"): the run of absences in the log ends
    there, and a later absence counts from one again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uuids: set[str] = set()

    def update(self, absent: set[str], seen: set[str]) -> set[str]:
        """This pass's absent VMs; returns those absent before and seen now."""
        with self._lock:
            back = self._uuids & seen
            self._uuids = (self._uuids - seen) | absent
            return back


_ABSENT = _Absent()


def _seen_again(stores: Stores, inventory: Inventory, records: Records, outcomes: list[Outcome],
                cause: str) -> list[Row]:
    absent = {o.drift.uuid for o in outcomes if o.drift.kind is DriftKind.VM_GONE
              and o.action in (DriftAction.DEFERRED, DriftAction.REPORTED)}
    found = live_vms(inventory)
    names = {s.uuid: s.name for s in records.servers}
    return [_audit(stores, Drift(DriftKind.VM_GONE, uuid, names.get(uuid, found[uuid][1].name),
                                 "on no host", "seen again"), cause, QueueState.RESOLVED,
                   "the VM is back: a later absence is counted from one again")
            for uuid in sorted(_ABSENT.update(absent, set(found)))]


def _policy_of(policies: Policies, inventory: Inventory, records: Records,
               ) -> Callable[[Drift], str]:
    """A drift's policy by the host its VM runs on (running copy first), else,
    for a VM no host shows any more, the host OpenStack records."""
    where = {uuid: (host.host.uri, host.host.hostname)
             for uuid, (host, _vm) in live_vms(inventory).items()}
    uris = {h.host.hostname: h.host.uri for h in inventory.hosts}
    recorded = {s.uuid: s.node for s in records.servers}

    def policy(drift: Drift) -> str:
        node = recorded.get(drift.uuid)
        uri, hostname = where.get(drift.uuid, (uris.get(node or ""), node))
        return policies.of(drift.kind, uri, hostname)
    return policy


def _unreachable(inventory: Inventory, stores: Stores, cause: str, exc: CloudError,
                 queue: bool) -> PassResult:
    cached = stores.cache.load()
    if cached is None:
        raise CloudError(f"{exc} (and no earlier records to compare with: nothing queued)")
    read_at, document = cached
    records = records_from_document(document)
    why = f"OpenStack unreachable: {exc}"
    detail = (f"{why}; compared with the records read at {read_at.isoformat(timespec='seconds')}"
              "; queued until OpenStack answers")
    now = datetime.now(UTC)
    rows = []
    for drift in find_drift(inventory, records.servers, records.hosts, records.others):
        if not queue:
            rows.append(_row(drift, QueueState.UNCONFIRMED, detail))
        elif stores.queue.put(queued(drift, cause, why, now)):
            rows.append(_audit(stores, drift, cause, QueueState.QUEUED, detail))  # audited once
        else:
            rows.append(_row(drift, QueueState.QUEUED, detail))
    items = stores.queue.items()
    if not queue:
        rows += [_queued_row(i) for i in items]
    return PassResult(rows, len(items), why)


def _row(drift: Drift, action: str, detail: str) -> Row:
    return (drift.name, drift.uuid, drift.kind.value, drift.before, drift.after, action, detail)


def _queued_row(item: QueuedDrift) -> Row:
    since = item.first_seen.isoformat(timespec="seconds")
    return (item.vm_name, item.vm_uuid, item.kind, item.before, item.after, QueueState.QUEUED,
            f"since {since}, {item.attempts} attempt(s); last: {item.last_error}")


def _audit(stores: Stores, drift: Drift, cause: str, action: str, detail: str) -> Row:
    stores.audit.add(AuditEntry(datetime.now(UTC), drift.uuid, drift.name, drift.kind.value,
                                drift.before, drift.after, cause[:64], action, detail))
    return _row(drift, action, detail)
