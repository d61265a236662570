"""The storage view: for each storage device a host sees, its volumes and their users.

This is the seed's "for each storage device attached to the host, the volumes
associated with each VM", computed from an inventory (pure, no I/O). Devices
are libvirt storage pools, host block devices (SCSI/LUN), RBD pools and
iSCSI targets named by domains, and plain directories holding disk files.
"""

from __future__ import annotations

import posixpath

from pydantic import Field

from os_onboard.inventory.models import Disk, HostInventory, Inventory, StoragePool, Vm, _Model


class VolumeUser(_Model):
    vm: str
    vm_uuid: str
    target: str
    read_only: bool = False


class StorageEntry(_Model):
    host: str
    device_kind: str = Field(description="pool-<type>, block-device, rbd, iscsi, directory, …")
    device: str
    volume: str | None = None
    path: str | None = None
    capacity_bytes: int | None = None
    scsi_page83: str | None = None
    serial: str | None = None
    users: list[VolumeUser] = Field(default_factory=list)


def storage_view(inventory: Inventory) -> list[StorageEntry]:
    entries: list[StorageEntry] = []
    for host in inventory.hosts:
        entries.extend(_host_view(host))
    return entries


def _host_view(host: HostInventory) -> list[StorageEntry]:
    uri = host.host.uri
    entries: dict[tuple[str, str, str | None], StorageEntry] = {}
    by_path: dict[str, tuple[str, str, str | None]] = {}
    by_pool_volume: dict[str, tuple[str, str, str | None]] = {}
    for pool in host.storage_pools:
        for vol in pool.volumes:
            key = (f"pool-{pool.type}", pool.name, vol.name)
            entries[key] = StorageEntry(host=uri, device_kind=key[0], device=pool.name,
                                        volume=vol.name, path=vol.path,
                                        capacity_bytes=vol.capacity_bytes)
            if vol.path:
                by_path[vol.path] = key
            by_pool_volume[f"{pool.name}/{vol.name}"] = key
            if pool.type == "rbd" and pool.source:
                by_pool_volume[f"rbd:{pool.source}/{vol.name}"] = key
    by_page83: dict[str, tuple[str, str, str | None]] = {}
    for dev in host.block_devices:
        key = ("block-device", dev.path or dev.name, None)
        entries[key] = StorageEntry(host=uri, device_kind="block-device", device=key[1],
                                    path=dev.path, capacity_bytes=dev.size_bytes,
                                    scsi_page83=dev.scsi_page83, serial=dev.serial)
        if dev.path:
            by_path[dev.path] = key
        if dev.scsi_page83:
            by_page83[dev.scsi_page83] = key
    for vm in host.vms:
        for disk in vm.disks:
            if disk.source is None:
                continue  # an empty CD-ROM tray uses no storage
            key = (by_path.get(disk.source)
                   or by_pool_volume.get(disk.source if disk.source_kind == "volume" else "")
                   or by_pool_volume.get(f"rbd:{disk.source}"
                                         if disk.source_kind == "network-rbd" else "")
                   or by_page83.get(disk.identifiers.scsi_page83 or "")
                   or _implicit_key(disk))
            if key not in entries:
                entries[key] = _implicit_entry(uri, key, disk)
            entry = entries[key]
            entry.users.append(_user(vm, disk))
            # Identifiers the domain presents for the volume complete the pool's view.
            entry.scsi_page83 = entry.scsi_page83 or disk.identifiers.scsi_page83
            entry.serial = entry.serial or disk.identifiers.serial
    return sorted(entries.values(), key=lambda e: (e.device_kind, e.device, e.volume or ""))


def _implicit_key(disk: Disk) -> tuple[str, str, str | None]:
    """A device for a disk that no pool or node device lists."""
    source = disk.source or ""
    if disk.source_kind == "network-rbd":
        pool, _, image = source.partition("/")
        return "rbd", pool, image or None
    if disk.source_kind == "network-iscsi":
        iqn, _, lun = source.rpartition("/")
        return ("iscsi", iqn, lun) if iqn else ("iscsi", source, None)
    if disk.source_kind == "file":
        return "directory", posixpath.dirname(source) or "/", posixpath.basename(source)
    if disk.source_kind == "block":
        return "block-device", source, None
    return disk.source_kind, source, None


def _implicit_entry(uri: str, key: tuple[str, str, str | None], disk: Disk) -> StorageEntry:
    return StorageEntry(
        host=uri, device_kind=key[0], device=key[1], volume=key[2],
        path=disk.source if disk.source_kind in ("file", "block") else None,
        capacity_bytes=disk.capacity_bytes,
        scsi_page83=disk.identifiers.scsi_page83, serial=disk.identifiers.serial,
    )


def _user(vm: Vm, disk: Disk) -> VolumeUser:
    return VolumeUser(vm=vm.name, vm_uuid=vm.uuid, target=disk.target, read_only=disk.read_only)


__all__ = ["StorageEntry", "StoragePool", "VolumeUser", "storage_view"]
