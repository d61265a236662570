"""Make a plan: inventory + mapping + OpenStack's state -> records per VM (pure).

Every rule that can block a VM lives here, and a blocked VM gets no step at
all: a plan never half-adopts a VM. The order of a VM's steps is the order
``apply`` writes them (ports and volumes first, so the Nova records can point
at them; Placement and the network cache last).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from os_onboard.drivers.adoption import Adoption, HostStep
from os_onboard.drivers.registry import driver_named
from os_onboard.exceptions import ConfigError, ResolutionError
from os_onboard.inventory.models import Disk, HostInventory, Inventory, Nic, PowerState, Vm
from os_onboard.mapping.model import Mapping
from os_onboard.mapping.resolvers.base import BackendConfig, ManageableVolume, VolumeResolver
from os_onboard.mapping.resolvers.registry import (
    resolve_disk,
    resolver_for,
    wants_manageable_list,
)
from os_onboard.plan.cloudview import CloudReader, CloudView, Scope
from os_onboard.plan.model import (
    MARKER_KEY,
    Op,
    Plan,
    SharedKind,
    SharedStep,
    Step,
    StepKind,
    VmPlan,
)
from os_onboard.plan.nova_states import NOVA_STATES, UNRECORDABLE

GIB = 1024**3

#: The placeholder image of image-backed adopted servers (never booted from:
#: the instance directory links to the legacy disk).
PLACEHOLDER_IMAGE = "os-onboard-placeholder"


@dataclass
class _Context:
    inventory: Inventory
    cloud: CloudView
    mapping: Mapping
    resolvers: list[VolumeResolver]
    renames: dict[str, str]  # disk source -> its current name (os-onboard's rename maps)
    shared: dict[str, SharedStep] = field(default_factory=dict)

    def share(self, step: SharedStep) -> str:
        self.shared.setdefault(step.key, step)
        return step.key


def build_plan(inventory: Inventory, snapshot_id: int, cloud: CloudView, mapping: Mapping,
               *, only: set[str] | None = None, mapping_file: str | None = None,
               renames: dict[str, str] | None = None) -> Plan:
    """The plan for every VM of ``inventory`` (or those named in ``only``).

    :param renames: the hosts' rename maps (``os_onboard.drivers.libvirt.hostwrite.renamemap``):
        a disk whose source an earlier adoption had Cinder rename is resolved
        under its current name (the live domain still shows the old one).
    :raises ConfigError: a backend of the mapping has no usable resolver.
    """
    resolvers = [resolver_for(b, manageable=_manageable(cloud, b)) for b in mapping.backends]
    ctx = _Context(inventory, cloud, mapping, resolvers, dict(renames or {}))
    vms: list[VmPlan] = []
    for host in inventory.hosts:
        for vm in host.vms:
            if only and vm.name not in only and vm.uuid not in only:
                continue
            vms.append(_plan_vm(ctx, host, vm))
    _block_duplicates_within_plan(vms)
    scope = _scope(inventory, vms, ctx)
    return Plan(snapshot_id=snapshot_id, cloud_fingerprint=cloud.fingerprint(scope),
                basis=scope.as_dict(), mapping_file=mapping_file,
                shared=list(ctx.shared.values()), vms=vms)


def read_cloud_view(cloud: CloudReader, mapping: Mapping) -> CloudView:
    """What a plan for ``mapping`` reads of OpenStack: the owners' projects and
    users, and the manageable lists of the backends that want them."""
    return CloudView.read(cloud, {o.project for o in mapping.owners},
                          {o.user for o in mapping.owners if o.user},
                          [b.cinder_host for b in mapping.backends if wants_manageable_list(b)])


def _manageable(cloud: CloudView, backend: BackendConfig) -> list[ManageableVolume] | None:
    if not wants_manageable_list(backend):
        return None
    listed = cloud.manageable.get(backend.cinder_host)
    if listed is None:
        raise ConfigError(f"backend {backend.name!r}: Cinder's manageable list of "
                          f"{backend.cinder_host} was not read")
    return [ManageableVolume.model_validate(entry) for entry in listed]


def _scope(inventory: Inventory, vms: list[VmPlan], ctx: _Context) -> Scope:
    planned = {v.uuid for v in vms}
    nics = [n for h in inventory.hosts for v in h.vms if v.uuid in planned for n in v.nics]
    return Scope(macs=frozenset(n.mac.lower() for n in nics),
                 ips=frozenset(a.address for n in nics for a in n.addresses),
                 uuids=frozenset(planned), nodes=frozenset(v.node for v in vms if v.node),
                 flavors=frozenset(s.params["name"] for s in ctx.shared.values()
                                   if s.kind is SharedKind.FLAVOR))


def _plan_vm(ctx: _Context, host: HostInventory, vm: Vm) -> VmPlan:
    hyp = ctx.cloud.hypervisor(host.host.hostname)
    plan = VmPlan(uuid=vm.uuid, name=vm.name, host_uri=host.host.uri,
                  host=(hyp or {}).get("service_host") or host.host.hostname or "?",
                  node=host.host.hostname, power_state=vm.power_state, op=Op.CREATE)
    existing = ctx.cloud.servers.get(vm.uuid)
    if existing is not None:
        if MARKER_KEY in existing["metadata"]:
            plan.op = Op.EXISTS
            plan.notes.append(f"already adopted ({existing['metadata'][MARKER_KEY]}); "
                              f"server {existing['name']} is {existing['status']} on "
                              f"{existing['host']}")
            return plan
        plan.blocked.append(f"UUID {vm.uuid} already belongs to Nova server "
                            f"{existing['name']!r} not adopted by os-onboard")
    blocked = plan.blocked
    if hyp is None:
        blocked.append(f"host {host.host.hostname or host.host.uri} has no nova-compute "
                       "service: run 'os-onboard prepare-host' and start nova-compute there")
    elif hyp.get("state") != "up":
        blocked.append(f"nova-compute on {hyp['service_host']} is {hyp.get('state')}")
    if vm.power_state not in NOVA_STATES:
        blocked.append(f"power state {vm.power_state} cannot be recorded safely; adopt it "
                       "running, paused or shut off")
    if vm.caveats:
        blocked.append("devices Nova cannot represent: "
                       + "; ".join(f"{c.kind} ({c.detail})" for c in vm.caveats))
    if not vm.persistent:
        blocked.append("transient domain: Nova needs a persistent definition to restart it")
    owner = ctx.mapping.owner_for(host.host.uri, vm)
    project_id = user_id = None
    if owner is None:
        blocked.append("no owner rule of the mapping matches this VM")
    else:
        project_id = ctx.cloud.projects.get(owner.project)
        if project_id is None:
            blocked.append(f"project {owner.project!r} does not exist in Keystone")
        if owner.user:
            user_id = ctx.cloud.users.get(owner.user)
            if user_id is None:
                blocked.append(f"user {owner.user!r} does not exist in Keystone")

    # Shared records (flavors, images, networks) a VM would need count only if
    # the VM is adopted: a blocked VM must not leave a flavor behind.
    shared_before = {k: v.model_copy(deep=True) for k, v in ctx.shared.items()}
    adoption = _adoption(host, blocked)
    port_steps = [s for nic in vm.nics if (s := _port_step(ctx, vm, nic, plan, adoption))]
    root, volume_steps, dir_steps = _disk_steps(ctx, host, vm, plan, adoption)
    flavor_key = _flavor(ctx, vm, root, owner.project if owner else None, project_id, plan)
    images = _images(ctx, vm, root)
    vm_state, power = NOVA_STATES.get(vm.power_state, UNRECORDABLE)
    outline = adoption.outline(vm, root, [s.params["source"] for s in volume_steps]) \
        if adoption else None
    if outline:
        plan.rebuild_changes.extend(outline.rebuild_changes)
        plan.notes.extend(outline.notes)
    if blocked:
        plan.op = Op.BLOCKED
        ctx.shared = shared_before
        return plan
    server = Step(kind=StepKind.SERVER, key="server", op=Op.CREATE,
                  summary=f"Nova instance {vm.uuid} on {plan.host}/{plan.node}, "
                          f"{vm_state}, flavor {flavor_key.split(':', 1)[1]}",
                  params={"name": vm.name, "project_id": project_id, "user_id": user_id,
                          "flavor": flavor_key, "images": images, "vm_state": vm_state,
                          "power_state": power,
                          "system_metadata": outline.system_metadata if outline else {},
                          "root_device_name": f"/dev/{root.target}" if root else None,
                          "root_kind": _root_kind(root, volume_steps),
                          "launched_at": None})
    allocation = Step(kind=StepKind.ALLOCATION, key="allocation", op=Op.CREATE,
                      summary=f"Placement: {vm.vcpus} VCPU, {vm.memory_mib} MEMORY_MB"
                              f"{_disk_gb_text(root, volume_steps)} on {plan.node}",
                      params={"project_id": project_id, "user_id": user_id})
    cache = Step(kind=StepKind.NETWORK_CACHE, key="network-cache", op=Op.CREATE,
                 summary="Nova network info cache rebuilt from the ports", params={})
    host_steps = [_host_step(h) for h in outline.steps] if outline else []
    plan.steps = [*port_steps, *volume_steps, *host_steps, *dir_steps, server, allocation,
                  cache]
    return plan


# -- NICs -----------------------------------------------------------------------

def _adoption(host: HostInventory, blocked: list[str]) -> Adoption | None:
    """The driver's adoption capability for this host, or why there is none."""
    try:
        adoption = driver_named(host.host.kind).adoption
    except ConfigError as exc:
        blocked.append(str(exc))
        return None
    if adoption is None:
        blocked.append(f"os-onboard's {host.host.kind} driver cannot adopt VMs yet "
                       "(discovery and drift only)")
    return adoption


