"""A VM's NICs -> Neutron port steps, and MACs/IPs used twice within one plan."""

from __future__ import annotations

import ipaddress

from os_onboard.drivers.adoption import Adoption
from os_onboard.inventory.models import Nic, PowerState, Vm
from os_onboard.plan.context import PlanContext
from os_onboard.plan.model import (
    PORT_DESCRIPTION_PREFIX,
    Op,
    SharedKind,
    SharedStep,
    Step,
    StepKind,
    VmPlan,
)


def port_step(ctx: PlanContext, vm: Vm, nic: Nic, plan: VmPlan,
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
                            + (f" of {theirs[0]['device_id']}" if theirs[0]["device_id"] else "")
                            + orphan_note(ctx, theirs[0]))
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
                                f"{used[0]['id']}" + orphan_note(ctx, used[0]))
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


def orphan_note(ctx: PlanContext, port: dict) -> str:
    """What to add when the port in the way is an orphan of os-onboard's: made by an
    apply (its description) for a server that no longer exists."""
    if not (port.get("description") or "").startswith(PORT_DESCRIPTION_PREFIX) \
            or port["device_id"] in ctx.cloud.servers:
        return ""
    return ("; it is an orphan of os-onboard (its server is gone: deleted through Nova, "
            "or an apply abandoned): 'os-onboard cleanup' removes it")


def block_duplicates_within_plan(vms: list[VmPlan]) -> None:
    """Two VMs of one plan with one MAC or IP: both blocked (which one is real?).

    Also two VMs with one UUID (vSphere's instanceUuid can repeat: clones):
    Nova's VMware driver would manage whichever it finds first. One VM seen
    twice (a libvirt definition left on the source host after a migration,
    shut off, same name) is not such a pair.
    """
    by_uuid: dict[str, list[VmPlan]] = {}
    for vm in vms:
        by_uuid.setdefault(vm.uuid, []).append(vm)
    for uuid, twins in by_uuid.items():
        active = [v for v in twins if v.power_state != "shutoff"]
        if len({v.name for v in twins}) > 1 or len(active) > 1:
            names = ", ".join(sorted({f"{v.name} on {v.host_uri}" for v in twins}))
            for vm in twins:
                vm.blocked.append(f"UUID {uuid} is used by several VMs ({names}): Nova would "
                                  "manage whichever its driver finds first")
                vm.op, vm.steps = Op.BLOCKED, []
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
