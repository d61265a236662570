"""What a vCenter user does by hand, for the demo and for people: show, power, relocate.

Run with os-onboard's Python (pyVmomi); the simulator's URI and password come
from ``lab/lab env`` (``LAB_VSPHERE_URI``, ``VSPHERE_PASSWORD``)::

    vmctl.py show legacy-vc-01 legacy-vc-02     # power, boot time, cluster, changeVersion
    vmctl.py power-off legacy-vc-02
    vmctl.py power-on legacy-vc-02
    vmctl.py relocate legacy-vc-02 DC0_C0       # vMotion to another cluster (keeps running)

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
    parser.add_argument("action", choices=["show", "power-off", "power-on", "relocate"])
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="VM names (relocate: one VM, then the cluster)")
    args = parser.parse_args()
    uri = urlsplit(os.environ["LAB_VSPHERE_URI"])
    si = SmartConnect(host=uri.hostname, port=uri.port, user=uri.username,
                      pwd=os.environ["VSPHERE_PASSWORD"], protocol="http")
    try:
        vms = every(si, vim.VirtualMachine)
        if args.action == "relocate":
            vm, cluster = vms[args.names[0]], every(si, vim.ClusterComputeResource)[args.names[1]]
            WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=cluster.host[0],
                                                               pool=cluster.resourcePool)))
        for name in args.names if args.action != "relocate" else args.names[:1]:
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


if __name__ == "__main__":
    sys.exit(main())
