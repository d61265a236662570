"""nic-added, nic-removed, ip-changed: Neutron ports and Nova's VIFs follow.

* added: the port the planner would make for this NIC now (MAC, fixed IPs,
  ``device_id``, ``device_owner`` compute:<az>, ``binding:host_id``, bound by
  the onboard_bridge driver) created by apply's own step; then the Nova
  VirtualInterface and the network info cache (Nova's own code, forced
  refresh). Neutron's network-changed and vif-plugged events for it only
  refresh the cache or wake nobody.
* removed: the port is first made not Nova's (``device_id`` and owner
  cleared: Neutron then sends Nova no event), then deleted, then its VIF and
  cache entry go. Deleting a port still owned by the instance would send
  ``network-vif-deleted``, on which Nova detaches the interface from the
  guest. Ports os-onboard did not create are unbound, not deleted.
* ip-changed: the port's fixed IPs (subnets found by CIDR on its network),
  then the cache.
"""

from __future__ import annotations

import ipaddress

from os_onboard.apply.steps import PORT_DESCRIPTION, ensure_port
from os_onboard.exceptions import CloudError
from os_onboard.plan.model import StepKind
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome

OURS = PORT_DESCRIPTION.split("{")[0]


def _refresh_cache(ctx: Context, uuid: str, host: str) -> list[str]:
    result = ctx.helper({"uuid": uuid, "host": host}, command="network_cache")
    return [v["mac"] for v in result.get("vifs", [])]


def added(ctx: Context, drift: Drift) -> Outcome:
    mac = drift.detail["mac"]
    vm_plan, step = ctx.planned_step(drift.uuid, StepKind.PORT, "mac", mac,
                                     f"port for NIC {mac}")
    port = ensure_port(ctx.apply_env(), vm_plan, step)
    ctx.helper({"uuid": drift.uuid, "add_vifs": [{"id": port["port_id"], "mac": mac}]})
    macs = _refresh_cache(ctx, drift.uuid, vm_plan.host)
    return Outcome(drift, "tolerated",
                   f"port {port['port_id']} ({', '.join(port['ips']) or 'no IP'}, "
                   f"{port['vif_type']}) bound to {vm_plan.host}; VIF added; cache has "
                   f"{len(macs)} NIC(s)")


def removed(ctx: Context, drift: Drift) -> Outcome:
    mac = drift.detail["mac"]
    ports = [p for p in ctx.cloud.ports(device_id=drift.uuid) if p["mac"] == mac]
    done = []
    for port in ports:
        # Not Nova's any more: no network-vif-deleted (= hot-unplug) on delete.
        ctx.cloud.update_port(port["id"], device_id="", device_owner="")
        if port["description"].startswith(OURS):
            ctx.cloud.delete_port(port["id"])
            done.append(f"port {port['id']} deleted")
        else:
            done.append(f"port {port['id']} (not os-onboard's) unbound, kept")
    ctx.helper({"uuid": drift.uuid, "remove_vifs": [p["id"] for p in ports]})
    macs = _refresh_cache(ctx, drift.uuid, ctx.compute_host(drift.uuid))
    return Outcome(drift, "tolerated",
                   "; ".join(done or ["no port"]) + f"; VIF removed; cache has "
                   f"{len(macs)} NIC(s)")


def ip_changed(ctx: Context, drift: Drift) -> Outcome:
    mac = drift.detail["mac"]
    found = ctx.vm(drift.uuid)
    nic = next((n for n in found[1].nics if n.mac.lower() == mac), None) if found else None
    [port] = [p for p in ctx.cloud.ports(device_id=drift.uuid) if p["mac"] == mac] or [None]
    if nic is None or port is None:
        raise CloudError(f"NIC {mac} or its port vanished since the pass read them")
    subnets = [s for s in ctx.cloud.subnets() if s["network_id"] == port["network_id"]]
    fixed_ips = []
    for address in nic.addresses:
        ip = ipaddress.ip_address(address.address)
        if ip.is_link_local:
            continue
        subnet = next((s for s in subnets if ip in ipaddress.ip_network(s["cidr"])), None)
        if subnet is None:
            raise CloudError(f"IP {ip} of NIC {mac} is outside the subnets of its network")
        fixed_ips.append({"subnet_id": subnet["id"], "ip_address": str(ip)})
    ctx.cloud.update_port(port["id"], fixed_ips=fixed_ips)
    _refresh_cache(ctx, drift.uuid, ctx.compute_host(drift.uuid))
    return Outcome(drift, "tolerated", f"port {port['id']} fixed IPs now "
                   + ", ".join(f["ip_address"] for f in fixed_ips))
