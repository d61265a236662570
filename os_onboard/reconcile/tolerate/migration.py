"""host-changed: an out-of-band live migration; the records follow the VM.

Order (docs/nova-out-of-band.md §3): the Nova instance's host/node/compute_id
first - the source's delayed STOPPED event then finds an instance that is
not its own - then the Placement allocation moved to the destination's
provider (one PUT with the consumer generation), each port's
``binding:host_id``, and each Cinder attachment's connector host (Nova reads
none of these three on its power paths, so their order does not matter).
"""

from __future__ import annotations

from os_onboard.apply.steps import _nova_connection_info
from os_onboard.exceptions import CloudError
from os_onboard.plan.nova_states import NOVA_STATES
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome


def connector(host: str, host_ip: str | None, target: str) -> dict:
    """What os-brick reports for a host without iSCSI/FC initiators (as apply sends)."""
    return {"host": host, "ip": host_ip or "127.0.0.1", "platform": "x86_64",
            "mountpoint": f"/dev/{target}", "os_type": "linux", "multipath": False,
            "enforce_multipath": False, "do_local_attach": False}


def moved(ctx: Context, drift: Drift) -> Outcome:
    host, node = drift.detail["host"], drift.detail["node"]
    provider = ctx.providers.get(node)
    if provider is None:
        raise CloudError(f"no compute node {node} in Nova: run prepare-host and start "
                         "nova-compute there")
    found = ctx.vm(drift.uuid)
    power = NOVA_STATES.get(found[1].power_state) if found else None
    ctx.helper({"uuid": drift.uuid, "host": host, "node": node,
                "power_state": power[1] if power else 1})
    current = ctx.cloud.allocations(drift.uuid)
    allocations = current.get("allocations") or {}
    resources: dict[str, int] = {}
    for alloc in allocations.values():
        for rc, amount in alloc.get("resources", {}).items():
            resources[rc] = resources.get(rc, 0) + amount
    if resources and list(allocations) != [provider]:
        ctx.cloud.put_allocations(drift.uuid, provider, resources, current["project_id"],
                                  current["user_id"], current.get("consumer_generation"))
    moved_ports = 0
    for port in ctx.cloud.ports(device_id=drift.uuid):
        if port["host"] != host:
            ctx.cloud.update_port(port["id"], binding_host_id=host)
            moved_ports += 1
    moved_volumes = _attachments(ctx, drift.uuid, host, node)
    return Outcome(drift, "tolerated",
                   f"instance on {host}/{node}, allocation on {node}, "
                   f"{moved_ports} port binding(s), {moved_volumes} volume connector(s) moved")


def _attachments(ctx: Context, uuid: str, host: str, node: str) -> int:
    """Each attachment's connector names the destination; the BDM keeps the new
    connection info (Nova rebuilds the guest's disks from it)."""
    host_ip = next((h.get("host_ip") for h in ctx.hypervisors if h["node"] == node), None)
    bdms = []
    for volume in ctx.cloud.volumes():
        for attachment in volume.get("attachments") or []:
            if attachment.get("server_id") != uuid:
                continue
            if attachment.get("host_name") == host:
                continue
            target = (attachment.get("device") or "/dev/vdx").removeprefix("/dev/")
            updated = ctx.cloud.update_attachment(attachment["attachment_id"],
                                                  connector(host, host_ip, target))
            # Cinder leaves an updated attachment 'attaching' (volume_attached with
            # mark_attached=False), as for Nova's own moves: complete it again.
            ctx.cloud.complete_attachment(attachment["attachment_id"])
            bdms.append({"volume_id": volume["id"], "connection_info": _nova_connection_info(
                updated.get("connection_info") or {}, volume["id"])})
    if bdms:
        ctx.helper({"uuid": uuid, "bdm_connection_info": bdms})
    return len(bdms)
