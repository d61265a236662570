"""Nova's VMware driver in the lab (lab/lib/vcenter.sh): servers of the vcenter zone are VMs.

Real Nova (one ``vmwareapi.VMwareVCDriver`` nova-compute per simulator
cluster), real Neutron (the ``onboard_bridge`` ML2 driver binding ``dvs``
onto the mapped port group) and the lab's vSphere simulator. Everything goes
through the doors a user has: the ``openstack`` CLI with ``LAB_VC_AZ``,
``LAB_VC_IMAGE``, ``LAB_VC_FLAVOR`` and ``LAB_VC_NETWORK``; the simulator
is read with an independent pyVmomi session and with os-onboard's discovery.
Each test removes its servers (and checks that Nova removed their ports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyVmomi import vim

from tests.functional.vcenter import session

CLI = [str(Path(sys.executable).parent / "os-onboard")]
SPAWN_BUDGET = 120  # seconds from `server create` to ACTIVE


@pytest.fixture(scope="module")
def vc(lab) -> dict[str, str]:
    for key in ("LAB_NOVA_VC_HOSTS", "LAB_VC_AZ", "LAB_VC_IMAGE", "LAB_VC_FLAVOR",
                "LAB_VC_NETWORK", "LAB_VSPHERE_URI", "LAB_OPENSTACK_BIN"):
        assert lab.get(key), f"lab/lab env prints no {key}"
    return lab


def run(vc, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, OS_CLOUD=vc["OS_CLOUD"],
               OS_CLIENT_CONFIG_FILE=vc["OS_CLIENT_CONFIG_FILE"])
    proc = subprocess.run([f"{vc['LAB_OPENSTACK_BIN']}/openstack", *args], env=env,
                          capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"openstack {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}")
    return proc


def osc(vc, *args: str, timeout: float = 180):
    return json.loads(run(vc, *args, "-f", "json", timeout=timeout).stdout)


@pytest.fixture(scope="module")
def si(vc):
    """An independent pyVmomi session on the simulator's plain-http listener."""
    with session(vc) as conn:
        yield conn


def vms_by_instance_uuid(si, instance_uuid: str) -> list:
    content = si.RetrieveContent()
    found = content.searchIndex.FindAllByUuid(uuid=instance_uuid, vmSearch=True,
                                              instanceUuid=True)
    return list(found or [])


def wait_for(what: str, probe, timeout: float = 60, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)


def server_status(vc, server_id: str) -> dict:
    return osc(vc, "server", "show", server_id)


def wait_status(vc, server_id: str, status: str, timeout: float = SPAWN_BUDGET) -> dict:
    def probe():
        shown = server_status(vc, server_id)
        assert shown["status"] != "ERROR", shown.get("fault")
        return shown if shown["status"] == status and not shown.get("OS-EXT-STS:task_state") \
            else None
    return wait_for(f"server {server_id} {status}", probe, timeout, 1)


def settled(vc, server_id: str) -> dict | None:
    """The server once it is ERROR or ACTIVE (scheduling done), else None."""
    shown = server_status(vc, server_id)
    return shown if shown["status"] in ("ERROR", "ACTIVE") else None


def delete_server(vc, server_id: str) -> None:
    run(vc, "server", "delete", "--wait", server_id, check=False, timeout=300)
    # Nova deletes the ports it created; anything left is ours to remove (and a failure).
    left = [p["ID"] for p in osc(vc, "port", "list", "--device-id", server_id)]
    for port_id in left:
        run(vc, "port", "delete", port_id, check=False)
    assert not left, f"ports left after deleting server {server_id}: {left}"


def create_vc_server(vc) -> tuple[subprocess.CompletedProcess, dict | None, float]:
    """`openstack server create` exactly as the issue says: (result, server or None, seconds)."""
    name = f"test-vc-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    proc = run(vc, "server", "create", "--availability-zone", vc["LAB_VC_AZ"],
               "--image", vc["LAB_VC_IMAGE"], "--flavor", vc["LAB_VC_FLAVOR"],
               "--network", vc["LAB_VC_NETWORK"], "--wait", "-f", "json", name,
               check=False, timeout=SPAWN_BUDGET + 60)
    took = time.monotonic() - t0
    listed = osc(vc, "server", "list", "--name", f"^{name}$")
    return proc, server_status(vc, listed[0]["ID"]) if listed else None, took


@pytest.fixture
def vc_server(vc) -> Iterator[tuple[dict, float]]:
    """A server on the vCenter zone, deleted afterwards: (server, seconds to ACTIVE)."""
    proc, server, took = create_vc_server(vc)
    try:
        assert proc.returncode == 0 and server, (proc.stderr, server and server.get("fault"))
        assert server["status"] == "ACTIVE", server
        yield server, took
    finally:
        if server is not None:
            delete_server(vc, server["id"])


