"""Cinder's VMDK backend on the lab's vSphere simulator (issue 13).

The lab's cinder-volume runs a second backend, ``vmdk``
(``cinder.volume.drivers.vmware.vmdk.VMwareVcVmdkDriver``, volume type
``vmdk``) against the simulator's https listener (lab/lib/openstack.sh,
lab/openstack/etc/cinder-vmdk.inc). A volume is a "backing": a VM named
``volume-<id>`` whose instanceUuid is the volume id, made at create
(``vmware_lazy_create = false``) in ``OpenStack/Project (<project>)/Volumes``.
Everything goes through the ``openstack`` CLI; the simulator is read with an
independent pyVmomi session on its plain-http listener. Attach/detach needs a
server on Nova's VMware computes (lab/lib/vcenter.sh, ``LAB_VC_AZ``): skipped,
with the reason, while the lab has none. Each test deletes what it made.

The last test runs the two drivers' calls themselves (Cinder's and Nova's, in
the lab's venv: lab/vsphere/cinder_driver_check.py) against a private
simulator (the lab's build on free ports): create, connector,
initialize_connection, attach, detach, delete, with and without lazy create.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.functional.vcenter import session

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "lab" / "vsphere" / "cinder_driver_check.py"
VOLUME_BUDGET = 60  # seconds from `volume create` to available (measured: ~2 s)
SPAWN_BUDGET = 180  # seconds from `server create` to ACTIVE


@pytest.fixture(scope="module")
def vmdk(lab) -> dict[str, str]:
    if not lab.get("LAB_CINDER_VMDK_TYPE"):
        pytest.skip("the lab's Cinder has no vmdk backend (lab/lab env prints no "
                    "LAB_CINDER_VMDK_TYPE: the vSphere simulator did not serve https at lab up)")
    return lab


def run(env, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([f"{env['LAB_OPENSTACK_BIN']}/openstack", *args],
                          env=dict(os.environ, OS_CLOUD=env["OS_CLOUD"],
                                   OS_CLIENT_CONFIG_FILE=env["OS_CLIENT_CONFIG_FILE"]),
                          capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}")
    return proc


def osc(env, *args: str, timeout: float = 180):
    return json.loads(run(env, *args, "-f", "json", timeout=timeout).stdout)


def wait_for(what: str, probe, timeout: float, interval: float = 1):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)


def volume_status(env, volume_id: str, status: str, timeout: float = VOLUME_BUDGET) -> dict:
    def probe():
        shown = osc(env, "volume", "show", volume_id)
        assert not shown["status"].startswith("error"), shown
        return shown if shown["status"] == status else None
    return wait_for(f"volume {volume_id} {status}", probe, timeout)


def gone(env, volume_id: str) -> bool:
    return run(env, "volume", "show", volume_id, check=False).returncode != 0


@pytest.fixture(scope="module")
def si(vmdk):
    """An independent pyVmomi session on the simulator's plain-http listener."""
    with session(vmdk) as conn:
        yield conn


def vms(si, instance_uuid: str) -> list:
    found = si.RetrieveContent().searchIndex.FindAllByUuid(
        uuid=instance_uuid, vmSearch=True, instanceUuid=True)
    return list(found or [])


def disks(vm) -> list:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def extra_config(vm, key: str) -> str | None:
    """The value vCenter would hold for key: the last one written (0.24 appends, see README)."""
    values = [o.value for o in vm.config.extraConfig if o.key == key]
    return values[-1] if values else None


@pytest.fixture
def volume(vmdk) -> Iterator[dict]:
    """A 1 GiB volume of type vmdk, available; deleted afterwards (if the test did not)."""
    name = f"test-vmdk-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    created = osc(vmdk, "volume", "create", "--type", vmdk["LAB_CINDER_VMDK_TYPE"], "--size", "1",
                  name)
    try:
        shown = volume_status(vmdk, created["id"], "available")
        shown["_seconds"] = time.monotonic() - t0
        yield shown
    finally:
        if not gone(vmdk, created["id"]):
            run(vmdk, "volume", "delete", "--force", created["id"], check=False)
            wait_for(f"volume {created['id']} deleted", lambda: gone(vmdk, created["id"]), 60)


def test_vmdk_backend_up(vmdk):
    host = vmdk["LAB_CINDER_VMDK_BACKEND_HOST"]
    services = osc(vmdk, "volume", "service", "list")
    backend_host = host.split("#")[0]
    rows = [s for s in services if s["Binary"] == "cinder-volume" and s["Host"] == backend_host]
    assert rows and rows[0]["State"] == "up", services
    pools = osc(vmdk, "volume", "backend", "pool", "list", "--long")
    caps = next(p for p in pools if p["Name"] == host)["Capabilities"]
    assert caps["storage_protocol"] == "vmdk" and caps["vendor_name"] == "VMware", caps
    assert caps["volume_backend_name"] == vmdk["LAB_CINDER_VMDK_TYPE"], caps
    # The RBD backend is still the default type.
    assert vmdk["LAB_CINDER_BACKEND"] != vmdk["LAB_CINDER_VMDK_TYPE"]


