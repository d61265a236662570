"""The lab's vSphere simulator keeps its estate across restarts (issue 13).

Starts a private simulator (the lab's build, ``LAB_VSPHERE_BIN``; the
environment variable of that name wins over ``lab/lab env``) on free ports,
stops it and starts it again with the same flags, a temporary
``-state-file`` and ``-datastore-dir``: the model's VMs are the same
(deterministic model), a VM made through the API (as Nova makes one) is
back with its identity and power state, a destroyed one stays gone, and a
change is on disk before the simulator is killed (no clean exit needed).
Nova's VMware driver (the lab's OpenStack venv, ``nova_driver_check.py``)
spawns, the simulator restarts under it, and the same driver object goes on
managing the VM. The lab's shared simulator stays untouched. pyVmomi over
plain http.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.functional.lab import lab_env

# The lab's model (lib/vsphere.sh), RDM/thick-disk extras and a shared instanceUuid included.
MODEL = ["-clusters", "1", "-cluster-hosts", "3", "-standalone", "2", "-vms", "4",
         "-extras", "3", "-dup-uuid", "1"]
MAC = "fa:16:3e:4a:5b:6c"
CHECK = Path(__file__).resolve().parents[2] / "lab" / "vsphere" / "nova_driver_check.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """One private simulator process with a fixed state file and datastore dir."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary, self.tmp = binary, tmp
        self.password = secrets.token_urlsafe(12)
        self.state = tmp / "estate.json"
        self.proc: subprocess.Popen | None = None
        # The same ports on every start, as the lab's (clients keep their URL).
        self.port, self.https_port = _free_port(), _free_port()
        self.starts = 0
        self.extra: list[str] = []

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"vcsim-{self.starts}.log"
        (self.tmp / "tmp").mkdir(exist_ok=True)
        env = dict(os.environ, VCSIM_PASSWORD=self.password, TMPDIR=str(self.tmp / "tmp"))
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-listen", f"127.0.0.1:{self.port}", "-username", "onboard",
                 "-state-file", str(self.state), "-datastore-dir", str(self.tmp / "datastores"),
                 *self.extra, *MODEL],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while b"READY " not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: {log.read_text()[-3000:]}")
            time.sleep(0.1)
        self.log = log

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None

    def connect(self):
        return SmartConnect(host="127.0.0.1", port=self.port, user="onboard", pwd=self.password,
                            protocol="http")


@pytest.fixture
def sim(tmp_path):
    binary = os.environ.get("LAB_VSPHERE_BIN") or lab_env().get("LAB_VSPHERE_BIN")
    if not binary or not Path(binary).exists():
        pytest.skip("no simulator build (LAB_VSPHERE_BIN; run 'make lab-up')")
    s = Sim(binary, tmp_path)
    yield s
    s.stop()


def _wait(task):
    while task.info.state not in ("success", "error"):
        time.sleep(0.05)
    if task.info.state == "error":
        raise RuntimeError(task.info.error)
    return task.info.result


def _estate(si) -> dict:
    """Every VM, host, cluster and datastore as identities a restart must keep."""
    content = si.RetrieveContent()
    out = {}
    for kind in (vim.VirtualMachine, vim.HostSystem, vim.ClusterComputeResource, vim.Datastore):
        view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
        try:
            for o in view.view:
                if kind is vim.VirtualMachine:
                    out[o.name] = _vm(o)
                elif kind is vim.Datastore:
                    # 0.24 names a local datastore after its directory.
                    out["datastore " + o.name] = [o._moId, o.summary.url]
                else:
                    out[f"{kind.__name__} {o.name}"] = [o._moId,
                                                        sorted(d._moId for d in o.datastore)]
        finally:
            view.DestroyView()
    return out


