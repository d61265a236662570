"""``unmanage``: release VMs from OpenStack, VMs untouched. Also the rollback.

It works from what OpenStack holds (found by the VM's UUID and os-onboard's
markers), not from a journal, so it also cleans up after an apply that died
half-way. Only records carrying os-onboard's marker are removed. The order
is chosen so that Nova never acts on the guest:

1. Placement allocation deleted.
2. Nova records purged by the Nova-side helper (hard delete, one
   transaction). A soft-deleted instance whose domain runs is what Nova's
   ``running_deleted_instance_action=reap`` powers off.
3. Only then the ports: with the instance still in Nova, deleting a port
   sends ``network-vif-deleted`` and Nova hot-unplugs the NIC from the guest.
4. Volumes: marked detached in Cinder's database (``os-reset_status``), then
   unmanaged. Never an attachment delete: it calls the driver's
   terminate_connection, which on iSCSI/FC tears down the export the running
   guest still reads.
5. The host-side records of the VM's driver (libvirt: the instance
   directory link, unless the domain now uses that directory — after a Nova
   rebuild its disk path *is* the link).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from os_onboard.apply.steps import DISK_KEY, IN_PLACE_KEY, PORT_DESCRIPTION
from os_onboard.cloud.base import Cloud
from os_onboard.cloud.nova_helper import NovaHelperError, run_cinder_helper, run_helper
from os_onboard.drivers.adoption import Adoption, HostOptions, HostTarget
from os_onboard.drivers.registry import available_drivers, driver_for
from os_onboard.exceptions import CloudError, OnboardError
from os_onboard.inventory.models import Vm
from os_onboard.plan.model import MARKER_KEY


@dataclass
class Release:
    uuid: str
    name: str = ""
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    error: str = ""


def unmanage(cloud: Cloud, uuid: str, *, host: str | None,
             host_uri: str | None = None, host_options: HostOptions | None = None,
             nova_python: str | None = None,
             nova_config: list[str] | None = None, live_vm: Vm | None = None,
             volumes: list[dict] | None = None) -> Release:
    """Remove os-onboard's records of one VM. Idempotent; raises nothing per record.

    :param host: the nova-compute host (when the server is already gone from
        Nova's API, the helper still needs a cell to look in).
    :param host_uri: the hypervisor the VM is on, whose driver releases its
        host-side records (None: not known; every driver releases its own).
    :param host_options: the drivers' settings (libvirt's instances_path, …).
    :param live_vm: the VM as discovered now (e.g. whether the domain uses the
        instance directory libvirt's adoption linked).
    :param volumes: Cinder's volume list, when the caller releases many VMs
        (one listing for all of them); listed here when not given.
    """
    out = Release(uuid)
    server = cloud.server(uuid)
    if server is not None:
        out.name = server["name"]
        if MARKER_KEY not in server["metadata"]:
            out.error = ("server was not adopted by os-onboard (no marker); use Nova's own "
                         "tools - and mind that deleting it stops the guest")
            return out
        host = server["host"] or host
    try:
        cloud.delete_allocations(uuid)
        out.removed.append("placement allocation")
        [result] = run_helper("release", [], nova_python, nova_config or [],
                              stdin=[{"uuid": uuid, "host": host or ""}])
        if "error" in result:
            raise CloudError(f"Nova-side helper: {result['error']}")
        if result.get("purged"):
            out.removed.append("Nova instance (purged), mapping, request spec")
        for port in cloud.ports(device_id=uuid):
            if port["description"].startswith(PORT_DESCRIPTION.split("{")[0]):
                cloud.delete_port(port["id"])
                out.removed.append(f"port {port['id']} ({port['mac']})")
            else:
                out.kept.append(f"port {port['id']} (not os-onboard's)")
        # Cinder's metadata filters match whole values only: no "<uuid>/*" query.
        released: list[str] = []
        for volume in cloud.volumes() if volumes is None else volumes:
            if not (volume.get("metadata") or {}).get(DISK_KEY, "").startswith(f"{uuid}/"):
                continue
            if volume["status"] != "available":
                cloud.reset_volume_detached(volume["id"])
            kind = volume["metadata"].get(IN_PLACE_KEY)
            if kind:
                out.removed.extend(_release_in_place(volume, kind))
            cloud.unmanage_volume(volume["id"])
            released.append(volume["id"])
            out.removed.append(
                f"volume {volume['id']} (unmanaged; the disk stays in the VM)" if kind else
                f"volume {volume['id']} (unmanaged; the backend keeps {volume['name']!r} "
                "under Cinder's name)")
        target = HostTarget(uuid=uuid, name=out.name, host_uri=host_uri or "",
                            volume_ids=tuple(released))
        for adoption in _adoptions(host_uri):
            removed, kept = adoption.release(target, live_vm, host_options or {})
            out.removed.extend(removed)
            out.kept.extend(kept)
    except OnboardError as exc:
        out.error = str(exc)
    return out


def _release_in_place(volume: dict, kind: str) -> list[str]:
    """Let the Cinder-side helper that recorded the volume in place take back what it made
    beside the record (the VMDK backing VM, never the VM's disk), before Cinder unmanages it."""
    item = {"id": volume["id"], "cinder_host": volume.get("os-vol-host-attr:host") or "",
            "path": volume["metadata"].get("os-onboard:source") or None}
    try:
        [result] = run_cinder_helper(f"release_{kind}", [item], timeout=300)
    except NovaHelperError as exc:
        raise CloudError(f"volume {volume['id']}: {exc}") from exc
    if "error" in result:
        raise CloudError(f"volume {volume['id']}: Cinder-side helper: {result['error']}")
    return [f"volume {volume['id']}: {r}" for r in result["removed"]]


def _adoptions(host_uri: str | None) -> list[Adoption]:
    """The driver of ``host_uri``; every adoption-capable driver when the host is not
    known (a VM named by UUID only): each releases only what it holds for that UUID."""
    drivers = [driver_for(host_uri)] if host_uri else list(available_drivers().values())
    return [d.adoption for d in drivers if d.adoption is not None]