def test_vmware_computes_are_up_in_their_zone(vc):
    hosts = vc["LAB_NOVA_VC_HOSTS"].split()
    assert len(hosts) == 2  # one per simulator cluster
    services = {s["Host"]: s for s in osc(vc, "compute", "service", "list", "--service",
                                          "nova-compute")}
    for host in hosts:
        assert services[host]["State"] == "up" and services[host]["Status"] == "enabled", services
        assert services[host]["Zone"] == vc["LAB_VC_AZ"]
    for host in (vc.get("LAB_NOVA_HOST_A"), vc.get("LAB_NOVA_HOST_B")):
        if host in services:
            assert services[host]["Zone"] != vc["LAB_VC_AZ"], services[host]
    hypervisors = osc(vc, "hypervisor", "list")
    vmware = [h for h in hypervisors if h["Hypervisor Type"] == "VMware vCenter Server"]
    assert len(vmware) == 2, hypervisors
    shown = [osc(vc, "hypervisor", "show", h["ID"]) for h in vmware]
    assert sorted(h.get("service_host") or h["service"]["host"] for h in shown) == sorted(hosts)
    # Node name: <cluster moref>.<vCenter instance uuid>, two different clusters.
    assert len({h["Hypervisor Hostname"].split(".")[0] for h in vmware}) == 2


def test_legacy_vms_carry_no_nova_tag(vc, si):
    """Nova's reaper destroys nvp.vm-uuid-tagged VMs without an instance; the
    lab's legacy VMs must never carry the tag (only Nova's own VMs may)."""
    servers = {s["ID"] for s in osc(vc, "server", "list", "--all-projects")}
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        tagged = {vm.name: opt.value for vm in view.view for opt in vm.config.extraConfig or ()
                  if opt.key == "nvp.vm-uuid"}
    finally:
        view.DestroyView()
    assert set(tagged.values()) <= servers, tagged


