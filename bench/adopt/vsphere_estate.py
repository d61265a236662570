"""The simulated vSphere estate of bench/adopt/vsphere.py: VMs made in the lab's vCenter simulator.

Each VM is made through the vSphere API as a vCenter user makes one (as
lab/vsphere/legacy.go and tests/functional/vcenter.py do): ``CreateVM_Task`` in
a cluster's root resource pool, a thin 1 MiB root VMDK on an LSI Logic
controller, one vmxnet3 NIC with its own fixed MAC on the distributed port
group, its own instanceUuid, no OpenStack tag; then powered on. Some VMs get
a guest address (the simulator's ``SET.guest.ipAddress``, what VMware Tools
would report), the others report none, as a VM without Tools.

The simulator keeps API-made VMs across restarts (its estate file), so every
VM made here is destroyed by the benchmark's ``finally``, and ``leftovers()``
finds those of an interrupted run by their name prefix.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

#: VM names start with this; cleanup recognises the benchmark's VMs by it.
NAME_PREFIX = "bench-vc-"
#: VMware's range for manually set MACs is 00:50:56:00-3f; the lab's legacy VMs use
#: 00:50:56:3f:10:xx and the tests 00:50:56:3f:00:xx.
MAC_PREFIX = "00:50:56:3e:b"
#: Creates/power-ons in flight (the simulator serialises most of the work anyway).
WORKERS = 8


@dataclass
class BenchVm:
    name: str
    uuid: str          # config.instanceUuid = the Nova server's id after adoption
    mac: str
    ip: str | None     # what "VMware Tools" reports, or None
    cluster: str
    vcpus: int
    memory_mb: int


def mac(i: int) -> str:
    return f"{MAC_PREFIX}{(i >> 8) & 0xf:x}:{i & 0xff:02x}"


class VCenter:
    """A pyVmomi session on the lab's simulator, as a vCenter user."""

    def __init__(self, uri: str, password: str) -> None:
        parts = urlsplit(uri)
        self.si = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username,
                               pwd=password, protocol="http")
        self.content = self.si.content

    def close(self) -> None:
        Disconnect(self.si)

    def every(self, kind: Any) -> dict[str, Any]:
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder,
                                                            [kind], True)
        try:
            return {o.name: o for o in view.view}
        finally:
            view.Destroy()

    def vms_named(self, prefix: str) -> list[Any]:
        """VMs whose name starts with ``prefix`` (one property read for all)."""
        pc = self.content.propertyCollector
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder,
                                                            [vim.VirtualMachine], True)
        try:
            spec = vim.PropertyCollector.FilterSpec(
                objectSet=[vim.PropertyCollector.ObjectSpec(
                    obj=view, skip=True, selectSet=[vim.PropertyCollector.TraversalSpec(
                        name="v", type=vim.view.ContainerView, path="view", skip=False)])],
                propSet=[vim.PropertyCollector.PropertySpec(type=vim.VirtualMachine,
                                                            pathSet=["name"])])
            found = []
            result = pc.RetrievePropertiesEx([spec], vim.PropertyCollector.RetrieveOptions())
            while result is not None:
                found += [o.obj for o in result.objects
                          if o.propSet and str(o.propSet[0].val).startswith(prefix)]
                result = pc.ContinueRetrievePropertiesEx(result.token) if result.token else None
            return found
        finally:
            view.Destroy()

    def cluster_morefs(self) -> dict[str, str]:
        """Cluster name -> moref (Nova's node name is ``<moref>.<vCenter instanceUuid>``)."""
        return {name: c._moId for name, c in self.every(vim.ClusterComputeResource).items()}

    # -- making and destroying VMs -----------------------------------------------------
    def spec(self, vm: BenchVm, portgroup: Any) -> vim.vm.ConfigSpec:
        controller = vim.vm.device.VirtualDeviceSpec(
            operation="add", device=vim.vm.device.VirtualLsiLogicController(
                key=1000, busNumber=0, sharedBus="noSharing"))
        disk = vim.vm.device.VirtualDeviceSpec(
            operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
                key=2000, controllerKey=1000, unitNumber=0, capacityInKB=1024,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    diskMode="persistent", thinProvisioned=True, fileName="")))
        nic = vim.vm.device.VirtualDeviceSpec(
            operation="add", device=vim.vm.device.VirtualVmxnet3(
                key=4000, addressType="manual", macAddress=vm.mac,
                backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                    port=vim.dvs.PortConnection(
                        switchUuid=portgroup.config.distributedVirtualSwitch.uuid,
                        portgroupKey=portgroup.key))))
        # SET.guest.ipAddress is the simulator's stand-in for VMware Tools: applied
        # after the devices (the NIC's guest.net entry exists by then), not kept in
        # extraConfig. Made in the create itself: one task less per VM.
        extra = [vim.option.OptionValue(key="SET.guest.ipAddress", value=vm.ip)] if vm.ip else []
        return vim.vm.ConfigSpec(name=vm.name, instanceUuid=vm.uuid, numCPUs=vm.vcpus,
                                 memoryMB=vm.memory_mb, guestId="otherLinux64Guest",
                                 deviceChange=[controller, disk, nic], extraConfig=extra,
                                 files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))

    def create(self, vms: list[BenchVm], port_group: str, datacenter: str = "DC0") -> float:
        """Make and power on every VM; the seconds it took. Raises on the first failure."""
        portgroup = self.every(vim.dvs.DistributedVirtualPortgroup)[port_group]
        pools = {name: c.resourcePool
                 for name, c in self.every(vim.ClusterComputeResource).items()}
        folder = self.every(vim.Datacenter)[datacenter].vmFolder
        t0 = time.perf_counter()

        def make(vm: BenchVm) -> None:
            made = wait(folder.CreateVM_Task(config=self.spec(vm, portgroup),
                                             pool=pools[vm.cluster]))
            wait(made.PowerOnVM_Task())

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(make, vms))
        return time.perf_counter() - t0

    def destroy_named(self, prefix: str) -> int:
        """Power off and destroy every VM whose name starts with ``prefix``."""
        found = self.vms_named(prefix)

        def destroy(vm: Any) -> None:
            if vm.runtime.powerState != "poweredOff":
                wait(vm.PowerOffVM_Task())
            wait(vm.Destroy_Task())

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(destroy, found))
        return len(found)


def wait(task: Any, timeout: float = 120.0) -> Any:
    """A task's result, polled (pyVim's WaitForTask shares one property collector
    between threads: each waiter would read every other task's updates)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        info = task.info
        if info.state == "success":
            return info.result
        if info.state == "error":
            raise RuntimeError(f"{info.descriptionId or info.name}: "
                               f"{getattr(info.error, 'msg', info.error)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {info.key} not done after {timeout:g} s")
        time.sleep(delay)
        delay = min(0.2, delay * 2)
