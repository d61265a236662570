"""What a vCenter user does by hand, for the demo and for people: show, power, relocate.

Run with os-onboard's Python (pyVmomi); the simulator's URI and password come
from ``lab/lab env`` (``LAB_VSPHERE_URI``, ``VSPHERE_PASSWORD``)::

    vmctl.py show legacy-vc-01 legacy-vc-02     # power, boot time, cluster, changeVersion
    vmctl.py power-off legacy-vc-02
    vmctl.py power-on legacy-vc-02
    vmctl.py relocate legacy-vc-02 DC0_C0       # vMotion to another cluster (keeps running)
    vmctl.py rename legacy-vc-02 web-02         # the server's display name follows
    vmctl.py nic-add legacy-vc-02 00:50:56:3f:30:01 DC0_DVPG0   # hot-add a vmxnet3 NIC
    vmctl.py nic-remove legacy-vc-02 00:50:56:3f:30:01          # hot-remove it

These are vCenter-side changes made *outside* OpenStack: the demo shows
``os-onboard watch`` carrying one of them into Nova.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim


def every(si, kind) -> dict:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return {o.name: o for o in view.view}
    finally:
        view.Destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["show", "power-off", "power-on", "relocate",
                                           "rename", "nic-add", "nic-remove"])
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="VM names (relocate: one VM, then the cluster; rename: the VM, "
                             "then its new name; nic-add: the VM, a MAC, a port group; "
                             "nic-remove: the VM, a MAC)")
    args = parser.parse_args()
    uri = urlsplit(os.environ["LAB_VSPHERE_URI"])
    si = SmartConnect(host=uri.hostname, port=uri.port, user=uri.username,
                      pwd=os.environ["VSPHERE_PASSWORD"], protocol="http")
    try:
        vms = every(si, vim.VirtualMachine)
        names = args.names
        if args.action == "relocate":
            vm, cluster = vms[args.names[0]], every(si, vim.ClusterComputeResource)[args.names[1]]
            WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=cluster.host[0],
                                                               pool=cluster.resourcePool)))
            names = args.names[:1]
        elif args.action in ("rename", "nic-add", "nic-remove"):
            _device_or_name(si, vms[args.names[0]], args.action, args.names[1:])
            vms = every(si, vim.VirtualMachine)
            names = [args.names[1] if args.action == "rename" else args.names[0]]
        for name in names:
            vm = vms[name]
            if args.action == "power-off":
                WaitForTask(vm.PowerOffVM_Task())
            elif args.action == "power-on":
                WaitForTask(vm.PowerOnVM_Task())
            boot = vm.runtime.bootTime
            print(f"{name:16} {vm.config.instanceUuid}  {vm.runtime.powerState:10} "
                  f"cluster {vm.runtime.host.parent.name:7} "
                  f"bootTime {boot.isoformat(timespec='seconds') if boot else '-':25} "
                  f"changeVersion {vm.config.changeVersion}")
    finally:
        Disconnect(si)
    return 0


def _device_or_name(si, vm, action: str, rest: list[str]) -> None:
    """rename NEW | nic-add MAC PORTGROUP | nic-remove MAC, each one vCenter task."""
    if action == "rename":
        WaitForTask(vm.Rename_Task(rest[0]))
        return
    mac = rest[0].lower()
    if action == "nic-remove":
        [nic] = [d for d in vm.config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualEthernetCard)
                 and d.macAddress.lower() == mac]
        change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)
    else:
        portgroup = every(si, vim.dvs.DistributedVirtualPortgroup)[rest[1]]
        change = vim.vm.device.VirtualDeviceSpec(
            operation="add", device=vim.vm.device.VirtualVmxnet3(
                key=-1, addressType="manual", macAddress=mac,
                backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                    port=vim.dvs.PortConnection(
                        switchUuid=portgroup.config.distributedVirtualSwitch.uuid,
                        portgroupKey=portgroup.key))))
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))


if __name__ == "__main__":
    sys.exit(main())
