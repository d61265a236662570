"""A VM's disks -> Cinder volume steps (resolved to backend references), the root disk,
and the disks a plan cannot record."""

from __future__ import annotations

from os_onboard.drivers.adoption import Adoption
from os_onboard.exceptions import ResolutionError
from os_onboard.inventory.models import Disk, HostInventory, Vm
from os_onboard.mapping.resolvers.base import BackendReference
from os_onboard.mapping.resolvers.registry import (
    resolve_disk,
)
from os_onboard.plan.context import GIB, PlanContext, host_step
from os_onboard.plan.model import (
    Op,
    Step,
    StepKind,
    VmPlan,
)


def root_disk(vm: Vm) -> Disk | None:
    disks = [d for d in vm.disks if d.device == "disk"]
    booted = sorted((d for d in disks if d.boot_order), key=lambda d: d.boot_order or 0)
    return (booted or disks or [None])[0]


def root_kind(root: Disk | None, volume_steps: list[Step]) -> str:
    if root is None:
        return "none"
    return "volume" if any(s.params["target"] == root.target for s in volume_steps) else "local"


def disk_steps(ctx: PlanContext, host: HostInventory, vm: Vm, plan: VmPlan,
                adoption: Adoption | None) -> tuple[Disk | None, list[Step], list[Step]]:
    root = root_disk(vm)
    volumes: list[Step] = []
    dirs: list[Step] = []
    for disk in vm.disks:
        if disk.device in ("cdrom", "floppy"):
            plan.rebuild_changes.append(f"{disk.device} {disk.target} "
                                        f"({disk.source or 'empty'}) is dropped")
            continue
        if disk is root and adoption is not None and adoption.root_stays_in_vm:
            ref, current = None, None  # the driver keeps the root where it is (below)
        else:
            current = ctx.renames.get(disk.source or "")
            try:
                ref = resolve_disk(disk.model_copy(update={"source": current}) if current
                                   else disk, host, ctx.resolvers)
            except ResolutionError as exc:
                plan.blocked.append(str(exc))
                continue
        if ref is not None:
            volumes.append(_volume_step(vm, disk, ref, root, current))
            plan.notes.extend(f"{disk.target}: {n}" for n in ref.notes)
            if current:
                plan.notes.append(f"{disk.target}: {disk.source} was renamed to {current} by an "
                                  "earlier adoption (rename map); Cinder manages it by that name")
            continue
        kept = adoption.keep_local_root(vm, disk) if adoption and disk is root else None
        if kept is not None:
            dirs.extend(host_step(s) for s in kept.steps)
            if kept.note:
                plan.notes.append(f"{disk.target}: {kept.note}")
            continue
        if disk.source_kind == "file" and ctx.mapping.local_disks == "keep":
            plan.rebuild_changes.append(
                f"disk {disk.target} ({disk.source}) stays a local file Nova does not know"
                + (f": {adoption.unrecorded_disk_fate()}" if adoption else ""))
            continue
        plan.blocked.append(f"disk {disk.target} ({disk.source_kind} {disk.source}) has no "
                            "Cinder backend in the mapping"
                            + (" (or set local_disks: keep)" if disk.source_kind == "file"
                               else ""))
    if root is None:
        plan.blocked.append("no disk to boot from")
    return root, volumes, dirs


def _volume_step(vm: Vm, disk: Disk, ref: BackendReference, root: Disk | None,
                 current: str | None) -> Step:
    """The disk as a Cinder volume: managed through Cinder's API, or recorded where it is
    by the backend's Cinder-side helper (``ref.in_place``: the manage API would move it)."""
    size_gib = -(-(disk.capacity_bytes or GIB) // GIB)
    params = {"target": disk.target, "bus": disk.bus, "source": disk.source,
              "current_source": current, "cinder_host": ref.cinder_host, "ref": ref.ref,
              "size_gib": size_gib, "boot": disk is root, "evidence": ref.evidence}
    if ref.in_place:
        summary = (f"Cinder records {disk.source} in place as {size_gib} GiB volume "
                   f"{disk.disk_uuid} on {ref.backend} (vCenter: a powered-off backing VM "
                   f"volume-{disk.disk_uuid} referencing the file is created; the VM is not "
                   "touched)")
        params.update({"in_place": ref.in_place, "volume_id": disk.disk_uuid,
                       "capacity_kb": (disk.capacity_bytes or GIB) // 1024,
                       "disk_type": "thin" if disk.thin else "thick", "vm_uuid": vm.uuid})
    else:
        summary = f"Cinder manages {disk.source} on {ref.backend} as a {size_gib} GiB volume"
    return Step(kind=StepKind.VOLUME, key=f"volume:{disk.target}", op=Op.CREATE,
                summary=f"{summary}, attached in-use as {disk.target}", params=params)


def disk_gb_text(root: Disk | None, volume_steps: list[Step]) -> str:
    if root is None or root.source_kind != "file":
        return ""
    return f", {(root.capacity_bytes or 0) // GIB} DISK_GB"
