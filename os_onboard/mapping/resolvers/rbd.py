"""Ceph RBD: an image in the backend's pool -> ``{"source-name": <image>}``.

Cinder's RBD driver manages images of its own ``rbd_pool`` only, by image name
(rbd.py manage_existing; lab-ceph.md: 'legacy/vm1-disk' with rbd_pool=legacy).
A pool name says nothing about the cluster, so ``monitors`` (the backend's
``mon_host`` addresses) tells two clusters with equally named pools apart.
"""

from __future__ import annotations

from os_onboard.exceptions import ResolutionError
from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.base import (
    BackendReference,
    Confidence,
    ResolverOptions,
    VolumeResolver,
)
from os_onboard.mapping.resolvers.facts import disk_notes, monitor_host, rbd_image


class RbdOptions(ResolverOptions):
    rbd_pool: str
    monitors: list[str] = []


class RbdResolver(VolumeResolver):
    kind = "rbd"
    Options = RbdOptions
    options: RbdOptions

    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        where = rbd_image(disk, host)
        if where is None or where.pool != self.options.rbd_pool:
            return None
        mons = {monitor_host(m) for m in self.options.monitors}
        if mons and where.monitors and not mons & set(where.monitors):
            return None  # same pool name, another cluster
        name = f"{where.pool}/{where.image}"
        if where.snapshot:
            raise ResolutionError(f"disk {disk.target} uses snapshot {name}@{where.snapshot}; "
                                  "Cinder manages images, not snapshots")
        if where.namespace:
            raise ResolutionError(f"disk {disk.target} is in RBD namespace {where.namespace!r} "
                                  f"of pool {where.pool}; Cinder's RBD driver serves whole pools")
        notes = disk_notes(disk)
        notes.append("Cinder renames the image to volume-<id> (lab-ceph.md): the domain must "
                     "name the new image before its next start")
        confident = bool(mons and where.monitors)
        if not confident:
            notes.append("cluster not confirmed: " + (
                "the disk names no monitor" if mons else "set monitors for the backend"))
        return self.reference({"source-name": where.image}, method="rbd-image",
                              confidence=Confidence.DERIVED if confident else Confidence.PLAUSIBLE,
                              evidence=f"{name} ({where.via})", notes=notes)