def _vm(vm) -> dict:
    nics, disks = [], []
    for d in vm.config.hardware.device:
        if isinstance(d, vim.vm.device.VirtualEthernetCard):
            port = getattr(d.backing, "port", None)
            nics.append([d.key, d.macAddress, port.portgroupKey if port else d.backing.deviceName])
        elif isinstance(d, vim.vm.device.VirtualDisk):
            disks.append([d.key, d.backing.fileName, d.capacityInKB])
    extra = {o.key: o.value for o in vm.config.extraConfig}
    return {"moref": vm._moId, "name": vm.name, "instanceUuid": vm.config.instanceUuid,
            "uuid": vm.config.uuid, "power": str(vm.runtime.powerState),
            "host": vm.runtime.host._moId, "folder": vm.parent.name,
            "datastores": sorted(d._moId for d in vm.datastore),
            "nvp.vm-uuid": extra.get("nvp.vm-uuid"), "nics": nics, "disks": disks}


def _find(si, instance_uuid: str) -> list:
    content = si.RetrieveContent()
    return content.searchIndex.FindAllByUuid(None, instance_uuid, True, True) or []


def _create(si, name: str, instance_uuid: str, mac: str, folder=None):
    """CreateVM_Task as Nova's spawn makes it: instanceUuid, nvp.vm-uuid, a NIC
    with the port's MAC on a distributed port group, a disk."""
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    cluster = next(e for e in dc.hostFolder.childEntity
                   if isinstance(e, vim.ClusterComputeResource))
    pg = next(n for n in dc.network if isinstance(n, vim.dvs.DistributedVirtualPortgroup)
              and n.name.endswith("_DVPG0"))
    nic = vim.vm.device.VirtualVmxnet3(
        key=-47, addressType="manual", macAddress=mac,
        backing=vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(switchUuid=pg.config.distributedVirtualSwitch.uuid,
                                        portgroupKey=pg.key)))
    scsi = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(
        key=-101, controllerKey=-100, unitNumber=0, capacityInKB=1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[LocalDS_0] {instance_uuid}/{instance_uuid}.vmdk", diskMode="persistent",
            thinProvisioned=True))
    spec = vim.vm.ConfigSpec(
        name=name, instanceUuid=instance_uuid, guestId="otherGuest", numCPUs=1, memoryMB=64,
        files=vim.vm.FileInfo(vmPathName=f"[LocalDS_0] {instance_uuid}/{instance_uuid}.vmx"),
        extraConfig=[vim.option.OptionValue(key="nvp.vm-uuid", value=instance_uuid)],
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="add", device=nic),
            vim.vm.device.VirtualDeviceSpec(operation="add", device=scsi),
            vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)])
    return _wait((folder or dc.vmFolder).CreateVM_Task(spec, pool=cluster.resourcePool))


def _saved(sim: Sim) -> dict:
    return {v["instanceUuid"]: v for v in json.loads(sim.state.read_text())["vms"]}


