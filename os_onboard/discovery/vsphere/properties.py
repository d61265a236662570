"""What the vSphere driver reads, and how it becomes inventory (pure: no pyVmomi, no I/O).

:data:`PATHS` lists, per managed-object type, the only property paths one
``RetrievePropertiesEx`` asks for. :func:`build_inventory` turns the objects
that came back (moids as strings, data objects read by attribute name) into a
:class:`HostInventory`: one per vCenter endpoint, each VM's ESXi host,
cluster, resource pool and folder in ``Vm.location``.

Device kinds are told apart by WSDL type name (``_wsdlName``) and by the
attributes the API documents for them, so unit tests can use plain objects.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from os_onboard.discovery.vsphere.raw import RawObject
from os_onboard.inventory.models import (
    AddressSource,
    BackingFile,
    BlockDevice,
    Caveat,
    CpuTopology,
    Disk,
    Firmware,
    Host,
    HostInventory,
    HostStatus,
    HypervisorKind,
    IpAddress,
    Location,
    Network,
    Nic,
    PowerState,
    Problem,
    Severity,
    StoragePool,
    Vm,
)

#: Per type, the property paths read. Devices come as one list
#: (config.hardware.device) because disks need their controllers' bus numbers.
VM_PATHS = (
    "name", "config.instanceUuid", "config.uuid", "config.guestId", "config.firmware",
    "config.version", "config.template", "config.annotation",
    "config.hardware.numCPU", "config.hardware.numCoresPerSocket", "config.hardware.memoryMB",
    "config.hardware.device", "runtime.powerState", "runtime.host", "resourcePool", "parent",
    "guest.net",
)
PATHS: dict[str, tuple[str, ...]] = {
    "VirtualMachine": VM_PATHS,
    # LUNs (for RDM canonical names) and standard port groups (for VLANs).
    "HostSystem": ("name", "parent", "config.storageDevice.scsiLun", "config.network.portgroup"),
    "ComputeResource": ("name", "parent"),  # includes ClusterComputeResource
    "ResourcePool": ("name", "parent"),  # includes VirtualApp
    "Folder": ("name", "parent"),
    "Datacenter": ("name", "parent"),
    "Network": ("name",),  # includes DistributedVirtualPortgroup and OpaqueNetwork
    "DistributedVirtualPortgroup": ("key", "config.defaultPortConfig"),
    "Datastore": ("name", "summary.type", "summary.url", "summary.capacity",
                  "summary.freeSpace"),
}

POWER_STATES = {
    "poweredOn": PowerState.RUNNING,
    "poweredOff": PowerState.SHUTOFF,
    "suspended": PowerState.SUSPENDED,
}
FIRMWARE = {"efi": Firmware.UEFI, "bios": Firmware.BIOS}
NIC_MODELS = {
    "VirtualE1000": "e1000", "VirtualE1000e": "e1000e", "VirtualVmxnet": "vmxnet",
    "VirtualVmxnet2": "vmxnet2", "VirtualVmxnet3": "vmxnet3",
    "VirtualVmxnet3Vrdma": "vmxnet3-vrdma", "VirtualPCNet32": "pcnet32",
    "VirtualSriovEthernetCard": "sriov",
}
#: Controller WSDL type -> bus name used in targets ("scsi0:1").
BUSES = {
    "VirtualIDEController": "ide", "VirtualAHCIController": "sata",
    "VirtualSATAController": "sata", "VirtualNVMEController": "nvme",
    "VirtualLsiLogicController": "scsi", "VirtualLsiLogicSASController": "scsi",
    "VirtualBusLogicController": "scsi", "ParaVirtualSCSIController": "scsi",
    "VirtualSCSIController": "scsi",
}
#: Devices OpenStack cannot represent as they are.
CAVEATS = {
    "VirtualPCIPassthrough": ("hostdev-pci", "PCI passthrough has no Nova equivalent here"),
    "VirtualUSB": ("hostdev-usb", "USB passthrough is not represented by Nova"),
    "VirtualUSBController": None,
    "VirtualTPM": ("tpm", "vTPM state does not move with the VM record"),
    "VirtualNVDIMM": ("nvdimm", "NVDIMM is not represented by Nova"),
    "VirtualSerialPort": ("serial", "serial port backing is not carried over"),
}
_PAGE83_PREFIXES = ("naa.", "eui.", "t10.")


def unescape_name(name: str | None) -> str | None:
    """vSphere escapes '%', '/' and '\\' in entity names as %25, %2f and %5c."""
    if not name or "%" not in name:
        return name
    for escaped, char in (("%2f", "/"), ("%2F", "/"), ("%5c", "\\"), ("%5C", "\\"),
                          ("%25", "%")):
        name = name.replace(escaped, char)
    return name


def wsdl(obj: Any) -> str:
    return getattr(obj, "_wsdlName", None) or type(obj).__name__


@dataclass
class Catalog:
    """Every non-VM object read, by moid, for joins and location paths."""

    objects: dict[str, RawObject]
    luns: dict[str, dict[str, Any]]  # host moid -> LUN uuid -> ScsiLun
    portgroup_vlans: dict[str, dict[str, list[int]]]  # host moid -> pg name -> VLANs
    dvportgroups: dict[str, tuple[str, list[int]]]  # dvpg key -> (name, VLANs)

    def name(self, moid: str | None) -> str | None:
        obj = self.objects.get(moid or "")
        return obj.props.get("name") if obj else None

    def ancestor(self, moid: str | None, types: tuple[str, ...]) -> RawObject | None:
        seen = set()
        while moid and moid not in seen:
            seen.add(moid)
            obj = self.objects.get(moid)
            if obj is None:
                return None
            if obj.type in types:
                return obj
            moid = obj.props.get("parent")
        return None

    def path(self, moid: str | None, stop_types: tuple[str, ...]) -> str | None:
        """Names from below the first ``stop_types`` ancestor down to ``moid``."""
        names: list[str] = []
        seen = set()
        while moid and moid not in seen:
            seen.add(moid)
            obj = self.objects.get(moid)
            if obj is None or obj.type in stop_types:
                break
            names.append(obj.props.get("name") or obj.moid)
            moid = obj.props.get("parent")
        return "/".join(reversed(names)) or None


def build_inventory(uri: str, about: dict[str, Any], objects: Iterable[RawObject]) -> HostInventory:
    vms: list[RawObject] = []
    others: dict[str, RawObject] = {}
    for obj in objects:
        if obj.type == "VirtualMachine":
            vms.append(obj)
        else:
            others[obj.moid] = obj
    catalog = _catalog(others)
    problems: list[Problem] = []
    result = [vm for vm in (_vm(uri, raw, catalog, problems) for raw in vms) if vm is not None]
    result.sort(key=lambda v: (v.name, v.uuid))
    errors = any(p.severity == Severity.ERROR for p in problems)
    return HostInventory(
        host=Host(uri=uri, kind=HypervisorKind.VSPHERE, hostname=about.get("host"),
                  uuid=about.get("instanceUuid"), hypervisor=about.get("name"),
                  hypervisor_version=_version(about)),
        status=HostStatus.PARTIAL if errors else HostStatus.OK,
        vms=result,
        networks=_networks(others.values(), catalog),
        storage_pools=_datastores(others.values()),
        block_devices=_block_devices(catalog),
        problems=problems,
    )


def _version(about: dict[str, Any]) -> str | None:
    version, build = about.get("version"), about.get("build")
    return f"{version} build-{build}" if version and build else version


# -- the catalog -------------------------------------------------------------------


def _catalog(objects: dict[str, RawObject]) -> Catalog:
    luns: dict[str, dict[str, Any]] = {}
    vlans: dict[str, dict[str, list[int]]] = {}
    dvpgs: dict[str, tuple[str, list[int]]] = {}
    for obj in objects.values():
        if obj.type == "HostSystem":
            luns[obj.moid] = {lun.uuid: lun for lun in
                              obj.props.get("config.storageDevice.scsiLun") or ()
                              if getattr(lun, "uuid", None)}
            vlans[obj.moid] = {pg.spec.name: _standard_vlan(pg.spec.vlanId) for pg in
                               obj.props.get("config.network.portgroup") or ()}
        elif obj.type == "DistributedVirtualPortgroup" and obj.props.get("key"):
            dvpgs[obj.props["key"]] = (obj.props.get("name") or obj.props["key"],
                                       _dvs_vlan(obj.props.get("config.defaultPortConfig")))
    return Catalog(objects, luns, vlans, dvpgs)


def _standard_vlan(vlan_id: int | None) -> list[int]:
    # 0: untagged; 4095: virtual guest tagging (the guest sees the trunk).
    if not vlan_id:
        return []
    return list(range(1, 4095)) if vlan_id == 4095 else [vlan_id]


def _dvs_vlan(port_config: Any) -> list[int]:
    vlan = getattr(port_config, "vlan", None)
    if vlan is None:
        return []
    kind = wsdl(vlan)
    if kind.endswith("TrunkVlanSpec"):
        return [v for r in vlan.vlanId or () for v in range(r.start, r.end + 1) if v]
    if kind.endswith("PvlanSpec"):
        return [vlan.pvlanId] if vlan.pvlanId else []
    value = getattr(vlan, "vlanId", 0)
    return [value] if isinstance(value, int) and value else []


# -- VMs ---------------------------------------------------------------------------


def _vm(uri: str, raw: RawObject, catalog: Catalog, problems: list[Problem]) -> Vm | None:
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
    vm = Vm(
        uuid=(instance_uuid or bios_uuid).lower(),
        name=name,
        bios_uuid=bios_uuid.lower() if bios_uuid and bios_uuid != instance_uuid else None,
        guest_os=p.get("config.guestId"),
        location=Location(
            datacenter=datacenter.props.get("name") if datacenter else None,
            cluster=compute.props.get("name")
            if compute and compute.type == "ClusterComputeResource" else None,
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
    _devices(vm, p.get("config.hardware.device") or [], catalog.luns.get(host or "", {}),
             catalog, host)
    _guest_addresses(vm, p.get("guest.net") or [])
    return vm


def _devices(vm: Vm, devices: list[Any], luns: dict[str, Any], catalog: Catalog,
             host: str | None) -> None:
    controllers = {d.key: d for d in devices if hasattr(d, "busNumber")}
    for dev in devices:
        kind = wsdl(dev)
        if kind in ("VirtualDisk", "VirtualCdrom", "VirtualFloppy"):
            vm.disks.append(_disk(dev, kind, controllers, luns, catalog))
        elif hasattr(dev, "macAddress"):
            vm.nics.append(_nic(dev, kind, catalog, host))
        elif CAVEATS.get(kind):
            caveat_kind, reason = CAVEATS[kind]
            label = getattr(getattr(dev, "deviceInfo", None), "label", None) or kind
            vm.caveats.append(Caveat(kind=caveat_kind, detail=label, reason=reason))


def _disk(dev: Any, kind: str, controllers: dict[int, Any], luns: dict[str, Any],
          catalog: Catalog) -> Disk:
    backing = getattr(dev, "backing", None)
    btype = wsdl(backing) if backing is not None else ""
    ctrl = controllers.get(getattr(dev, "controllerKey", None))
    bus = BUSES.get(wsdl(ctrl)) if ctrl is not None else None
    slot = f"{bus}{ctrl.busNumber}:{dev.unitNumber}" if bus and dev.unitNumber is not None \
        else None
    # The slot (the .vmx device name) is stable; deviceInfo.label is localised.
    label = getattr(getattr(dev, "deviceInfo", None), "label", None)
    capacity = getattr(dev, "capacityInBytes", None) or (
        dev.capacityInKB * 1024 if getattr(dev, "capacityInKB", None) else None)
    file_name = getattr(backing, "fileName", None) or None
    disk = Disk(device={"VirtualDisk": "disk", "VirtualCdrom": "cdrom"}.get(kind, "floppy"),
                bus=bus, target=slot or label or f"key-{dev.key}", controller=slot,
                source_kind="file" if file_name else "none", source=file_name,
                capacity_bytes=capacity if kind == "VirtualDisk" else None,
                read_only=kind == "VirtualCdrom",
                disk_uuid=getattr(backing, "uuid", None) or None)
    if kind != "VirtualDisk":
        device_name = getattr(backing, "deviceName", None)
        if not file_name and device_name and btype.endswith("AtapiBackingInfo"):
            disk.source_kind, disk.source = "block", device_name
        return disk
    disk.format = "vmdk"
    disk.shareable = getattr(backing, "sharing", None) == "sharingMultiWriter"
    if btype == "VirtualDiskRawDiskMappingVer1BackingInfo":
        _rdm(disk, backing, luns, catalog)
    elif btype == "VirtualDiskFlatVer2BackingInfo":
        disk.thin = bool(getattr(backing, "thinProvisioned", False))
    elif btype in ("VirtualDiskSeSparseBackingInfo", "VirtualDiskSparseVer2BackingInfo"):
        disk.thin = True
    parent = getattr(backing, "parent", None)
    while parent is not None:  # snapshot delta chain, newest first
        disk.backing_chain.append(BackingFile(format="vmdk", source_kind="file",
                                              source=getattr(parent, "fileName", None)))
        parent = getattr(parent, "parent", None)
    return disk


def _rdm(disk: Disk, backing: Any, luns: dict[str, Any], catalog: Catalog) -> None:
    """A raw device mapping: the data is the LUN; the vmdk is only its mapping file."""
    mapping = disk.source
    disk.format = "raw"
    disk.device = "lun" if backing.compatibilityMode == "physicalMode" else "disk"
    disk.source_kind, disk.source = "block", backing.deviceName or mapping
    disk.backing_chain.append(BackingFile(format="vmdk-rdm-mapping", source_kind="file",
                                          source=mapping))
    lun = luns.get(backing.lunUuid)
    if lun is None:  # the VM's host did not list it; any host that sees the LUN will do
        lun = next((by_uuid[backing.lunUuid] for by_uuid in catalog.luns.values()
                    if backing.lunUuid in by_uuid), None)
    ids = disk.identifiers
    if lun is not None:
        canonical = getattr(lun, "canonicalName", "") or ""
        ids.scsi_page83 = canonical if canonical.startswith(_PAGE83_PREFIXES) else None
        ids.vendor = (getattr(lun, "vendor", None) or "").strip() or None
        ids.product = (getattr(lun, "model", None) or "").strip() or None
        ids.serial = (getattr(lun, "serialNumber", None) or "").strip() or None
        ids.by_id = [canonical] if canonical else []


def _nic(dev: Any, kind: str, catalog: Catalog, host: str | None) -> Nic:
    backing = getattr(dev, "backing", None)
    btype = wsdl(backing) if backing is not None else ""
    connectable = getattr(dev, "connectable", None)
    nic = Nic(mac=(dev.macAddress or "").lower(), model=NIC_MODELS.get(kind, kind),
              source_kind="none", link_up=bool(getattr(connectable, "connected", True)))
    if btype == "VirtualEthernetCardDistributedVirtualPortBackingInfo":
        key = backing.port.portgroupKey
        name, vlans = catalog.dvportgroups.get(key, (None, []))
        nic.source_kind, nic.portgroup_key, nic.portgroup, nic.network = (
            "distributed-portgroup", key, name, name)
        nic.vlan = vlans
    elif btype == "VirtualEthernetCardNetworkBackingInfo":
        nic.source_kind = "portgroup"
        nic.portgroup = nic.network = backing.deviceName
        nic.vlan = catalog.portgroup_vlans.get(host or "", {}).get(backing.deviceName, [])
    elif btype == "VirtualEthernetCardOpaqueNetworkBackingInfo":
        nic.source_kind, nic.network = "opaque-network", backing.opaqueNetworkId
    return nic


def _guest_addresses(vm: Vm, guest_nets: list[Any]) -> None:
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


# -- the rest of the endpoint ----------------------------------------------------------


def _networks(objects: Iterable[RawObject], catalog: Catalog) -> list[Network]:
    kinds = {"Network": "portgroup", "DistributedVirtualPortgroup": "distributed-portgroup",
             "OpaqueNetwork": "opaque-network"}
    nets = [Network(name=o.props.get("name") or o.moid, forward_mode=kinds[o.type])
            for o in objects if o.type in kinds]
    return sorted(nets, key=lambda n: (n.name, n.forward_mode or ""))


def _datastores(objects: Iterable[RawObject]) -> list[StoragePool]:
    pools = []
    for o in objects:
        if o.type != "Datastore":
            continue
        capacity, free = o.props.get("summary.capacity"), o.props.get("summary.freeSpace")
        pools.append(StoragePool(
            name=o.props.get("name") or o.moid, uuid=None,
            type=(o.props.get("summary.type") or "unknown").lower(),
            target_path=o.props.get("summary.url"), capacity_bytes=capacity,
            allocation_bytes=capacity - free if capacity is not None and free is not None
            else None))
    return sorted(pools, key=lambda p: p.name)


def _block_devices(catalog: Catalog) -> list[BlockDevice]:
    """SCSI LUNs the ESXi hosts see, once each (a SAN LUN is seen by many hosts)."""
    seen: dict[str, BlockDevice] = {}
    for luns in catalog.luns.values():
        for lun in luns.values():
            canonical = getattr(lun, "canonicalName", None) or lun.uuid
            if canonical in seen:
                continue
            capacity = getattr(lun, "capacity", None)
            size = capacity.block * capacity.blockSize if capacity is not None else None
            seen[canonical] = BlockDevice(
                name=canonical, path=getattr(lun, "devicePath", None) or None,
                bus="scsi", drive_type=getattr(lun, "lunType", None),
                vendor=(getattr(lun, "vendor", None) or "").strip() or None,
                model=(getattr(lun, "model", None) or "").strip() or None,
                serial=(getattr(lun, "serialNumber", None) or "").strip() or None,
                scsi_page83=canonical if canonical.startswith(_PAGE83_PREFIXES) else None,
                by_id=[canonical], size_bytes=size)
    return sorted(seen.values(), key=lambda d: d.name)
