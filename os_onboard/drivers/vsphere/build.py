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

import gc
from collections.abc import Iterable, Iterator
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
    Vm,
)


def build_inventory(uri: str, about: dict[str, Any], objects: Iterable[RawObject],
                    vms: Iterable[RawObject] = ()) -> HostInventory:
    """One vCenter endpoint's inventory from the objects read for ``PATHS``.

    ``objects`` is read whole first: the hosts, port groups, datastores and
    the rest make the catalog every VM is joined with (VMs among them are
    kept and built after it). ``vms``, read after the catalog, is consumed
    one VM at a time, each built and let go before the next is taken: given
    api.Session.retrieve's stream, only one page of raw VMs is alive at a
    time instead of the whole endpoint (637 MiB for 10,000 VMs).

    The models built hold no reference cycles: no collection while they are
    made (each would rescan all the models made so far). The pages read are
    frozen for the GC (soapxml.parse_retrieve_result) until the discovery
    runner unfreezes after its hosts; reference counting frees each page
    once its VMs are built.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_inventory(uri, about, objects, vms)
    finally:
        if enabled:
            gc.enable()


def _build_inventory(uri: str, about: dict[str, Any], objects: Iterable[RawObject],
                     streamed: Iterable[RawObject]) -> HostInventory:
    vms: list[RawObject] = []
    others: dict[str, RawObject] = {}
    for obj in objects:
        if obj.type == "VirtualMachine":
            vms.append(obj)
        else:
            others[obj.moid] = obj
    problems: list[Problem] = []
    others = {moid: obj for moid, obj in others.items() if _readable(uri, obj, problems)}
    catalog = build_catalog(others)
    result = [vm for vm in (_build_vm(uri, raw, catalog, problems)
                            for raw in _drain(vms, streamed)) if vm is not None]
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


def _drain(first: list[RawObject], then: Iterable[RawObject]) -> Iterator[RawObject]:
    """The VMs of ``first`` then of ``then``, each dropped from ``first`` as it is given."""
    first.reverse()
    while first:
        yield first.pop()
    yield from then


#: what reading a property of an unexpected type or value raises (soapxml, pydantic)
_UNREADABLE = (AttributeError, LookupError, TypeError, ValueError, RecursionError)


def _readable(uri: str, obj: RawObject, problems: list[Problem]) -> bool:
    """Whether a non-VM object converts on its own; if not, a warning and it is left out.

    Hosts, port groups and datastores are read into the catalog, networks,
    datastores and LUNs of the endpoint; one malformed object must not fail
    them all, so each is tried alone first (cheap: a catalog of one).
    """
    try:
        alone = build_catalog({obj.moid: obj})
        _networks([obj], alone)
        _datastores([obj])
        _block_devices(alone)
    except _UNREADABLE as exc:
        problems.append(Problem(
            severity=Severity.WARNING, code="object-unreadable", host=uri,
            message=f"{obj.type} {obj.moid} left out: a property has an unexpected value "
                    f"({type(exc).__name__}: {str(exc)[:200]})"))
        return False
    return True


def _build_vm(uri: str, raw: RawObject, catalog: Catalog, problems: list[Problem]) -> Vm | None:
    """build_vm; a property of an unexpected type or value fails this VM only.

    The reply decides each value's type (``xsi:type``) and soapxml converts
    fields as they are read, so a malformed device or guest NIC surfaces here
    as the errors of reading a wrong type.
    """
    try:
        return build_vm(uri, raw, catalog, problems)
    except _UNREADABLE as exc:
        name = raw.props.get("name")
        problems.append(Problem(
            severity=Severity.ERROR, code="vm-unreadable", host=uri,
            vm=name if isinstance(name, str) else raw.moid,
            message=f"VM {raw.moid}: a property has an unexpected value "
                    f"({type(exc).__name__}: {str(exc)[:200]})"))
        return None


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