def _host_step(step: HostStep) -> Step:
    return Step(kind=StepKind.HOST, key=step.key, op=Op.CREATE, summary=step.summary,
                params=dict(step.params))


def _port_step(ctx: _Context, vm: Vm, nic: Nic, plan: VmPlan,
               adoption: Adoption | None) -> Step | None:
    mac = nic.mac.lower()
    refusal = adoption.nic_refusal(nic) if adoption else None
    if refusal:
        plan.blocked.append(refusal)
        return None
    rule = ctx.mapping.network_for(nic)
    if rule is None:
        plan.blocked.append(f"NIC {mac} (network {nic.network}, bridge {nic.bridge}) matches "
                            "no network rule of the mapping")
        return None
    network = ctx.cloud.network(rule.neutron_network)
    subnets: list[dict] = []
    if network is not None:
        subnets = [s for s in ctx.cloud.subnets if s["network_id"] == network["id"]
                   and (rule.subnet is None or rule.subnet in (s["id"], s["name"]))]
    elif rule.create is not None:
        ctx.share(SharedStep(
            kind=SharedKind.NETWORK, key=f"network:{rule.neutron_network}", op=Op.CREATE,
            summary=f"provider network {rule.neutron_network} ({rule.create.network_type} on "
                    f"{rule.create.physical_network}"
                    + (f", segment {rule.create.segment}" if rule.create.segment else "")
                    + f"), subnet {rule.subnet or rule.neutron_network} {rule.create.cidr} "
                      "with DHCP off",
            params={"name": rule.neutron_network, "subnet": rule.subnet or rule.neutron_network,
                    **rule.create.model_dump()}))
        subnets = [{"id": None, "name": rule.subnet or rule.neutron_network,
                    "cidr": rule.create.cidr, "enable_dhcp": False}]
    else:
        plan.blocked.append(f"Neutron network {rule.neutron_network!r} does not exist "
                            "(add 'create:' to its mapping rule to have it created)")
        return None
    for subnet in subnets:
        if subnet.get("enable_dhcp"):
            plan.notes.append(f"subnet {subnet['name']} has DHCP on: Neutron's DHCP server "
                              "may answer beside the legacy one")
    theirs = [p for p in ctx.cloud.ports if p["mac"] == mac and p["device_id"] != vm.uuid]
    if theirs:
        plan.blocked.append(f"MAC {mac} is already used by Neutron port {theirs[0]['id']}"
                            + (f" of {theirs[0]['device_id']}" if theirs[0]["device_id"] else ""))
        return None
    ours = [p for p in ctx.cloud.ports if p["mac"] == mac and p["device_id"] == vm.uuid]
    fixed_ips: list[dict] = []
    for addr in nic.addresses:
        ip = ipaddress.ip_address(addr.address)
        if ip.is_link_local:
            continue  # fe80:: is derived from the MAC, never a Neutron fixed IP
        subnet = next((s for s in subnets if ip in ipaddress.ip_network(s["cidr"])), None)
        if subnet is None:
            cidrs = ", ".join(s["cidr"] for s in subnets) or "none"
            plan.blocked.append(f"IP {ip} of NIC {mac} is outside every mapped subnet "
                                f"({cidrs})")
            continue
        used = [p for p in ctx.cloud.ports if p["device_id"] != vm.uuid
                and any(f["ip_address"] == str(ip) for f in p["fixed_ips"])
                and (network is None or p["network_id"] == network["id"])]
        if used:
            plan.blocked.append(f"IP {ip} of NIC {mac} is already used by Neutron port "
                                f"{used[0]['id']}")
            continue
        fixed_ips.append({"subnet": subnet["id"] or subnet["name"], "ip_address": str(ip)})
    if not nic.addresses and vm.power_state == PowerState.RUNNING:
        plan.notes.append(f"NIC {mac} shows no IP (no lease): its port gets none either")
    ips = ", ".join(f["ip_address"] for f in fixed_ips) or "no IP"
    return Step(kind=StepKind.PORT, key=f"port:{mac}", op=Op.EXISTS if ours else Op.CREATE,
                summary=f"port {mac} on {rule.neutron_network} ({ips}), bound to {plan.host}",
                params={"mac": mac, "network": rule.neutron_network, "fixed_ips": fixed_ips,
                        "bridge": nic.bridge, "model": nic.model,
                        "port_id": ours[0]["id"] if ours else None})


