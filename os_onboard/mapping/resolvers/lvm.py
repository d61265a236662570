"""LVM: a logical volume in the backend's volume group -> ``{"source-name": <LV>}``.

Cinder's LVM driver accepts only source-name, the LV name in its
``volume_group`` (lvm.py manage_existing; research §4.1.2). A VG is local to
its host and VG names repeat across hosts, so ``hypervisor_hosts`` (the hosts
whose VG this backend's cinder-volume serves) confirms the host.
"""

from __future__ import annotations

from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.base import (
    BackendReference,
    Confidence,
    ResolverOptions,
    VolumeResolver,
)
from os_onboard.mapping.resolvers.facts import disk_notes, logical_volume


class LvmOptions(ResolverOptions):
    volume_group: str = "cinder-volumes"  # Cinder's own default
    hypervisor_hosts: list[str] = []  # hostnames or libvirt URIs


class LvmResolver(VolumeResolver):
    kind = "lvm"
    Options = LvmOptions
    options: LvmOptions

    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        where = logical_volume(disk, host)
        if where is None or where.vg != self.options.volume_group:
            return None
        wanted = set(self.options.hypervisor_hosts)
        names = {host.host.uri, host.host.hostname} if host is not None else set()
        if wanted and host is not None and not wanted & names:
            return None  # the same VG name on another host
        notes = disk_notes(disk)
        notes.append("Cinder renames the LV to volume-<id> (lvm.py manage_existing): the domain "
                     "must name the new path before its next start")
        confident = bool(wanted & names)
        if not confident:
            notes.append("host not confirmed: " + (
                "no host inventory given" if wanted else "set hypervisor_hosts for the backend"))
        return self.reference({"source-name": where.lv}, method="lvm-lv",
                              confidence=Confidence.DERIVED if confident else Confidence.PLAUSIBLE,
                              evidence=f"{where.vg}/{where.lv} ({where.via})", notes=notes)
