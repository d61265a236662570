"""Host-side facts about a disk: its pool volume, its RBD image, its logical volume.

Pure helpers over the inventory models, shared by the resolvers. Each returns
None when the disk is not of that kind; none of them decides which backend
the disk belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from os_onboard.inventory.models import Disk, HostInventory, StoragePool, StorageVolume

# /dev/<dir>/<name> that are not /dev/<VG>/<LV>
_NOT_A_VG = frozenset({"mapper", "disk", "md", "rbd", "bus", "block", "char", "cciss", "zvol",
                       "vfio", "net", "pts", "shm", "hugepages", "mqueue", "snd", "input"})
# device-mapper names of LVs are <vg>-<lv>[-<layer>] with each "-" inside a name doubled
# (lvm2 libdm dm_build_dm_name); layered internals (-real, -cow, -tpool) don't match.
_DM_LV = re.compile(r"^((?:[^-]|--)+)-((?:[^-]|--)+)$")


def pool_volume(disk: Disk, host: HostInventory | None) -> tuple[StoragePool, str] | None:
    """The libvirt pool and volume name of a ``volume`` disk ('pool/vol'), if the host lists it."""
    if disk.source_kind != "volume" or not disk.source or host is None or "/" not in disk.source:
        return None
    pool_name, vol_name = disk.source.split("/", 1)
    pool = next((p for p in host.storage_pools if p.name == pool_name), None)
    return (pool, vol_name) if pool is not None else None


def _volume(pool: StoragePool, name: str) -> StorageVolume | None:
    return next((v for v in pool.volumes if v.name == name), None)


def source_path(disk: Disk, host: HostInventory | None) -> str | None:
    """The host path of a block-like disk: its block source, or its pool volume's path."""
    if disk.source_kind == "block":
        return disk.source
    found = pool_volume(disk, host)
    if found is not None:
        vol = _volume(*found)
        return vol.path if vol is not None else None
    return None


def monitor_host(address: str) -> str:
    """'v2:10.0.0.11:3300/0', '10.0.0.11:6789', '[::1]:6789', 'mon1' -> the host part."""
    text = address.strip().lower()
    text = re.sub(r"^v[12]:", "", text).split("/", 1)[0]
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


@dataclass(frozen=True)
class RbdImage:
    pool: str
    image: str
    namespace: str | None
    snapshot: str | None
    monitors: tuple[str, ...]  # host parts only
    via: str  # what the location was read from


def _rbd(spec: str, monitors: list[str], via: str) -> RbdImage | None:
    image, _, snap = spec.partition("@")
    parts = image.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        return None
    namespace = parts[1] if len(parts) == 3 else None
    return RbdImage(pool=parts[0], image=parts[-1], namespace=namespace, snapshot=snap or None,
                    monitors=tuple(monitor_host(m) for m in monitors), via=via)


def rbd_image(disk: Disk, host: HostInventory | None) -> RbdImage | None:
    """Where an RBD-backed disk lives: librbd network disk, rbd pool volume, or krbd device."""
    if disk.source_kind == "network-rbd" and disk.source:
        return _rbd(disk.source, disk.source_hosts, f"rbd source {disk.source}")
    found = pool_volume(disk, host)
    if found is not None and found[0].type == "rbd":
        pool, vol = found
        return _rbd(f"{pool.source or pool.name}/{vol}", pool.source_hosts,
                    f"libvirt rbd pool {pool.name}")
    if disk.source_kind == "block" and disk.source and disk.source.startswith("/dev/rbd/"):
        # udev's krbd names: /dev/rbd/<pool>[/<namespace>]/<image> (ceph 50-rbd.rules)
        return _rbd(disk.source[len("/dev/rbd/"):], [], f"krbd device {disk.source}")
    return None


@dataclass(frozen=True)
class LogicalVolume:
    vg: str
    lv: str
    via: str


def split_dm_name(name: str) -> tuple[str, str] | None:
    """'my--vg-data--01' -> ('my-vg', 'data-01'); None for non-LV device-mapper names."""
    match = _DM_LV.match(name)
    if match is None:
        return None
    return match.group(1).replace("--", "-"), match.group(2).replace("--", "-")


def logical_volume(disk: Disk, host: HostInventory | None) -> LogicalVolume | None:
    """The VG and LV of a disk on LVM: /dev/VG/LV, /dev/mapper/VG-LV, or a logical pool volume."""
    found = pool_volume(disk, host)
    if found is not None:
        pool, vol = found
        if pool.type != "logical":
            return None
        # a libvirt logical pool's <source><name> is the VG; it defaults to the pool name
        return LogicalVolume(pool.source or pool.name, vol, f"libvirt logical pool {pool.name}")
    if disk.source_kind != "block" or not disk.source:
        return None
    path = disk.source
    for prefix in ("/dev/mapper/", "/dev/disk/by-id/dm-name-"):
        if path.startswith(prefix):
            names = split_dm_name(path[len(prefix):])
            return LogicalVolume(*names, f"device-mapper name {path}") if names else None
    parts = path.split("/")
    if len(parts) == 4 and parts[:2] == ["", "dev"] and parts[2] not in _NOT_A_VG and parts[3]:
        return LogicalVolume(parts[2], parts[3], f"LV path {path}")
    return None


def disk_notes(disk: Disk) -> list[str]:
    """Facts about a disk that make adopting it as a raw Cinder volume hazardous."""
    notes = []
    if disk.format and disk.format != "raw":
        notes.append(f"disk format is {disk.format}: the volume would hold {disk.format} "
                     "data, while Cinder attaches volumes of this backend as raw")
    # an RDM's mapping file is bookkeeping, not a data layer
    chain = [b for b in disk.backing_chain if b.format != "vmdk-rdm-mapping"]
    if chain:
        notes.append(f"disk has a backing chain of {len(chain)}: the volume holds only "
                     "the top layer")
    if disk.shareable:
        notes.append("disk is shareable: needs a multiattach volume type")
    return notes
