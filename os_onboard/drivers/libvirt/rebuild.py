"""What Nova's libvirt driver does when it rebuilds an adopted domain, and before.

Nova regenerates the domain XML from its records on stop/start, hard reboot
and migration: :func:`sysmeta` gives it the ``image_*`` properties that keep
the guest's machine type, buses, NIC model and firmware; :func:`rebuild_changes`
lists what will differ all the same; :func:`live_migration_limits` says why
libvirt refuses a Nova live migration until that first rebuild.
"""

from __future__ import annotations

from os_onboard.inventory.models import Disk, Vm


def sysmeta(vm: Vm, root: Disk | None) -> dict[str, str]:
    """``image_*`` system metadata: Nova rebuilds the domain from these."""
    meta: dict[str, str] = {}
    if vm.machine_type:
        meta["image_hw_machine_type"] = vm.machine_type
    if root is not None and root.bus:
        meta["image_hw_disk_bus"] = root.bus
    models = [n.model for n in vm.nics if n.model]
    if models:
        meta["image_hw_vif_model"] = models[0]
    if any(d.bus == "scsi" for d in vm.disks):
        meta["image_hw_scsi_model"] = "virtio-scsi"
    if vm.firmware == "uefi":  # Firmware.UEFI (a StrEnum); "efi" is libvirt's spelling
        meta["image_hw_firmware_type"] = "uefi"
    if vm.boot.cmdline:
        meta["image_os_command_line"] = vm.boot.cmdline
    if vm.guest_os:
        meta["image_os_distro"] = vm.guest_os
    return meta


def rebuild_changes(vm: Vm, root: Disk | None) -> list[str]:
    changes = [f"domain name becomes instance-<id> (UUID {vm.uuid} is kept)",
               "the serial console log moves to <instances_path>/<uuid>/console.log",
               "XML elements outside Nova's model (channels, memballoon, tuning, <tcg>) "
               "take Nova's defaults"]
    if root is not None and root.identifiers.serial:
        changes.append(f"root disk {root.target} loses <serial>{root.identifiers.serial}"
                       "</serial>")
    for disk in vm.disks:
        if disk is not root and disk.device == "disk" and (disk.identifiers.serial
                                                           or disk.identifiers.wwn):
            changes.append(f"disk {disk.target}: serial becomes the Cinder volume id"
                           + (", <wwn> is dropped" if disk.identifiers.wwn else ""))
    for nic in vm.nics:
        if nic.source_kind == "network":
            changes.append(f"NIC {nic.mac}: <interface type='network'> on {nic.network} "
                           f"becomes type='bridge' on {nic.bridge} with a tap named after "
                           "the port (same MAC)")
    models = {n.model for n in vm.nics}
    if len(models) > 1:
        changes.append(f"NIC models {sorted(m or '?' for m in models)} become one "
                       "(hw_vif_model)")
    return changes


#: the <driver> attributes that libvirt's migration ABI check compares
#: (virDomainVirtioOptionsCheckABIStability); Nova writes none of them by default
_VIRTIO_ABI_OPTIONS = ("iommu", "ats", "packed", "page_per_vq")


def live_migration_limits(vm: Vm) -> list[str]:
    """Why libvirt would refuse a *Nova* live migration before Nova first rebuilds the domain.

    Nova migrates with its own XML for each NIC (``_update_vif_xml``); libvirt's
    ABI check then compares it with the running guest's NIC. For a virtio NIC
    Nova writes ``<driver name='qemu'/>`` under ``virt_type=qemu`` (vhost needs
    KVM) and no ``<driver>`` under kvm; libvirt refuses a migration where one
    side has a ``<driver>`` element and the other not ("Target device virtio
    options don't match the source"). Out-of-band ``virsh migrate`` keeps the
    guest's own XML and is unaffected.
    """
    limits = []
    nova_writes_driver = vm.virt_type == "qemu"
    for nic in vm.nics:
        if nic.model != "virtio" or (nic.driver is None and not nova_writes_driver):
            continue
        options = sorted(set(nic.driver or {}) & set(_VIRTIO_ABI_OPTIONS))
        if (nic.driver is not None) != nova_writes_driver or options:
            has = (f"<driver {' '.join(f'{k}={v!r}' for k, v in sorted(nic.driver.items()))}/>"
                   if nic.driver is not None else "no <driver> element")
            limits.append(
                f"NIC {nic.mac} has {has} where Nova writes "
                f"{'<driver name=' + repr('qemu') + '/>' if nova_writes_driver else 'none'} "
                f"(virt_type {vm.virt_type}): libvirt refuses a Nova live migration until "
                "Nova first rebuilds the domain (stop/start or hard reboot); an out-of-band "
                "live migration keeps working and reconcile follows it")
    return limits
