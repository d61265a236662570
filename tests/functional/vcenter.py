"""What the vCenter functional tests do as a vCenter user (pyVmomi on the lab's simulator)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

CLI = Path(sys.executable).parent / "os-onboard"


@contextmanager
def session(lab: dict) -> Iterator[vim.ServiceInstance]:
    """An independent pyVmomi session on the simulator's plain-http listener."""
    parts = urlsplit(lab["LAB_VSPHERE_URI"])
    conn = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username,
                        pwd=lab["VSPHERE_PASSWORD"], protocol="http")
    try:
        yield conn
    finally:
        Disconnect(conn)


def every(si, kind) -> dict:
    """Objects of one kind by name."""
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return {o.name: o for o in view.view}
    finally:
        view.Destroy()


def vm_spec(si, name: str, instance_uuid: str, mac: str, port_group: str,
            datastore: str = "LocalDS_0") -> vim.vm.ConfigSpec:
    """A VM as a vCenter user makes one: a thin 1 MiB root VMDK on an LSI Logic
    controller, one vmxnet3 NIC with a fixed MAC on a distributed port group, its own
    instanceUuid, no OpenStack tag."""
    portgroup = every(si, vim.dvs.DistributedVirtualPortgroup)[port_group]
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
            key=4000, addressType="manual", macAddress=mac,
            backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(
                    switchUuid=portgroup.config.distributedVirtualSwitch.uuid,
                    portgroupKey=portgroup.key))))
    return vim.vm.ConfigSpec(name=name, instanceUuid=instance_uuid, numCPUs=1, memoryMB=64,
                             guestId="otherLinux64Guest", deviceChange=[controller, disk, nic],
                             files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"))


def create_vm(si, spec: vim.vm.ConfigSpec, cluster: str, datacenter: str = "DC0"):
    """CreateVM_Task in the cluster's root resource pool; the new VM (powered off)."""
    pool = every(si, vim.ClusterComputeResource)[cluster].resourcePool
    task = every(si, vim.Datacenter)[datacenter].vmFolder.CreateVM_Task(config=spec, pool=pool)
    WaitForTask(task)
    return task.info.result


def destroy(vm) -> None:
    if vm.runtime.powerState == "poweredOn":
        WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())


def onboard(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The os-onboard command as a user runs it, with the test's environment (ctx["env"])."""
    proc = subprocess.run([str(CLI), *args], env=ctx["env"], capture_output=True, text=True,
                          check=False, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"os-onboard {' '.join(args)}: rc {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def nic_spec(si, mac: str, port_group: str) -> vim.vm.device.VirtualDeviceSpec:
    """Adding a vmxnet3 NIC with a fixed MAC on a distributed port group."""
    portgroup = every(si, vim.dvs.DistributedVirtualPortgroup)[port_group]
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.VirtualVmxnet3(
            key=-1, addressType="manual", macAddress=mac,
            backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(
                    switchUuid=portgroup.config.distributedVirtualSwitch.uuid,
                    portgroupKey=portgroup.key))))


def nics(vm) -> dict[str, vim.vm.device.VirtualEthernetCard]:
    """The VM's NICs by MAC (lower case)."""
    return {d.macAddress.lower(): d for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)}


def add_nic(si, vm, mac: str, port_group: str) -> None:
    """Hot-add a NIC in vCenter (ReconfigVM_Task), as a vCenter user would."""
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(
        deviceChange=[nic_spec(si, mac, port_group)])))


def remove_nic(vm, mac: str) -> None:
    """Hot-remove the NIC with this MAC in vCenter."""
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="remove", device=nics(vm)[mac.lower()])])))


def rename(vm, name: str) -> None:
    """Rename the VM in vCenter (Rename_Task)."""
    WaitForTask(vm.Rename_Task(name))
