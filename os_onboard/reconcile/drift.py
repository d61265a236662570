"""Drift: what the hypervisors report vs. what OpenStack records (pure).

Level-triggered: one comparison of two snapshots, no history needed. The
records side is :class:`AdoptedServer` (plain data read from the cloud), the
hypervisor side an :class:`~os_onboard.inventory.models.Inventory`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from os_onboard.drivers.adoption import Adoption
from os_onboard.drivers.registry import driver_named
from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import HostInventory, HostStatus, Inventory, PowerState, Vm
from os_onboard.plan.disks import root_disk


class DriftKind(StrEnum):
    HOST_CHANGED = "host-changed"      # live-migrated out of band
    POWER_CHANGED = "power-changed"    # shut down, started, paused, resumed out of band
    NIC_ADDED = "nic-added"
    NIC_REMOVED = "nic-removed"
    IP_CHANGED = "ip-changed"
    DISK_ADDED = "disk-added"
    DISK_REMOVED = "disk-removed"
    RESIZED = "resized"                # vCPUs or memory differ from the flavor
    RENAMED = "renamed"                # the VM renamed on the hypervisor (vSphere)
    VM_GONE = "vm-gone"                # undefined or destroyed (no host has it)
    NOT_ADOPTED = "not-adopted"        # a VM on a managed host OpenStack does not know


@dataclass(frozen=True)
class AdoptedServer:
    """An adopted server as OpenStack records it."""

    uuid: str
    name: str
    host: str                 # nova-compute service host
    node: str | None
    status: str               # ACTIVE, SHUTOFF, PAUSED, ...
    vcpus: int
    ram: int
    ports: tuple[tuple[str, tuple[str, ...], str], ...] = ()  # (mac, ips, binding host)
    volume_devices: tuple[str, ...] = ()  # guest device names of attached volumes
    volume_ids: tuple[str, ...] = ()      # their volumes, in the same order
    #: the VM's name as last taken from the hypervisor (metadata ``os-onboard:vm-name``);
    #: None: adopted before os-onboard kept it, so a rename cannot be told apart
    vm_name: str | None = None


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    uuid: str
    name: str
    before: str
    after: str
    detail: dict = field(default_factory=dict, compare=False, hash=False)

    def line(self) -> str:
        return f"{self.name}: {self.kind.value}: {self.before} -> {self.after}"


#: Nova server status -> the power state the hypervisor should report.
_EXPECTED_POWER = {"ACTIVE": PowerState.RUNNING, "SHUTOFF": PowerState.SHUTOFF,
                   "PAUSED": PowerState.PAUSED}


def live_vms(inventory: Inventory) -> dict[str, tuple[HostInventory, Vm]]:
    """Each UUID's domain and host: a running one wins over a leftover (shut
    off) definition of the same VM on another host."""
    live: dict[str, tuple[HostInventory, Vm]] = {}
    for host in inventory.hosts:
        for vm in host.vms:
            if vm.uuid not in live or vm.power_state == PowerState.RUNNING:
                live[vm.uuid] = (host, vm)
    return live


def compute_node(host: HostInventory, vm: Vm) -> str:
    """The Nova compute node a VM runs under, as its driver names it (libvirt: the host;
    vSphere: the VM's cluster)."""
    adoption = adoption_of(host)
    node = adoption.compute_node(host.host, vm) if adoption else host.host.hostname
    return node or host.host.hostname or ""


def covers_node(host: HostInventory, node: str | None) -> bool:
    """Whether reading ``host`` shows every VM of compute node ``node``."""
    adoption = adoption_of(host)
    return bool(node) and (adoption.covers_node(host.host, node) if adoption
                           else node == host.host.hostname)


def adoption_of(host: HostInventory) -> Adoption | None:
    """The adoption capability of the driver that read ``host`` (None: no such driver)."""
    try:
        return driver_named(host.host.kind).adoption
    except ConfigError:  # an inventory of a kind no installed driver reads
        return None


def find_drift(inventory: Inventory, servers: list[AdoptedServer],
               hosts: dict[str, str], others: Collection[str] = ()) -> list[Drift]:
    """Every difference between the hypervisors and the adopted servers' records.

    :param hosts: compute node (hypervisor hostname) -> nova-compute host.
    :param others: UUIDs of servers Nova has that os-onboard did not adopt
        (booted by Nova): never "not adopted".
    """
    found_on = live_vms(inventory)
    live = {uuid: (compute_node(host, vm), vm) for uuid, (host, vm) in found_on.items()}
    # VMs whose place counts while they are off (one registration: vSphere)
    placed = {uuid for uuid, (host, vm) in found_on.items()
              if vm.power_state == PowerState.RUNNING or _placed_when_off(host)}
    readable = [h for h in inventory.hosts if h.status == HostStatus.OK]
    drifts: list[Drift] = []
    every_host_read = all(h.status == HostStatus.OK for h in inventory.hosts)
    known = {s.uuid for s in servers} | set(others)
    for server in servers:
        found = live.get(server.uuid)
        if found is None:
            # Never call a VM gone from a host we could not read, nor while any
            # host is unread: it may have moved there (e.g. its libvirtd restarting).
            if every_host_read and any(covers_node(h, server.node) for h in readable):
                drifts.append(Drift(DriftKind.VM_GONE, server.uuid, server.name,
                                    f"on {server.host}", "on no host"))
            continue
        hostname, vm = found
        drifts.extend(_compare(server, hostname, hosts.get(hostname, hostname), vm,
                               server.uuid in placed, adoption_of(found_on[server.uuid][0])))
        if _names_are_display_names(found_on[server.uuid][0]):
            drifts.extend(_renamed(server, vm))
    for uuid, (hostname, vm) in live.items():
        if uuid not in known and hostname in hosts:  # a node some nova-compute manages
            drifts.append(Drift(DriftKind.NOT_ADOPTED, uuid, vm.name, "not in OpenStack",
                                f"{vm.power_state} on {hostname}"))
    return drifts


def _placed_when_off(host: HostInventory) -> bool:
    adoption = adoption_of(host)
    return bool(adoption and adoption.placed_when_off)


def _names_are_display_names(host: HostInventory) -> bool:
    adoption = adoption_of(host)
    return bool(adoption and adoption.vm_name_is_display_name)


def _renamed(server: AdoptedServer, vm: Vm) -> list[Drift]:
    """A rename on the hypervisor: the VM's name differs from the one last taken from it.

    A rename through OpenStack changes the display name only, never that
    key, so it is no drift (never undone). When both changed (phase 3), the
    hypervisor's new name wins; the detail keeps the OpenStack name it
    overwrites. A server without the key (adopted before it was kept) has
    no rename drift: its display name may have been changed on purpose.
    """
    if server.vm_name is None or vm.name == server.vm_name:
        return []
    detail = {"name": vm.name, "vm_name_was": server.vm_name}
    if server.name != server.vm_name:  # renamed through OpenStack too: overwritten
        detail["openstack_name"] = server.name
    return [Drift(DriftKind.RENAMED, server.uuid, vm.name, server.name, vm.name, detail)]


def _compare(server: AdoptedServer, hostname: str, service_host: str, vm: Vm,
             placed: bool, adoption: Adoption | None = None) -> list[Drift]:
    out: list[Drift] = []
    if placed and server.node != hostname:
        out.append(Drift(DriftKind.HOST_CHANGED, server.uuid, server.name,
                         f"{server.host}/{server.node}", f"{service_host}/{hostname}",
                         {"host": service_host, "node": hostname}))
    expected = _EXPECTED_POWER.get(server.status)
    if expected is not None and vm.power_state != expected:
        out.append(Drift(DriftKind.POWER_CHANGED, server.uuid, server.name,
                         f"{server.status} ({expected})", str(vm.power_state),
                         {"power_state": str(vm.power_state)}))
    if (vm.vcpus, vm.memory_mib) != (server.vcpus, server.ram):
        out.append(Drift(DriftKind.RESIZED, server.uuid, server.name,
                         f"{server.vcpus} vCPU {server.ram} MiB",
                         f"{vm.vcpus} vCPU {vm.memory_mib} MiB",
                         {"vcpus": vm.vcpus, "memory_mib": vm.memory_mib}))
    recorded = {mac: ips for mac, ips, _ in server.ports}
    actual = {n.mac.lower(): tuple(sorted(a.address for a in n.addresses
                                          if not a.address.startswith("fe80")))
              for n in vm.nics}
    for mac in sorted(actual.keys() - recorded.keys()):
        out.append(Drift(DriftKind.NIC_ADDED, server.uuid, server.name, "no port",
                         f"NIC {mac}", {"mac": mac}))
    for mac in sorted(recorded.keys() - actual.keys()):
        out.append(Drift(DriftKind.NIC_REMOVED, server.uuid, server.name, f"port {mac}",
                         "no NIC", {"mac": mac}))
    for mac in sorted(actual.keys() & recorded.keys()):
        # A NIC without a lease (shut off, or DHCP not renewed yet) is not a change.
        if actual[mac] and tuple(sorted(recorded[mac])) != actual[mac]:
            out.append(Drift(DriftKind.IP_CHANGED, server.uuid, server.name,
                             ",".join(recorded[mac]) or "no IP", ",".join(actual[mac]),
                             {"mac": mac}))
    disks = {d.target: d for d in vm.disks if d.device in ("disk", "lun")}
    # A disk that carries its volume's id is that volume whatever the names: Nova's
    # VMware driver names an attached volume sdb while vSphere's slot is scsi0:1 (the
    # VMDK backing's uuid is the Cinder volume id).
    by_volume = {d.disk_uuid.lower(): t for t, d in disks.items() if d.disk_uuid}
    recorded_disks = set()
    for n, device in enumerate(server.volume_devices):
        volume = server.volume_ids[n].lower() if n < len(server.volume_ids) else ""
        recorded_disks.add(by_volume.get(volume) or device.removeprefix("/dev/"))
    for target in sorted(recorded_disks - disks.keys()):
        out.append(Drift(DriftKind.DISK_REMOVED, server.uuid, server.name,
                         f"volume at {target}", "no disk", {"target": target}))
    # Which unrecorded disks could be volumes is the driver's answer (a file on a
    # hypervisor's filesystem is none; a vSphere data VMDK is, recorded in place).
    root = root_disk(vm)
    for target in sorted(disks.keys() - recorded_disks):
        disk = disks[target]
        if (adoption.disk_may_be_volume(disk, disk is root) if adoption
                else disk.source_kind != "file"):
            out.append(Drift(DriftKind.DISK_ADDED, server.uuid, server.name, "no volume",
                             f"disk {target} ({disk.source})", {"target": target}))
    return out
