"""The vSphere side of adoption: what Nova's VMware driver needs beside the records.

Nova's VMware driver (one nova-compute per vCenter cluster, compute node
``<cluster moref>.<vCenter instanceUuid>``) finds an instance's VM by
``SearchIndex.FindAllByUuid`` on ``config.instanceUuid``: a VM whose
instanceUuid *is* the Nova instance's UUID needs no write to be found, and
stop/start, reboot and power sync act on the VM as it is (the driver never
regenerates it for those). So adoption writes nothing to vCenter here:

* the root disk stays in the VM (image-backed server, a placeholder image);
* ``nvp.vm-uuid`` is never written: ``list_instances`` returns only VMs
  tagged with it, and Nova's reaper (``running_deleted_instance_action=reap``)
  destroys a tagged VM whose instance record is deleted; the driver's start-up
  sanity check also refuses a new compute service whose cluster has tagged
  VMs (``nova/virt/vmwareapi/driver.py``, ``vmops.py``);
* NICs stay on their port groups; their Neutron ports are bound ``dvs`` on the
  cluster's nova-compute by the lab's mechanism driver (extras/neutron).

Refused with a reason: VMs outside a cluster (no nova-compute manages a
standalone host), NICs not on a port group (NSX opaque networks), and what
the generic rules refuse (templates and devices Nova cannot represent are
caveats of the inventory; duplicate instanceUuids are blocked by the planner).
Data disks on a ``vmware-vmdk`` backend of the mapping become Cinder volumes
recorded in place (mapping/resolvers/vmdk.py, extras/cinder); for each, the
one write to the VM this driver makes, as a plan step (``volume-keys``):
``extraConfig["volume-<id>"]``, which Nova's driver needs to detach it later
(hostwrite.py says why it is live-safe). ``unmanage`` removes those keys.
Without such a backend a data disk is refused ("no Cinder backend"), or kept
out of the records with ``local_disks: keep``.
"""

from __future__ import annotations

from typing import Any

from os_onboard.drivers.adoption import (
    Adoption,
    AdoptionOutline,
    HostOptions,
    HostStep,
    HostTarget,
    KeptRoot,
)
from os_onboard.drivers.vsphere import hostwrite
from os_onboard.drivers.vsphere.endpoint import find_password, parse_uri
from os_onboard.exceptions import ConfigError, OnboardError
from os_onboard.inventory.models import Disk, Firmware, Host, Nic, Vm

#: the host step writing Nova's extraConfig key of each volume recorded in place
VOLUME_KEYS = "volume-keys"

#: NIC backings Nova's VMware driver can plug a port into (vif type dvs)
PORT_GROUP_KINDS = ("portgroup", "distributed-portgroup")