def _until(predicate, sim: Sim, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, sim.state.read_text()[:2000]
        time.sleep(0.05)


def test_estate_survives_restart(sim):
    kept, gone = str(uuid.uuid4()), str(uuid.uuid4())

    sim.start()
    si = sim.connect()
    try:
        legacy = _estate(si)
        vm = _create(si, "instance-kept", kept, MAC)
        _wait(vm.PowerOnVM_Task())
        _wait(vm.Rename_Task("instance-kept-renamed"))  # a change after creation
        doomed = _create(si, "instance-gone", gone, "fa:16:3e:00:00:99")
        assert len(_find(si, gone)) == 1
        _wait(doomed.Destroy_Task())
        before = _vm(vm)
    finally:
        Disconnect(si)
    sim.stop()
    assert set(_saved(sim)) == {kept}

    sim.start()
    si = sim.connect()
    try:
        after = _estate(si)
        # The model: same VMs (names, instanceUuid, BIOS uuid, MACs, disks, hosts,
        # morefs), hosts, clusters and datastore paths.
        assert {k: v for k, v in after.items() if k in legacy} == legacy
        assert set(after) - set(legacy) == {"instance-kept-renamed"}
        assert legacy["DC0_C0_RP0_VM0"]["disks"][-1][1].endswith("_rdm.vmdk")  # extras kept
        # The API-made VM: same moref, identity, NIC, disk, power state; found as Nova finds it.
        assert after["instance-kept-renamed"] == before
        assert before["nics"][0][1] == MAC and before["nvp.vm-uuid"] == kept
        assert before["power"] == "poweredOn"
        assert [v._moId for v in _find(si, kept)] == [before["moref"]]
        assert _find(si, gone) == []
        # Its disk is the file of the first run, on the datastore Nova browses.
        ds = vm_ds = _find(si, kept)[0].datastore[0]
        assert vm_ds._moId == legacy["datastore LocalDS_0"][0]
        result = _wait(ds.browser.SearchDatastore_Task(f"[LocalDS_0] {kept}", None))
        assert f"{kept}.vmdk" in [f.path for f in result.file]
        # A change is written at once: power off, then kill without a clean exit.
        vm = _find(si, kept)[0]
        _wait(vm.PowerOffVM_Task())
    finally:
        Disconnect(si)
    _until(lambda: _saved(sim)[kept]["powerState"] == "poweredOff", sim)
    sim.stop(signal.SIGKILL)

    sim.start()
    si = sim.connect()
    try:
        again = _estate(si)
        assert again["instance-kept-renamed"] == dict(before, power="poweredOff")
        assert {k: v for k, v in again.items() if k in legacy} == legacy
        assert _find(si, gone) == []
    finally:
        Disconnect(si)
    assert "NOT restored" not in "".join(
        (sim.tmp / f"vcsim-{n}.log").read_text() for n in (1, 2, 3))


@pytest.fixture
def openstack_python() -> str:
    python = Path(lab_env().get("LAB_OPENSTACK_VENV", "/nonexistent")) / "bin" / "python"
    if not python.exists():
        pytest.skip("the lab's OpenStack venv is missing (run 'make lab-up')")
    return str(python)


def test_nova_driver_across_restart(sim, openstack_python):
    """nova-compute outlives a simulator restart: the driver that spawned the VM
    finds it again (same moref in its cache, same instanceUuid, NIC and power
    state) and powers, reboots and destroys it."""
    sim.extra = ["-https-listen", f"127.0.0.1:{sim.https_port}", "-esx-endpoints"]
    sim.start()
    pause = sim.tmp / "go-on"
    nova = subprocess.Popen(
        [openstack_python, str(CHECK), "--port", str(sim.https_port), "--pause-file", str(pause)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, VCSIM_PASSWORD=sim.password))
    try:
        steps = []
        for line in nova.stdout:
            if line.startswith("{"):
                steps.append(json.loads(line))
                if steps[-1]["step"] == "PAUSED" or not steps[-1]["ok"]:
                    break
        assert steps and steps[-1]["step"] == "PAUSED", (steps, nova.stderr.read()[-3000:]
                                                         if nova.poll() is not None else "")
        moref = steps[-1]["result"]
        # Written some 20 ms after the last change.
        _until(lambda: [(v["moref"], v["powerState"]) for v in _saved(sim).values()]
               == [(moref, "poweredOn")], sim)
        sim.stop()
        sim.start()
        pause.touch()
        out, err = nova.communicate(timeout=300)
    finally:
        if nova.poll() is None:
            nova.kill()
    steps += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    failed = [s for s in steps if not s["ok"]]
    assert nova.returncode == 0 and not failed, (failed, err[-3000:])
    names = [s["step"] for s in steps]
    for name in ("NIC on the port group", "get_vm_ref (FindAllByUuid)", "get_info",
                 "power_off", "power_on", "reboot hard", "destroy", "list_instances (destroyed)"):
        assert name in names
    assert f"restored as {moref}" in (sim.tmp / "vcsim-2.log").read_text()
    _until(lambda: _saved(sim) == {}, sim)  # destroyed after the restart: gone from the file
