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
Data disks need a Cinder VMDK volume managed in place, which is not built yet:
until then they are refused ("no Cinder backend"), or kept out of the records
with ``local_disks: keep``.
"""

from __future__ import annotations

from os_onboard.drivers.adoption import Adoption, AdoptionOutline, KeptRoot
from os_onboard.inventory.models import Disk, Firmware, Host, Nic, Vm

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
        return AdoptionOutline(system_metadata=_sysmeta(vm, root), notes=notes,
                               root_device_name="/dev/sda" if root else None)


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