def test_create_makes_a_backing_and_delete_removes_it(vmdk, si, volume):
    assert volume["size"] == 1 and volume["type"] == vmdk["LAB_CINDER_VMDK_TYPE"], volume
    assert volume["os-vol-host-attr:host"] == vmdk["LAB_CINDER_VMDK_BACKEND_HOST"], volume
    assert volume["_seconds"] < VOLUME_BUDGET
    [backing] = vms(si, volume["id"])
    assert backing.name == f"volume-{volume['id']}"
    assert extra_config(backing, "cinder.volume.id") == volume["id"]
    assert backing.runtime.powerState == "poweredOff"
    # <vm folder>/OpenStack/Project (<project id>)/Volumes
    folder = backing.parent
    assert [folder.name, folder.parent.name, folder.parent.parent.name] == [
        "Volumes", f"Project ({volume['os-vol-tenant-attr:tenant_id']})", "OpenStack"]
    [disk] = disks(backing)
    assert disk.capacityInKB == 1024 * 1024
    assert disk.backing.fileName.endswith(f"/volume-{volume['id']}.vmdk"), disk.backing.fileName
    assert disk.backing.uuid == volume["id"]  # Cinder's update_backing_disk_uuid

    run(vmdk, "volume", "delete", volume["id"])
    wait_for(f"volume {volume['id']} deleted", lambda: gone(vmdk, volume["id"]), VOLUME_BUDGET)
    assert vms(si, volume["id"]) == []


# --- attach / detach: a server on Nova's VMware computes ---------------------------------


@pytest.fixture(scope="module")
def vc(vmdk) -> dict[str, str]:
    if not vmdk.get("LAB_VC_AZ"):
        pytest.skip("the lab has no VMware computes (lab/lab env prints no LAB_VC_AZ; "
                    "lab/lib/vcenter.sh is not part of it yet)")
    for key in ("LAB_VC_IMAGE", "LAB_VC_FLAVOR", "LAB_VC_NETWORK"):
        assert vmdk.get(key), f"lab/lab env prints LAB_VC_AZ but no {key}"
    zones = osc(vmdk, "availability", "zone", "list", "--compute", "--long")
    up = [z for z in zones if z["Zone Name"] == vmdk["LAB_VC_AZ"]
          and z["Service Name"] == "nova-compute" and "enabled :-)" in z["Service Status"]]
    if not up:
        pytest.skip(f"no nova-compute is up in availability zone {vmdk['LAB_VC_AZ']}: {zones}")
    return vmdk