def test_server_is_a_vm_of_the_simulator_on_the_mapped_port_group(vc, vc_server, si, tmp_path):
    server, took = vc_server
    assert took < SPAWN_BUDGET
    assert server["OS-EXT-AZ:availability_zone"] == vc["LAB_VC_AZ"]
    assert server["OS-EXT-SRV-ATTR:host"] in vc["LAB_NOVA_VC_HOSTS"].split()
    (port,) = osc(vc, "port", "list", "--device-id", server["id"], "--long")
    port = osc(vc, "port", "show", port["ID"])
    assert port["status"] == "ACTIVE", port
    assert port["binding_vif_type"] == "dvs", port
    assert port["binding_vif_details"]["dvs_port_group_name"] == vc["LAB_VC_PORT_GROUP"]
    assert port["binding_host_id"] == server["OS-EXT-SRV-ATTR:host"]

    (vm,) = vms_by_instance_uuid(si, server["id"])
    assert vm.config.instanceUuid == server["id"]
    assert vm.runtime.powerState == "poweredOn"
    # The VM lives in the cluster of the compute that spawned it.
    cluster = vm.runtime.host.parent
    assert isinstance(cluster, vim.ClusterComputeResource)
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"].split(".")[0] == cluster._moId
    nics = [d for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert [n.macAddress for n in nics] == [port["mac_address"]]
    pg = next(n for n in vm.network if n.name == vc["LAB_VC_PORT_GROUP"])
    assert nics[0].backing.port.portgroupKey == pg.key

    # os-onboard's discovery of the vCenter sees it as well.
    env = dict(os.environ, VSPHERE_PASSWORD=vc["VSPHERE_PASSWORD"],
               OS_ONBOARD_CONFIG=str(tmp_path / "no-config.yaml"))
    found = subprocess.run([*CLI, "--state-url", f"sqlite:///{tmp_path}/state.db", "discover",
                            vc["LAB_VSPHERE_URI"], "--no-save", "-f", "json"],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
    assert found.returncode == 0, found.stderr
    (row,) = [r for r in json.loads(found.stdout) if r["UUID"] == server["id"]]
    assert row["State"] == "running"
    assert [n["mac"] for n in row["NICs"]] == [port["mac_address"]]
    assert row["NICs"][0]["portgroup_key"] == pg.key


def test_stop_start_reboot_are_reflected_in_the_simulator(vc, vc_server, si):
    server, _ = vc_server
    (vm,) = vms_by_instance_uuid(si, server["id"])

    def power() -> str:
        return vm.runtime.powerState

    run(vc, "server", "stop", server["id"])
    wait_status(vc, server["id"], "SHUTOFF", 60)
    assert power() == "poweredOff"
    run(vc, "server", "start", server["id"])
    wait_status(vc, server["id"], "ACTIVE", 60)
    assert power() == "poweredOn"
    for kind in ("--hard", "--soft"):  # soft without VMware Tools: the driver resets
        run(vc, "server", "reboot", kind, server["id"])
        wait_status(vc, server["id"], "ACTIVE", 60)
        assert power() == "poweredOn"
    # Nova's records agree (power_state 1 = RUNNING).
    assert server_status(vc, server["id"])["OS-EXT-STS:power_state"] in (1, "Running")


def test_delete_removes_the_vm(vc, si):
    proc, server, _ = create_vc_server(vc)
    try:
        assert proc.returncode == 0 and server, (proc.stderr, server and server.get("fault"))
        assert server["status"] == "ACTIVE", server
        assert len(vms_by_instance_uuid(si, server["id"])) == 1
    finally:
        if server is not None:
            delete_server(vc, server["id"])
    assert vms_by_instance_uuid(si, server["id"]) == []


def test_placement_fences_the_zones(vc, tmp_path):
    """VMware servers never land on libvirt hosts, other servers never on the VMware ones."""
    tag = uuid.uuid4().hex[:8]
    blank = tmp_path / "blank.raw"
    blank.write_bytes(b"\0" * 1024 * 1024)
    image = osc(vc, "image", "create", "--disk-format", "raw", "--container-format", "bare",
                "--file", str(blank), f"test-blank-{tag}")
    flavor = osc(vc, "flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "0",
                 f"test-plain-{tag}")
    made = []
    try:
        # Zone "nova" alone would not do: Nova does not filter its default zone in
        # Placement, and the trait sends the vCenter flavor to vCenter anyway. A
        # libvirt host named explicitly must refuse it.
        libvirt = vc.get("LAB_NOVA_HOST_B")
        assert libvirt, "the lab has no host B"
        cases = [  # (zone, image, flavor): none of them has a host
            (vc["LAB_VC_AZ"], image["id"], flavor["id"]),  # no trait asked: not on vCenter
            (f"nova:{libvirt}", vc["LAB_VC_IMAGE"], vc["LAB_VC_FLAVOR"]),  # not on libvirt
        ]
        for zone, image_ref, flavor_ref in cases:
            proc = run(vc, "server", "create", "--availability-zone", zone, "--image", image_ref,
                       "--flavor", flavor_ref, "--network", vc["LAB_VC_NETWORK"], "-f", "json",
                       f"test-fence-{tag}")
            server = json.loads(proc.stdout)
            made.append(server["id"])
            shown = wait_for(f"server {server['id']} ERROR or ACTIVE",
                             lambda sid=server["id"]: settled(vc, sid), SPAWN_BUDGET, 1)
            assert shown["status"] == "ERROR", (zone, shown)
            assert "No valid host" in json.dumps(shown.get("fault")), shown.get("fault")
    finally:
        for server_id in made:
            delete_server(vc, server_id)
        run(vc, "flavor", "delete", flavor["id"], check=False)
        run(vc, "image", "delete", image["id"], check=False)


def test_ports_bind_as_dvs_only_on_the_vmware_hosts(vc):
    """onboard_bridge: dvs onto the mapped port group on vc-c*, never a bridge there;
    a vc-net port bound on a libvirt host fails to bind (no bridge for physnet-vc)."""
    vc_host = vc["LAB_NOVA_VC_HOSTS"].split()[0]
    libvirt_host = vc.get("LAB_NOVA_HOST_B") or "lab-test-host"
    made = []
    try:
        for network, host, vif_type in (
                (vc["LAB_VC_NETWORK"], vc_host, "dvs"),
                (vc["LAB_VC_NETWORK"], libvirt_host, "binding_failed"),
                (vc["LAB_OPENSTACK_PROVIDER_NETWORK"], vc_host, "binding_failed")):
            port = osc(vc, "port", "create", "--network", network,
                       f"test-vc-port-{uuid.uuid4().hex[:8]}")
            made.append(port["id"])
            run(vc, "port", "set", "--host", host, port["id"])
            shown = osc(vc, "port", "show", port["id"])
            assert shown["binding_vif_type"] == vif_type, (network, host, shown)
            if vif_type == "dvs":
                assert shown["binding_vif_details"]["dvs_port_group_name"] == \
                    vc["LAB_VC_PORT_GROUP"]
                assert shown["status"] == "ACTIVE"
                run(vc, "port", "unset", "--host", port["id"])
                wait_for("port DOWN after unbinding", lambda pid=port["id"]: osc(
                    vc, "port", "show", pid)["status"] == "DOWN", 10)
    finally:
        for port_id in made:
            run(vc, "port", "delete", port_id, check=False)
