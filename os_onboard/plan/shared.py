"""Records several VMs share: the flavor that fits a VM, the images it needs."""

from __future__ import annotations

from os_onboard.inventory.models import Disk, Vm
from os_onboard.plan.context import GIB, PLACEHOLDER_IMAGE, PlanContext
from os_onboard.plan.model import (
    Op,
    SharedKind,
    SharedStep,
    VmPlan,
)


def share_flavor(ctx: PlanContext, vm: Vm, root: Disk | None, project: str | None,
            project_id: str | None, plan: VmPlan) -> str:
    # floor, not ceil: a flavor disk larger than the legacy disk makes Nova
    # grow the disk on its next rebuild (Image.cache -> resize_image).
    root_gb = (root.capacity_bytes or 0) // GIB if root and root.source_kind == "file" else 0
    for flavor in ctx.cloud.flavors:
        if (flavor["vcpus"], flavor["ram"], flavor["disk"]) == (vm.vcpus, vm.memory_mib,
                                                               root_gb) \
                and not flavor["ephemeral"] and not flavor["swap"] \
                and not flavor["extra_specs"]:
            ctx.share(SharedStep(kind=SharedKind.FLAVOR, key=f"flavor:{flavor['name']}",
                                 op=Op.EXISTS, summary=f"flavor {flavor['name']} (exact match)",
                                 params={"name": flavor["name"], "id": flavor["id"]}))
            return f"flavor:{flavor['name']}"
    if ctx.mapping.flavors.policy == "reuse-only":
        plan.blocked.append(f"no flavor with {vm.vcpus} vCPU, {vm.memory_mib} MiB, {root_gb} GB "
                            "and the policy is reuse-only")
    name = f"{ctx.mapping.flavors.prefix}-{vm.vcpus}c-{vm.memory_mib}m-{root_gb}g"
    key = f"flavor:{name}"
    step = ctx.shared.get(key) or SharedStep(
        kind=SharedKind.FLAVOR, key=key, op=Op.CREATE,
        summary=f"private flavor {name} ({vm.vcpus} vCPU, {vm.memory_mib} MiB, {root_gb} GB)",
        params={"name": name, "vcpus": vm.vcpus, "ram": vm.memory_mib, "disk": root_gb,
                "projects": []})
    if project_id and project_id not in step.params["projects"]:
        step.params["projects"].append(project_id)
        step.summary = (f"private flavor {name} ({vm.vcpus} vCPU, {vm.memory_mib} MiB, "
                        f"{root_gb} GB) for {len(step.params['projects'])} project(s)")
    ctx.share(step)
    return key


def share_images(ctx: PlanContext, vm: Vm, root: Disk | None) -> dict[str, str | None]:
    images: dict[str, str | None] = {"image": None, "kernel": None, "ramdisk": None}
    if root is not None and root.source_kind == "file":
        images["image"] = ctx.share(SharedStep(
            kind=SharedKind.IMAGE, key=f"image:{PLACEHOLDER_IMAGE}", op=Op.CREATE,
            summary=f"placeholder image {PLACEHOLDER_IMAGE} (image-backed servers need one; "
                    "never booted from)",
            params={"name": PLACEHOLDER_IMAGE, "file": None, "disk_format": "raw"}))
    for role, path, fmt in (("kernel", vm.boot.kernel, "aki"), ("ramdisk", vm.boot.initrd,
                                                                "ari")):
        if path:
            images[role] = ctx.share(SharedStep(
                kind=SharedKind.IMAGE, key=f"image:{fmt}:{path}", op=Op.CREATE,
                summary=f"{role} image from {path} (direct kernel boot survives a rebuild)",
                params={"name": f"os-onboard-{role}-{slug(path)}", "file": path,
                        "disk_format": fmt}))
    return images


def slug(path: str) -> str:
    import hashlib

    return hashlib.sha256(path.encode()).hexdigest()[:10]