def _block_duplicates_within_plan(vms: list[VmPlan]) -> None:
    """Two VMs of one plan with one MAC or IP: both blocked (which one is real?)."""
    seen: dict[str, list[VmPlan]] = {}
    for vm in vms:
        for step in vm.steps:
            if step.kind is StepKind.PORT:
                seen.setdefault(f"MAC {step.params['mac']}", []).append(vm)
                for ip in step.params["fixed_ips"]:
                    seen.setdefault(f"IP {ip['ip_address']} on {step.params['network']}",
                                    []).append(vm)
    for what, holders in seen.items():
        if len({v.uuid for v in holders}) > 1:
            names = ", ".join(sorted({v.name for v in holders}))
            for vm in holders:
                vm.blocked.append(f"{what} is used by several VMs ({names})")
                vm.op, vm.steps = Op.BLOCKED, []


# -- disks ----------------------------------------------------------------------

def _root_disk(vm: Vm) -> Disk | None:
    disks = [d for d in vm.disks if d.device == "disk"]
    booted = sorted((d for d in disks if d.boot_order), key=lambda d: d.boot_order or 0)
    return (booted or disks or [None])[0]


def _root_kind(root: Disk | None, volume_steps: list[Step]) -> str:
    if root is None:
        return "none"
    return "volume" if any(s.params["target"] == root.target for s in volume_steps) else "local"


