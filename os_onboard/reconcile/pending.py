"""Drift that waits for OpenStack: the queue's rules (pure).

A level-triggered pass loses nothing as long as the records still show the
old state: the next pass sees the same drift again. Two cases break that,
and the drift queue (in the state store) covers them:

* OpenStack cannot be read (an API is down): the pass compares the
  hypervisors with the records it read last, and queues what differs, so
  the drift is kept (and shown by ``os-onboard drift``) until a pass can
  read OpenStack again and act on it.
* A toleration failed halfway: for host-changed, the Nova instance is moved
  first and the Placement allocation and port bindings after; with
  Placement down, the records' host already matches, so the comparison
  alone would never finish the move. A queued host-changed drift is
  applied again (every step of it is idempotent) for as long as the VM
  runs where the drift said.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from os_onboard.inventory.models import HostStatus, Inventory, PowerState
from os_onboard.reconcile.drift import AdoptedServer, Drift, DriftKind, compute_node
from os_onboard.state.drift_queue import QueuedDrift


@dataclass(frozen=True)
class Records:
    """What one pass reads from OpenStack."""

    servers: list[AdoptedServer]
    hosts: dict[str, str]  # hypervisor hostname -> nova-compute host
    hypervisors: list[dict] = field(default_factory=list)
    others: frozenset[str] = frozenset()  # UUIDs of the servers Nova has, not adopted


def records_document(records: Records) -> str:
    return json.dumps({"servers": [asdict(s) for s in records.servers],
                       "hosts": records.hosts, "hypervisors": records.hypervisors,
                       "others": sorted(records.others)})


def records_from_document(document: str) -> Records:
    data = json.loads(document)
    servers = [AdoptedServer(**{
        **s, "ports": tuple((mac, tuple(ips), host) for mac, ips, host in s["ports"]),
        "volume_devices": tuple(s["volume_devices"]),
        "volume_ids": tuple(s.get("volume_ids", ()))}) for s in data["servers"]]
    return Records(servers, data["hosts"], data.get("hypervisors", []),
                   frozenset(data.get("others", ())))


def drift_key(drift: Drift) -> str:
    """One queue entry per VM, kind and the NIC or disk it is about."""
    subject = drift.detail.get("mac") or drift.detail.get("target") or ""
    return f"{drift.kind.value}:{subject}" if subject else drift.kind.value


def queued(drift: Drift, cause: str, error: str, now: datetime) -> QueuedDrift:
    return QueuedDrift(drift.uuid, drift_key(drift), drift.name, drift.kind.value, drift.before,
                       drift.after, dict(drift.detail), cause[:255], now, now, 1, error)


def drift_of(item: QueuedDrift) -> Drift:
    return Drift(DriftKind(item.kind), item.vm_uuid, item.vm_name, item.before, item.after,
                 dict(item.detail))


def sort_queue(fresh: list[Drift], items: list[QueuedDrift],
               inventory: Inventory) -> tuple[list[Drift], list[QueuedDrift]]:
    """Queued entries the fresh comparison does not show: (drifts to apply
    again, entries resolved). Entries it does show are acted on as fresh
    drift; entries about a VM no host showed this pass are kept untouched
    while some host could not be read (it may be there)."""
    shown = {(d.uuid, drift_key(d)) for d in fresh}
    running_on: dict[str, str] = {}
    seen: set[str] = set()
    for host in inventory.hosts:
        for vm in host.vms:
            seen.add(vm.uuid)
            if vm.power_state == PowerState.RUNNING:
                running_on[vm.uuid] = compute_node(host, vm)
    all_read = all(h.status == HostStatus.OK for h in inventory.hosts)
    again: list[Drift] = []
    resolved: list[QueuedDrift] = []
    for item in items:
        if (item.vm_uuid, item.key) in shown:
            continue
        if item.kind == DriftKind.HOST_CHANGED and running_on.get(item.vm_uuid) == (
                item.detail.get("node")):
            again.append(drift_of(item))  # still true: finish what may be half done
        elif item.vm_uuid in seen or all_read:
            resolved.append(item)
    return again, resolved
