"""Turn the objects one vCenter endpoint returned into a :class:`HostInventory`.

Pure: no pyVmomi, no I/O. :func:`build_inventory` takes the objects read for
:data:`~os_onboard.drivers.vsphere.properties.PATHS` (moids as strings, data
objects read by attribute name) and makes one inventory per vCenter endpoint,
each VM's ESXi host, cluster, resource pool and folder in ``Vm.location``
(the VMs are built in :mod:`~os_onboard.drivers.vsphere.vms`). What is here
besides: the endpoint's networks (port groups), datastores and the SCSI LUNs
its ESXi hosts see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from os_onboard.drivers.vsphere.catalog import Catalog, build_catalog
from os_onboard.drivers.vsphere.properties import PAGE83_PREFIXES
from os_onboard.drivers.vsphere.raw import RawObject
from os_onboard.drivers.vsphere.vms import build_vm
from os_onboard.inventory.models import (
    BlockDevice,
    Host,
    HostInventory,
    HostStatus,
    Network,
    Problem,
    Severity,
    StoragePool,
)


def build_inventory(uri: str, about: dict[str, Any], objects: Iterable[RawObject]) -> HostInventory:
    """One vCenter endpoint's inventory from the objects read for ``PATHS``."""
    vms: list[RawObject] = []
    others: dict[str, RawObject] = {}
    for obj in objects:
        if obj.type == "VirtualMachine":
            vms.append(obj)
        else:
            others[obj.moid] = obj
    catalog = build_catalog(others)
    problems: list[Problem] = []
    result = [vm for vm in (build_vm(uri, raw, catalog, problems) for raw in vms) if vm is not None]
    result.sort(key=lambda v: (v.name, v.uuid))
    errors = any(p.severity == Severity.ERROR for p in problems)
    return HostInventory(
        host=Host(uri=uri, kind="vsphere", hostname=about.get("host"),
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
                scsi_page83=canonical if canonical.startswith(PAGE83_PREFIXES) else None,
                by_id=[canonical], size_bytes=size)
    return sorted(seen.values(), key=lambda d: d.name)
