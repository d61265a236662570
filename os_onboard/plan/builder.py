"""Make a plan: inventory + mapping + OpenStack's state -> records per VM (pure).

Every rule that can block a VM lives here, and a blocked VM gets no step at
all: a plan never half-adopts a VM. The order of a VM's steps is the order
``apply`` writes them (ports and volumes first, so the Nova records can point
at them; Placement and the network cache last).
"""

from __future__ import annotations

from os_onboard.drivers.adoption import Adoption
from os_onboard.drivers.registry import driver_named
from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import HostInventory, Inventory, Vm
from os_onboard.mapping.model import Mapping
from os_onboard.mapping.resolvers.base import BackendConfig, ManageableVolume
from os_onboard.mapping.resolvers.registry import (
    resolver_for,
    wants_manageable_list,
)
from os_onboard.plan.cloudview import CloudReader, CloudView, Scope
from os_onboard.plan.context import PlanContext, host_step
from os_onboard.plan.disks import disk_gb_text, disk_steps, root_kind
from os_onboard.plan.model import (
    MARKER_KEY,
    Op,
    Plan,
    SharedKind,
    Step,
    StepKind,
    VmPlan,
)
from os_onboard.plan.nics import block_duplicates_within_plan, port_step
from os_onboard.plan.nova_states import NOVA_STATES, UNRECORDABLE
from os_onboard.plan.shared import share_flavor, share_images


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
    ctx = PlanContext(inventory, cloud, mapping, resolvers, dict(renames or {}))
    vms: list[VmPlan] = []
    for host in inventory.hosts:
        for vm in host.vms:
            if only and vm.name not in only and vm.uuid not in only:
                continue
            vms.append(_plan_vm(ctx, host, vm))
    block_duplicates_within_plan(vms)
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


def _scope(inventory: Inventory, vms: list[VmPlan], ctx: PlanContext) -> Scope:
    planned = {v.uuid for v in vms}
    nics = [n for h in inventory.hosts for v in h.vms if v.uuid in planned for n in v.nics]
    return Scope(macs=frozenset(n.mac.lower() for n in nics),
                 ips=frozenset(a.address for n in nics for a in n.addresses),
                 uuids=frozenset(planned), nodes=frozenset(v.node for v in vms if v.node),
                 flavors=frozenset(s.params["name"] for s in ctx.shared.values()
                                   if s.kind is SharedKind.FLAVOR))


def _plan_vm(ctx: PlanContext, host: HostInventory, vm: Vm) -> VmPlan:
    refusals: list[str] = []
    adoption = _adoption(host, refusals)
    node = adoption.compute_node(host.host, vm) if adoption else host.host.hostname
    hyp = ctx.cloud.hypervisor(node) if node else None
    plan = VmPlan(uuid=vm.uuid, name=vm.name, host_uri=host.host.uri,
                  host=(hyp or {}).get("service_host") or node or host.host.hostname or "?",
                  node=node, power_state=vm.power_state, op=Op.CREATE)
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
    blocked.extend(refusals)
    if adoption is not None:
        blocked.extend(adoption.vm_refusals(host.host, vm))
    # node None: no node can manage the VM, and the driver's refusals say why.
    if hyp is None and node is not None and node == host.host.hostname:
        blocked.append(f"host {host.host.hostname or host.host.uri} has no nova-compute "
                       "service: run 'os-onboard prepare-host' and start nova-compute there")
    elif hyp is None and node is not None:
        blocked.append(f"no nova-compute manages compute node {node} (of "
                       f"{host.host.hostname or host.host.uri})")
    elif hyp is not None and hyp.get("state") != "up":
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
    port_steps = [s for nic in vm.nics if (s := port_step(ctx, vm, nic, plan, adoption))]
    root, volume_steps, dir_steps = disk_steps(ctx, host, vm, plan, adoption)
    flavor_key = share_flavor(ctx, vm, root, owner.project if owner else None, project_id, plan)
    images = share_images(ctx, vm, root)
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
                          "root_device_name": (outline.root_device_name if outline and
                                               outline.root_device_name else
                                               f"/dev/{root.target}" if root else None),
                          "root_kind": root_kind(root, volume_steps),
                          "launched_at": None})
    allocation = Step(kind=StepKind.ALLOCATION, key="allocation", op=Op.CREATE,
                      summary=f"Placement: {vm.vcpus} VCPU, {vm.memory_mib} MEMORY_MB"
                              f"{disk_gb_text(root, volume_steps)} on {plan.node}",
                      params={"project_id": project_id, "user_id": user_id})
    cache = Step(kind=StepKind.NETWORK_CACHE, key="network-cache", op=Op.CREATE,
                 summary="Nova network info cache rebuilt from the ports", params={})
    host_steps = [host_step(h) for h in outline.steps] if outline else []
    plan.steps = [*port_steps, *volume_steps, *host_steps, *dir_steps, server, allocation,
                  cache]
    return plan


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