def _disk_steps(ctx: _Context, host: HostInventory, vm: Vm, plan: VmPlan,
                adoption: Adoption | None) -> tuple[Disk | None, list[Step], list[Step]]:
    root = _root_disk(vm)
    volumes: list[Step] = []
    dirs: list[Step] = []
    for disk in vm.disks:
        if disk.device in ("cdrom", "floppy"):
            plan.rebuild_changes.append(f"{disk.device} {disk.target} "
                                        f"({disk.source or 'empty'}) is dropped")
            continue
        current = ctx.renames.get(disk.source or "")
        try:
            ref = resolve_disk(disk.model_copy(update={"source": current}) if current else disk,
                               host, ctx.resolvers)
        except ResolutionError as exc:
            plan.blocked.append(str(exc))
            continue
        if ref is not None:
            size_gib = -(-(disk.capacity_bytes or GIB) // GIB)
            volumes.append(Step(
                kind=StepKind.VOLUME, key=f"volume:{disk.target}", op=Op.CREATE,
                summary=f"Cinder manages {disk.source} on {ref.backend} as a {size_gib} GiB "
                        f"volume, attached in-use as {disk.target}",
                params={"target": disk.target, "bus": disk.bus, "source": disk.source,
                        "current_source": current,
                        "cinder_host": ref.cinder_host, "ref": ref.ref,
                        "size_gib": size_gib, "boot": disk is root,
                        "evidence": ref.evidence}))
            plan.notes.extend(f"{disk.target}: {n}" for n in ref.notes)
            if current:
                plan.notes.append(f"{disk.target}: {disk.source} was renamed to {current} by an "
                                  "earlier adoption (rename map); Cinder manages it by that name")
            continue
        kept = adoption.keep_local_root(vm, disk) if adoption and disk is root else None
        if kept is not None:
            dirs.append(_host_step(kept))
            continue
        if disk.source_kind == "file" and ctx.mapping.local_disks == "keep":
            plan.rebuild_changes.append(
                f"disk {disk.target} ({disk.source}) stays a local file Nova does not know: "
                "a Nova rebuild (stop/start, hard reboot, migration) drops it from the domain")
            continue
        plan.blocked.append(f"disk {disk.target} ({disk.source_kind} {disk.source}) has no "
                            "Cinder backend in the mapping"
                            + (" (or set local_disks: keep)" if disk.source_kind == "file"
                               else ""))
    if root is None:
        plan.blocked.append("no disk to boot from")
    return root, volumes, dirs


# -- flavor, images, metadata -------------------------------------------------

def _flavor(ctx: _Context, vm: Vm, root: Disk | None, project: str | None,
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


def _images(ctx: _Context, vm: Vm, root: Disk | None) -> dict[str, str | None]:
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
                params={"name": f"os-onboard-{role}-{_slug(path)}", "file": path,
                        "disk_format": fmt}))
    return images


def _slug(path: str) -> str:
    import hashlib

    return hashlib.sha256(path.encode()).hexdigest()[:10]


def _disk_gb_text(root: Disk | None, volume_steps: list[Step]) -> str:
    if root is None or root.source_kind != "file":
        return ""
    return f", {(root.capacity_bytes or 0) // GIB} DISK_GB"
