"""VMware VMDK: a VM's virtual disk file -> a volume of Cinder's VMDK driver, in place.

Cinder's VMDK driver keeps each volume as a file attached to a powered-off
"backing" VM. Its ``manage_existing`` detaches the disk from the VM and moves
the file, which a running guest must never see; so these references are not
sent to the manage API but recorded where they are by os-onboard's Cinder-side
helper (``in_place="vmdk"``, extras/cinder ``os_onboard_cinder.vmdk_in_place``),
with the disk's uuid as the volume id (what the driver gives its own disks).

Options: ``datastores`` (the datastores the backend's vCenter serves; empty:
any) and ``vcenter`` (that vCenter's instance UUID, as discovery reports the
host's uuid): a disk on another vCenter is not this backend's.
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


class VmdkOptions(ResolverOptions):
    datastores: list[str] = []
    vcenter: str | None = None


class VmdkResolver(VolumeResolver):
    kind = "vmware-vmdk"
    Options = VmdkOptions
    options: VmdkOptions

    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        path = disk.source or ""
        if disk.format != "vmdk" or disk.source_kind != "file" or not path.startswith("["):
            return None
        datastore = path[1:path.find("]")] if "]" in path else ""
        if self.options.datastores and datastore not in self.options.datastores:
            return None
        where = host.host.uuid if host is not None else None
        if self.options.vcenter and where and where != self.options.vcenter:
            return None  # another vCenter's datastore of the same name
        if not disk.disk_uuid:
            raise ResolutionError(f"disk {disk.target} ({path}) has no uuid: Cinder's VMDK "
                                  "driver and Nova find a volume's disk by it")
        if disk.backing_chain:
            raise ResolutionError(f"disk {disk.target} ({path}) has snapshot deltas: a VMDK "
                                  "volume is one file; consolidate the VM's snapshots first")
        if disk.shareable:
            raise ResolutionError(f"disk {disk.target} ({path}) is multi-writer: Cinder's "
                                  "VMDK driver attaches a volume to one VM")
        confirmed = bool(self.options.vcenter and where)
        notes = ["recorded in place by os-onboard's Cinder-side helper as volume "
                 f"{disk.disk_uuid} (the disk's uuid): a powered-off backing VM "
                 f"volume-{disk.disk_uuid} references the file; the disk is not moved, "
                 "copied or detached"]
        if not confirmed:
            notes.append("vCenter not confirmed: set options.vcenter to its instance UUID")
        return self.reference({"source-name": path}, method="vmdk-in-place",
                              confidence=Confidence.DERIVED if confirmed
                              else Confidence.PLAUSIBLE,
                              evidence=f"{path} (disk uuid {disk.disk_uuid})", notes=notes,
                              in_place="vmdk")