class VsphereAdoption(Adoption):
    #: Nova's VMware driver emits no lifecycle events: only its power sync
    #: (every 600 s) reads the VM, so a power-off is recorded at once, and a quick
    #: restart is recorded ACTIVE again within the change feed's seconds.
    shutdown_grace = 0.0
    #: a VM is registered on one host whatever its power state: a cold
    #: relocation to another cluster moves the instance too
    placed_when_off = True
    #: the VM's name is what people call it in vCenter (Nova names its own VMs by uuid)
    vm_name_is_display_name = True
    root_stays_in_vm = True
    step_keys = frozenset({VOLUME_KEYS})
    volume_step_keys = frozenset({VOLUME_KEYS})

    def compute_node(self, host: Host, vm: Vm) -> str | None:
        cluster = vm.location.cluster_id if vm.location else None
        if not cluster or not host.uuid:
            return None
        return f"{cluster}.{host.uuid}"  # nova.virt.vmwareapi.driver._create_nodename

    def covers_node(self, host: Host, node: str) -> bool:
        return bool(host.uuid) and node.endswith(f".{host.uuid}")  # any cluster of it

    def vm_refusals(self, host: Host, vm: Vm) -> list[str]:
        reasons = []
        if vm.location is None or not vm.location.cluster_id:
            where = vm.location.host if vm.location else None
            reasons.append(f"VM runs on standalone host {where or '?'}: Nova's VMware driver "
                           "manages clusters (one nova-compute per cluster)")
        if not host.uuid:
            reasons.append("vCenter's instance UUID was not read: Nova's node name needs it")
        return reasons

    def nic_refusal(self, nic: Nic) -> str | None:
        if nic.source_kind in PORT_GROUP_KINDS:
            return None
        return (f"NIC {nic.mac.lower()} is on a {nic.source_kind}: only NICs on a port group "
                "can be bound to a port Nova's VMware driver knows")

    def disk_may_be_volume(self, disk: Disk, is_root: bool) -> bool:
        # a VMDK on a datastore becomes a volume in place (a vmware-vmdk backend); the
        # root stays part of the VM
        if disk.format == "vmdk" and (disk.source or "").startswith("["):
            return not is_root
        return super().disk_may_be_volume(disk, is_root)

    def unrecorded_disk_fate(self) -> str:
        return ("it stays attached to the VM (Nova's VMware driver does not regenerate it); "
                "Nova does not count it")

    def keep_local_root(self, vm: Vm, disk: Disk) -> KeptRoot | None:
        if disk.source_kind != "file":
            return None
        return KeptRoot(note=f"root disk {disk.source} stays in the VM: Nova's VMware driver "
                             "acts on the VM in place (power, reboot); nothing is written")

    def outline(self, vm: Vm, root: Disk | None, volume_sources: list[str]) -> AdoptionOutline:
        notes = ["found by Nova's VMware driver through its instanceUuid; os-onboard writes "
                 "nothing to vCenter (no nvp.vm-uuid tag: Nova's reaper destroys tagged VMs "
                 "whose record is deleted)"]
        # Nova names a VMware server's root /dev/sda (no driver default: compute_utils'
        # get_next_device_name), and derives each attached volume's name from it.
        in_place = [d for d in vm.disks if d.source in volume_sources and d.disk_uuid
                    and d is not root]
        steps = []
        if in_place:
            keys = {f"volume-{d.disk_uuid}": d.disk_uuid for d in in_place}
            steps.append(HostStep(
                key=VOLUME_KEYS, params={"keys": keys},
                summary=f"vCenter: ReconfigVM_Task on {vm.name} sets extraConfig "
                        f"{', '.join(sorted(keys))} (the disk's uuid each): Nova's VMware "
                        "driver finds an attached volume's disk by it when it detaches the "
                        "volume; a configuration key only, which the guest does not see"))
            notes = [notes[0].replace("writes nothing to vCenter",
                                      "writes to vCenter only the volume-keys step")]
        return AdoptionOutline(steps=steps, system_metadata=_sysmeta(vm, root), notes=notes,
                               root_device_name="/dev/sda" if root else None)

    def execute(self, key: str, target: HostTarget, params: dict[str, Any],
                results: dict[str, dict], options: HostOptions) -> dict:
        if key != VOLUME_KEYS:
            return super().execute(key, target, params, results, options)
        endpoint = parse_uri(target.host_uri)
        written = hostwrite.set_extra_config(endpoint, find_password(endpoint), target.uuid,
                                             params["keys"])
        return {"written": sorted(written), "keys": params["keys"]}

    def release(self, target: HostTarget, live_vm: Vm | None,
                options: HostOptions) -> tuple[list[str], list[str]]:
        if not target.volume_ids or not target.host_uri.startswith("vsphere"):
            return [], []
        keys = {f"volume-{v}": "" for v in target.volume_ids}
        try:
            endpoint = parse_uri(target.host_uri)
            removed = hostwrite.set_extra_config(endpoint, find_password(endpoint),
                                                 target.uuid, keys)
        except (ConfigError, OnboardError) as exc:
            return [], [f"extraConfig {', '.join(sorted(keys))} on the VM: {exc}"]
        return [f"extraConfig {k} on the VM" for k in sorted(removed)], []


def _sysmeta(vm: Vm, root: Disk | None) -> dict[str, str]:
    """``image_*`` properties Nova's VMware driver reads (vmops.VMwareImage, vif model)."""
    meta: dict[str, str] = {}
    if vm.guest_os:
        meta["image_vmware_ostype"] = vm.guest_os
    models = [n.model for n in vm.nics if n.model]
    if models:
        meta["image_hw_vif_model"] = models[0]
    if vm.firmware == Firmware.UEFI:
        meta["image_hw_firmware_type"] = "uefi"
    if root is not None and root.thin is not None:
        meta["image_vmware_disktype"] = "thin" if root.thin else "preallocated"
    return meta