@pytest.fixture(scope="module")
def shared_datastores(vc, si):
    """0.24 lists only the last host on a datastore every host mounts; Cinder then refuses to
    put a backing next to a VM on any other host (lab/vsphere/vmdk_volumes.go fixes it)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        for host in view.view:
            for ds in host.datastore:
                if host not in [m.key for m in ds.host]:
                    pytest.skip(f"the simulator's datastore {ds.name} does not list host "
                                f"{host.name} that mounts it (govmomi 0.24): the simulator runs "
                                "without lab/vsphere/vmdk_volumes.go's installVMDKVolumes")
    finally:
        view.DestroyView()


@pytest.fixture
def vc_server(vc) -> Iterator[dict]:
    name = f"test-vc-vol-{uuid.uuid4().hex[:8]}"
    proc = run(vc, "server", "create", "--availability-zone", vc["LAB_VC_AZ"],
               "--image", vc["LAB_VC_IMAGE"], "--flavor", vc["LAB_VC_FLAVOR"],
               "--network", vc["LAB_VC_NETWORK"], "--wait", "-f", "json", name,
               check=False, timeout=SPAWN_BUDGET + 60)
    server = None
    try:
        servers = osc(vc, "server", "list", "--name", f"^{name}$")
        assert proc.returncode == 0 and servers, proc.stderr
        server = osc(vc, "server", "show", servers[0]["ID"])
        assert server["status"] == "ACTIVE", server.get("fault")
        yield server
    finally:
        ids = [s["ID"] for s in osc(vc, "server", "list", "--name", f"^{name}$")]
        for server_id in ids:
            run(vc, "server", "delete", "--wait", server_id, check=False, timeout=300)


def test_attach_and_detach_on_a_vmware_server(vc, si, shared_datastores, volume, vc_server):
    """Attach: the server's VM gains the backing's vmdk and extraConfig volume-<id> (the
    disk's uuid, which detach looks for); detach: the disk goes, the key is emptied, the
    backing stays and the volume is available; delete then removes the backing."""
    [server_vm] = vms(si, vc_server["id"])
    [backing] = vms(si, volume["id"])
    [backing_disk] = disks(backing)
    before = {d.key for d in disks(server_vm)}

    run(vc, "server", "add", "volume", vc_server["id"], volume["id"])
    attached = volume_status(vc, volume["id"], "in-use", timeout=120)
    assert [a["server_id"] for a in attached["attachments"]] == [vc_server["id"]], attached
    [server_vm] = vms(si, vc_server["id"])
    added = [d for d in disks(server_vm) if d.key not in before]
    assert [d.backing.fileName for d in added] == [backing_disk.backing.fileName], added
    assert added[0].backing.uuid == volume["id"]
    assert extra_config(server_vm, f"volume-{volume['id']}") == volume["id"]
    assert vms(si, volume["id"]) == [backing]  # the backing VM stays, disk and all

    run(vc, "server", "remove", "volume", vc_server["id"], volume["id"])
    volume_status(vc, volume["id"], "available", timeout=120)
    [server_vm] = vms(si, vc_server["id"])
    assert {d.key for d in disks(server_vm)} == before
    assert not extra_config(server_vm, f"volume-{volume['id']}")
    [backing] = vms(si, volume["id"])
    assert [d.backing.fileName for d in disks(backing)] == [backing_disk.backing.fileName]

    run(vc, "volume", "delete", volume["id"])
    wait_for(f"volume {volume['id']} deleted", lambda: gone(vc, volume["id"]), VOLUME_BUDGET)
    assert vms(si, volume["id"]) == []


# --- the drivers themselves, on a private simulator ----------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def private_sim(lab, tmp_path_factory):
    """The lab's simulator build on free ports: (https port, certificate, password)."""
    binary, venv = lab.get("LAB_VSPHERE_BIN"), lab.get("LAB_OPENSTACK_VENV")
    if not binary or not Path(binary).exists() or not venv:
        pytest.skip("no simulator build or OpenStack venv (run 'make lab-up')")
    tmp = tmp_path_factory.mktemp("vcsim-cinder")
    http_port, https_port = _free_port(), _free_port()
    password = secrets.token_urlsafe(12)
    log = tmp / "vcsim.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-listen", f"127.0.0.1:{http_port}", "-https-listen",
             f"127.0.0.1:{https_port}", "-cert-out", str(tmp / "cert.pem"), "-esx-endpoints",
             "-username", "onboard", "-clusters", "1", "-cluster-hosts", "3", "-standalone", "1",
             "-vms", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, VCSIM_PASSWORD=password, TMPDIR=str(tmp)))
    try:
        deadline = time.monotonic() + 60
        while b"READY " not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        conn = SmartConnect(host="127.0.0.1", port=http_port, user="onboard", pwd=password,
                            protocol="http")
        try:
            content = conn.RetrieveContent()
            view = content.viewManager.CreateContainerView(content.rootFolder,
                                                           [vim.HostSystem], True)
            unlisted = sorted({f"{ds.name}: {host.name}" for host in view.view
                               for ds in host.datastore if host not in [m.key for m in ds.host]})
        finally:
            Disconnect(conn)
        if unlisted:
            pytest.skip(f"the lab's simulator build leaves hosts off datastores that they mount "
                        f"({', '.join(unlisted)}; govmomi 0.24): main.go does not call "
                        "lab/vsphere/vmdk_volumes.go's installVMDKVolumes, which Cinder's attach "
                        "needs")
        yield https_port, tmp / "cert.pem", password, venv
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_drivers_attach_and_detach_on_a_private_simulator(private_sim, lazy):
    https_port, cert, password, venv = private_sim
    r = subprocess.run([f"{venv}/bin/python", str(CHECK), "--port", str(https_port),
                        "--ca-file", str(cert), *(["--lazy"] if lazy else [])],
                       capture_output=True, text=True, timeout=300, check=False,
                       env=dict(os.environ, VCSIM_PASSWORD=password))
    steps = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    failed = [s for s in steps if not s["ok"]]
    assert r.returncode == 0 and not failed, (failed, r.stderr[-3000:])
    names = [s["step"] for s in steps]
    for name in ("cinder create_volume", "cinder initialize_connection", "nova attach_volume",
                 "instance gained the vmdk", "nova detach_volume", "instance lost the vmdk",
                 "backing gone"):
        assert name in names
