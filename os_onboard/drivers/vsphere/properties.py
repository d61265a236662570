"""What the vSphere driver reads, and what the values read mean (pure: no pyVmomi, no I/O).

:data:`PATHS` lists, per managed-object type, the only property paths one
``RetrievePropertiesEx`` asks for. The tables below it translate the values
that come back (power states, firmware, NIC models, controller buses, devices
OpenStack cannot represent); :func:`unescape_name` and :func:`wsdl` read names
and WSDL types.

Device kinds are told apart by WSDL type name (``_wsdlName``) and by the
attributes the API documents for them, so unit tests can use plain objects.
Turning the objects read into inventory is
:func:`os_onboard.drivers.vsphere.build.build_inventory`.
"""

from __future__ import annotations

from typing import Any

from os_onboard.inventory.models import Firmware, PowerState

#: Per type, the property paths read. Devices come as one list
#: (config.hardware.device) because disks need their controllers' bus numbers.
VM_PATHS = (
    "name", "config.instanceUuid", "config.uuid", "config.guestId", "config.firmware",
    "config.version", "config.template", "config.annotation",
    "config.hardware.numCPU", "config.hardware.numCoresPerSocket", "config.hardware.memoryMB",
    "config.hardware.device", "runtime.powerState", "runtime.host", "resourcePool", "parent",
    "guest.net",
)
PATHS: dict[str, tuple[str, ...]] = {
    "VirtualMachine": VM_PATHS,
    # LUNs (for RDM canonical names) and standard port groups (for VLANs).
    "HostSystem": ("name", "parent", "config.storageDevice.scsiLun", "config.network.portgroup"),
    "ComputeResource": ("name", "parent"),  # includes ClusterComputeResource
    "ResourcePool": ("name", "parent"),  # includes VirtualApp
    "Folder": ("name", "parent"),
    "Datacenter": ("name", "parent"),
    "Network": ("name",),  # includes DistributedVirtualPortgroup and OpaqueNetwork
    "DistributedVirtualPortgroup": ("key", "config.defaultPortConfig"),
    "Datastore": ("name", "summary.type", "summary.url", "summary.capacity",
                  "summary.freeSpace"),
}

POWER_STATES = {
    "poweredOn": PowerState.RUNNING,
    "poweredOff": PowerState.SHUTOFF,
    "suspended": PowerState.SUSPENDED,
}
FIRMWARE = {"efi": Firmware.UEFI, "bios": Firmware.BIOS}
NIC_MODELS = {
    "VirtualE1000": "e1000", "VirtualE1000e": "e1000e", "VirtualVmxnet": "vmxnet",
    "VirtualVmxnet2": "vmxnet2", "VirtualVmxnet3": "vmxnet3",
    "VirtualVmxnet3Vrdma": "vmxnet3-vrdma", "VirtualPCNet32": "pcnet32",
    "VirtualSriovEthernetCard": "sriov",
}
#: Controller WSDL type -> bus name used in targets ("scsi0:1").
BUSES = {
    "VirtualIDEController": "ide", "VirtualAHCIController": "sata",
    "VirtualSATAController": "sata", "VirtualNVMEController": "nvme",
    "VirtualLsiLogicController": "scsi", "VirtualLsiLogicSASController": "scsi",
    "VirtualBusLogicController": "scsi", "ParaVirtualSCSIController": "scsi",
    "VirtualSCSIController": "scsi",
}
#: Devices OpenStack cannot represent as they are.
CAVEATS = {
    "VirtualPCIPassthrough": ("hostdev-pci", "PCI passthrough has no Nova equivalent here"),
    "VirtualUSB": ("hostdev-usb", "USB passthrough is not represented by Nova"),
    "VirtualUSBController": None,
    "VirtualTPM": ("tpm", "vTPM state does not move with the VM record"),
    "VirtualNVDIMM": ("nvdimm", "NVDIMM is not represented by Nova"),
    "VirtualSerialPort": ("serial", "serial port backing is not carried over"),
}
#: LUN canonical-name prefixes that are SCSI page-83 designators.
PAGE83_PREFIXES = ("naa.", "eui.", "t10.")


def unescape_name(name: str | None) -> str | None:
    """vSphere escapes '%', '/' and '\\' in entity names as %25, %2f and %5c."""
    if not name or "%" not in name:
        return name
    for escaped, char in (("%2f", "/"), ("%2F", "/"), ("%5c", "\\"), ("%5C", "\\"),
                          ("%25", "%")):
        name = name.replace(escaped, char)
    return name


def wsdl(obj: Any) -> str:
    return getattr(obj, "_wsdlName", None) or type(obj).__name__
