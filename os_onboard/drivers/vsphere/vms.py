"""Build one :class:`Vm` from a VirtualMachine's properties (pure: no pyVmomi, no I/O).

What is here: the VM's identity, sizing, power state, firmware and location
(:func:`build_vm`, which reports an unreadable VM as a problem), and the guest
IP addresses VMware Tools reports, matched to the NICs by MAC. The virtual
devices (disks, NICs, caveats) are read in
:mod:`~os_onboard.drivers.vsphere.vmdevices`.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

from os_onboard.drivers.vsphere.catalog import Catalog
from os_onboard.drivers.vsphere.properties import FIRMWARE, POWER_STATES, unescape_name
from os_onboard.drivers.vsphere.raw import RawObject
from os_onboard.drivers.vsphere.vmdevices import add_devices
from os_onboard.inventory.models import (
    AddressSource,
    Caveat,
    CpuTopology,
    Firmware,
    IpAddress,
    Location,
    PowerState,
    Problem,
    Severity,
    Vm,
)


def build_vm(uri: str, raw: RawObject, catalog: Catalog, problems: list[Problem]) -> Vm | None:
    p = raw.props
    name = unescape_name(p.get("name")) or raw.moid
    instance_uuid, bios_uuid = p.get("config.instanceUuid"), p.get("config.uuid")
    if raw.missing:
        problems.append(Problem(severity=Severity.WARNING, code="property-missing", host=uri,
                                vm=name, message="not readable: " + ", ".join(
                                    f"{k} ({v})" for k, v in sorted(raw.missing.items()))))
    if not (instance_uuid or bios_uuid) or "config.hardware.numCPU" not in p:
        # An orphaned/inaccessible VM or one being created has no config.
        problems.append(Problem(severity=Severity.ERROR, code="vm-unreadable", host=uri,
                                vm=name, message=f"VM {name} ({raw.moid}) has no readable "
                                                 "configuration (inaccessible or orphaned?)"))
        return None
    cpus = int(p.get("config.hardware.numCPU") or 1)
    cores = int(p.get("config.hardware.numCoresPerSocket") or 1)
    host = p.get("runtime.host")
    compute = catalog.ancestor(host, ("ComputeResource", "ClusterComputeResource"))
    datacenter = catalog.ancestor(p.get("parent") or host, ("Datacenter",))
    in_cluster = compute is not None and compute.type == "ClusterComputeResource"
    vm = Vm(
        uuid=(instance_uuid or bios_uuid).lower(),
        name=name,
        bios_uuid=bios_uuid.lower() if bios_uuid and bios_uuid != instance_uuid else None,
        guest_os=p.get("config.guestId"),
        location=Location(
            datacenter=datacenter.props.get("name") if datacenter else None,
            cluster=compute.props.get("name") if in_cluster else None,
            cluster_id=compute.moid if in_cluster else None,
            host=catalog.name(host),
            resource_pool=catalog.path(p.get("resourcePool"),
                                       ("ComputeResource", "ClusterComputeResource")),
            folder=catalog.path(p.get("parent"), ("Datacenter",)),
        ),
        description=p.get("config.annotation") or None,
        power_state=POWER_STATES.get(p.get("runtime.powerState"), PowerState.UNKNOWN),
        vcpus=cpus,
        cpu_topology=CpuTopology(sockets=max(1, cpus // max(1, cores)), cores=cores),
        memory_mib=int(p.get("config.hardware.memoryMB") or 0),
        machine_type=p.get("config.version"),
        firmware=FIRMWARE.get(p.get("config.firmware"), Firmware.UNKNOWN),
        virt_type="vmx",
    )
    if p.get("config.template"):
        vm.caveats.append(Caveat(kind="vsphere-template", detail="config.template = true",
                                 reason="a template is not a runnable VM"))
    add_devices(vm, p.get("config.hardware.device") or [], catalog.luns.get(host or "", {}),
                catalog, host)
    add_guest_addresses(vm, p.get("guest.net") or [])
    return vm



def add_guest_addresses(vm: Vm, guest_nets: list[Any]) -> None:
    """IPs VMware Tools reports, matched to NICs by MAC (guest NICs can be unmanaged)."""
    by_mac = defaultdict(list)
    for nic in vm.nics:
        by_mac[nic.mac].append(nic)
    for gnet in guest_nets:
        nics = by_mac.get((getattr(gnet, "macAddress", None) or "").lower())
        if not nics:
            continue
        addresses: list[tuple[str, int | None]] = []
        ip_config = getattr(gnet, "ipConfig", None)
        for entry in getattr(ip_config, "ipAddress", None) or ():
            addresses.append((entry.ipAddress, getattr(entry, "prefixLength", None)))
        known = {a for a, _ in addresses}
        addresses += [(a, None) for a in getattr(gnet, "ipAddress", None) or () if a not in known]
        for address, prefix in addresses:
            try:
                family = "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"
            except ValueError:
                continue
            ip = IpAddress(family=family, address=address, prefix=prefix,
                           source=AddressSource.GUEST_TOOLS)
            for nic in nics:
                if all(a.address != address for a in nic.addresses):
                    nic.addresses.append(ip)
