"""Turn an inventory into rows for cliff's formatters (table, json, yaml, csv, value).

Tables are summaries a person can scan; machine formats carry the full
nested records, through cliff's FormattableColumn.machine_readable().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cliff.columns import FormattableColumn

from os_onboard.inventory.models import Disk, Inventory, Nic
from os_onboard.inventory.storage import storage_view

Rows = tuple[tuple[str, ...], list[tuple[Any, ...]]]


def human_size(value: int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return str(value)


def _disk_line(disk: Disk) -> str:
    ids = disk.identifiers
    extra = [f"serial={ids.serial}" if ids.serial else "",
             f"wwn={ids.wwn}" if ids.wwn else "",
             f"page83={ids.scsi_page83}" if ids.scsi_page83 and not ids.wwn else ""]
    parts = [disk.target, disk.device if disk.device != "disk" else "",
             disk.format or "", human_size(disk.capacity_bytes), disk.source or "(empty)"]
    return " ".join(p for p in parts + extra if p)


def _nic_line(nic: Nic) -> str:
    where = nic.network or nic.bridge or nic.source_kind
    vlan = f" vlan={','.join(map(str, nic.vlan))}" if nic.vlan else ""
    addrs = " ".join(f"{a.address}/{a.prefix}" if a.prefix else a.address for a in nic.addresses)
    return f"{nic.mac} {nic.model or '?'} {nic.source_kind}={where}{vlan} {addrs}".rstrip()


class _ListColumn(FormattableColumn[list[Any]]):
    """Human: one line per item. Machine: the full records."""

    line: Callable[[Any], str] = str

    def human_readable(self) -> str:
        return "\n".join(type(self).line(item) for item in self._value)

    def machine_readable(self) -> list[Any]:
        return [item.model_dump(mode="json") for item in self._value]


class DisksColumn(_ListColumn):
    line = staticmethod(_disk_line)


class NicsColumn(_ListColumn):
    line = staticmethod(_nic_line)


class CaveatsColumn(_ListColumn):
    line = staticmethod(lambda c: f"{c.kind}: {c.reason}")


class UsersColumn(_ListColumn):
    line = staticmethod(lambda u: f"{u.vm}:{u.target}" + (" (ro)" if u.read_only else ""))


def vm_rows(inventory: Inventory) -> Rows:
    columns = ("Host", "Name", "UUID", "State", "vCPUs", "Memory MiB", "Machine", "Firmware",
               "Disks", "NICs", "Caveats")
    rows = [
        (host.host.hostname or host.host.uri, vm.name, vm.uuid, vm.power_state.value, vm.vcpus,
         vm.memory_mib, vm.machine_type, vm.firmware.value, DisksColumn(vm.disks),
         NicsColumn(vm.nics), CaveatsColumn(vm.caveats))
        for host, vm in inventory.iter_vms()
    ]
    return columns, rows


def host_rows(inventory: Inventory) -> Rows:
    columns = ("URI", "Hostname", "Host UUID", "Status", "Hypervisor", "CPUs", "Memory MiB",
               "VMs", "Problems", "Duration ms")
    rows = [
        (h.host.uri, h.host.hostname, h.host.uuid, h.status.value,
         f"{h.host.hypervisor or '?'} {h.host.hypervisor_version or ''}".strip(), h.host.cpus,
         h.host.memory_mib, len(h.vms), len(h.problems), h.duration_ms)
        for h in inventory.hosts
    ]
    return columns, rows


def storage_rows(inventory: Inventory) -> Rows:
    columns = ("Host", "Kind", "Device", "Volume", "Path", "Size", "Page83", "Serial", "Used by")
    rows = [
        (e.host, e.device_kind, e.device, e.volume, e.path, human_size(e.capacity_bytes),
         e.scsi_page83, e.serial, UsersColumn(e.users))
        for e in storage_view(inventory)
    ]
    return columns, rows


def problem_rows(inventory: Inventory) -> Rows:
    columns = ("Severity", "Code", "Host", "VM", "Message")
    rows = [(p.severity.value, p.code, p.host, p.vm, p.message) for p in inventory.problems]
    return columns, rows


def conflict_rows(inventory: Inventory) -> Rows:
    columns = ("Kind", "Value", "Members", "Detail")
    rows = [(c.kind, c.value, "\n".join(c.members), c.detail) for c in inventory.conflicts]
    return columns, rows


VIEWS: dict[str, Callable[[Inventory], Rows]] = {
    "conflict": conflict_rows,
    "vm": vm_rows,
    "host": host_rows,
    "storage": storage_rows,
    "problem": problem_rows,
}
