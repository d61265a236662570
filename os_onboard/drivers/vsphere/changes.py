"""Turn ``WaitForUpdatesEx`` answers into :class:`ChangeEvent` s (pure: no pyVmomi).

The first answer of a fresh filter is the current state of every object; it
primes the tracker (VM uuids, hosts, power states) and yields nothing. Later
answers become events: ``runtime.host`` -> HOST_CHANGED (vMotion, HA restart),
``runtime.powerState`` and objects entering/leaving -> LIFECYCLE, the device
list -> DEVICE, name/CPU/memory/uuid -> CONFIG. Events are hints for a
level-triggered reconciler, which re-reads the VM.
"""

from __future__ import annotations

from typing import Any

from os_onboard.drivers.base import ChangeEvent, ChangeKind
from os_onboard.drivers.vsphere.properties import POWER_STATES, unescape_name
from os_onboard.drivers.vsphere.raw import RawUpdate
from os_onboard.inventory.models import PowerState

#: What the change feed watches (a much smaller set than discovery reads).
WATCH_PATHS: dict[str, tuple[str, ...]] = {
    "VirtualMachine": ("name", "config.instanceUuid", "config.uuid", "runtime.host",
                       "runtime.powerState", "config.hardware.numCPU",
                       "config.hardware.memoryMB", "config.hardware.device"),
    "HostSystem": ("name",),  # to name the hosts in HOST_CHANGED events
}
_CONFIG = {"name", "config.instanceUuid", "config.uuid", "config.hardware.numCPU",
           "config.hardware.memoryMB"}


class ChangeTracker:
    """Remembers what the feed has said so far about each VM of one endpoint."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.primed = False
        self.hosts: dict[str, str] = {}  # host moid -> name
        self.vms: dict[str, dict[str, Any]] = {}  # vm moid -> watched path -> value

    def feed(self, updates: list[RawUpdate]) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        for update in updates:
            if update.type == "HostSystem":
                for path, _op, value in update.changes:
                    if path == "name" and value:
                        self.hosts[update.moid] = value
            elif update.type == "VirtualMachine":
                events.extend(self._vm(update))
        self.primed = True
        return events

    def _vm(self, update: RawUpdate) -> list[ChangeEvent]:
        if update.kind == "leave":
            state = self.vms.pop(update.moid, {})
            return [self._event(update.moid, state, ChangeKind.LIFECYCLE, "removed")] \
                if self.primed else []
        state = self.vms.setdefault(update.moid, {})
        before = dict(state)
        for path, op, value in update.changes:
            # Devices are only compared for "changed", not kept (they are big).
            state[path] = None if op == "remove" else (
                True if path == "config.hardware.device" else value)
        if not self.primed:
            return []
        if update.kind == "enter":
            return [self._event(update.moid, state, ChangeKind.LIFECYCLE, "added")]
        events = []
        changed = {path for path, _op, _value in update.changes}
        if "runtime.host" in changed and before.get("runtime.host") != state.get("runtime.host"):
            old, new = before.get("runtime.host"), state.get("runtime.host")
            events.append(self._event(
                update.moid, state, ChangeKind.HOST_CHANGED,
                f"runtime.host: {self._host(old)} -> {self._host(new)}",
                old_host=self.hosts.get(old or ""), new_host=self.hosts.get(new or ""),
                old_host_moid=old, new_host_moid=new))
        if "runtime.powerState" in changed and \
                before.get("runtime.powerState") != state.get("runtime.powerState"):
            power = POWER_STATES.get(state.get("runtime.powerState"), PowerState.UNKNOWN)
            events.append(self._event(
                update.moid, state, ChangeKind.LIFECYCLE,
                f"{before.get('runtime.powerState')} -> {state.get('runtime.powerState')}",
                power_state=power.value))
        if "config.hardware.device" in changed:
            events.append(self._event(update.moid, state, ChangeKind.DEVICE,
                                      "config.hardware.device changed"))
        config = sorted(p for p in changed & _CONFIG if before.get(p) != state.get(p))
        if config:
            events.append(self._event(update.moid, state, ChangeKind.CONFIG,
                                      ", ".join(config) + " changed"))
        return events

    def _host(self, moid: str | None) -> str:
        return f"{self.hosts[moid]} ({moid})" if moid in self.hosts else str(moid)

    def _event(self, moid: str, state: dict[str, Any], kind: ChangeKind, detail: str,
               **data: Any) -> ChangeEvent:
        uuid = state.get("config.instanceUuid") or state.get("config.uuid")
        return ChangeEvent(source=self.source, kind=kind,
                           vm_uuid=uuid.lower() if uuid else None,
                           vm_name=unescape_name(state.get("name")), detail=detail,
                           data={"moid": moid, **data})
