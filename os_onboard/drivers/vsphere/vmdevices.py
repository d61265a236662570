"""A VirtualMachine's virtual devices as disks, NICs and caveats (pure: no pyVmomi, no I/O).

What is here: :func:`add_devices` sorts ``config.hardware.device``; disks,
CD-ROMs and floppies get their controller slot, backing, thin provisioning and
snapshot chain; a raw device mapping is joined to the ESXi host's SCSI LUN for
its page-83 identity; a NIC gets its port group (standard, distributed or
opaque) and VLANs from the :class:`Catalog`.
"""

from __future__ import annotations

from typing import Any

from os_onboard.drivers.vsphere.catalog import Catalog
from os_onboard.drivers.vsphere.properties import (
    BUSES,
    CAVEATS,
    NIC_MODELS,
    PAGE83_PREFIXES,
    wsdl,
)
from os_onboard.drivers.vsphere.soapxml import declares
from os_onboard.inventory.models import BackingFile, Caveat, Disk, Nic, Vm


def add_devices(vm: Vm, devices: list[Any], luns: dict[str, Any], catalog: Catalog,
                host: str | None) -> None:
    """Append ``devices`` to ``vm`` as disks, NICs and caveats (``luns``: its host's)."""
    controllers = {d.key: d for d in devices if declares(d, "busNumber")}
    for dev in devices:
        kind = wsdl(dev)
        if kind in ("VirtualDisk", "VirtualCdrom", "VirtualFloppy"):
            vm.disks.append(_disk(dev, kind, controllers, luns, catalog))
        elif declares(dev, "macAddress"):
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
        ids.scsi_page83 = canonical if canonical.startswith(PAGE83_PREFIXES) else None
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
