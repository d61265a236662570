"""vCenter and OpenStack kept in step by ``os-onboard watch`` (phases 2 and 3 on vSphere).

The lab's legacy vSphere VMs (``LAB_VSPHERE_LEGACY_VMS``, made by the simulator
once: own MACs, Tools-reported addresses, spread over both clusters) are
adopted with plan/apply; then a watcher runs as the README shows it::

    os-onboard watch --policy tolerate --kind-policy not-adopted=adopt \\
        --mapping lab/mapping.yaml $LAB_VSPHERE_URI

and changes made in vCenter arrive in OpenStack from the change feed
(``WaitForUpdatesEx``): a power-off shows as SHUTOFF, a power-on as ACTIVE
(before Nova's power sync could force-stop it), a relocation to the other
cluster moves the server's host and node, its allocation and its port
binding. A VM made in vCenter on a managed cluster is adopted by the adopt
policy (phase 3, vCenter -> OpenStack); a server made through OpenStack on
the VMware zone is a VM in vCenter (Nova's driver) and never reported as
drift or "not adopted" (OpenStack -> vCenter); a change os-onboard wrote is
not seen again as drift (no echo). The latencies are printed (the figures
are bench/reconcile's business, not asserted here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.functional.lab import REPO
from tests.functional.vcenter import CLI, create_vm, destroy, every, onboard, session, vm_spec

HOSTS = {"DC0_C0": "vc-c0", "DC0_C1": "vc-c1"}
NEW_NAME = "legacy-vc-born"  # matches the mapping's owner rule legacy-vc-*
NEW_MAC = "00:50:56:3f:20:01"
NEW_IP_SUFFIX = 250


@pytest.fixture(scope="module")
def si(lab):
    if not lab.get("LAB_VC_AZ") or not lab.get("LAB_VSPHERE_LEGACY_VMS"):
        pytest.skip("the lab has no VMware computes or no legacy vSphere VMs (lab/lab env)")
    with session(lab) as conn:
        yield conn


def witness(vm) -> tuple:
    """What a restart or a reconfiguration would change."""
    return vm.runtime.bootTime, vm.runtime.powerState, vm.config.changeVersion


@pytest.fixture(scope="module")
def ctx(lab, si, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("vcenter-watch")
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db"}
    names = lab["LAB_VSPHERE_LEGACY_VMS"].split()
    vms = every(si, vim.VirtualMachine)
    context = {"lab": lab, "env": env, "names": names,
               "vms": {n: vms[n] for n in names}, "mapping": str(REPO / "lab/mapping.yaml"),
               "log": state / "watch.log"}
    for stale in [v for n, v in vms.items() if n == NEW_NAME]:  # an interrupted run's
        onboard(context, "unmanage", stale.config.instanceUuid, check=False)
        destroy(stale)
    try:
        yield context
    finally:
        for name in names:
            onboard(context, "unmanage", context["vms"][name].config.instanceUuid, check=False)
        for vm in [v for n, v in every(si, vim.VirtualMachine).items() if n == NEW_NAME]:
            onboard(context, "unmanage", vm.config.instanceUuid, check=False)
            destroy(vm)


def openstack(ctx: dict, *args: str):
    proc = subprocess.run([f"{ctx['lab']['LAB_OPENSTACK_BIN']}/openstack", *args, "-f", "json"],
                          env=ctx["env"], capture_output=True, text=True, check=True,
                          timeout=120)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def server(ctx: dict, server_id: str) -> dict:
    return openstack(ctx, "server", "show", server_id)


def wait_for(what: str, probe, timeout: float = 60, interval: float = 0.5) -> float:
    """Seconds until probe() is true (printed); fails after ``timeout``."""
    started = time.monotonic()
    while not probe():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)
    took = time.monotonic() - started
    print(f"{what}: {took:.1f} s")
    return took


def _cluster(vm) -> str:
    return vm.runtime.host.parent.name


@pytest.fixture(scope="module")
def adopted(ctx, si) -> dict:
    """The legacy VMs adopted with plan/apply (nothing written to vCenter)."""
    before = {n: witness(vm) for n, vm in ctx["vms"].items()}
    assert {w[1] for w in before.values()} == {"poweredOn"}
    onboard(ctx, "discover", ctx["lab"]["LAB_VSPHERE_URI"])
    args = [a for n in ctx["names"] for a in ("--vm", n)]
    plan = json.loads(onboard(ctx, "plan", "--mapping", ctx["mapping"], *args,
                              "-f", "json").stdout)
    assert [(v["name"], v["op"], v["blocked"]) for v in plan["vms"]] == \
        [(n, "+", []) for n in ctx["names"]]
    assert not [s for v in plan["vms"] for s in v["steps"] if s["kind"] == "host"]
    outcomes = json.loads(onboard(ctx, "apply", "-f", "json").stdout)
    assert {o["Status"] for o in outcomes} == {"adopted"}, outcomes
    for vm in ctx["vms"].values():
        srv = server(ctx, vm.config.instanceUuid)
        assert (srv["status"], srv["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", HOSTS[_cluster(vm)])
        mac = next(d.macAddress for d in vm.config.hardware.device
                   if isinstance(d, vim.vm.device.VirtualEthernetCard))
        ports = openstack(ctx, "port", "list", "--device-id", vm.config.instanceUuid)
        assert [p["MAC Address"] for p in ports] == [mac]
        assert [i["ip_address"] for i in ports[0]["Fixed IP Addresses"]] == \
            list(vm.guest.net[0].ipAddress)
    assert {n: witness(vm) for n, vm in ctx["vms"].items()} == before  # untouched
    return before


@pytest.fixture(scope="module")
def watcher(ctx, adopted) -> Iterator[subprocess.Popen]:
    cmd = [str(CLI), "watch", "--policy", "tolerate", "--kind-policy", "not-adopted=adopt",
           "--mapping", ctx["mapping"], ctx["lab"]["LAB_VSPHERE_URI"]]
    with open(ctx["log"], "w") as log:
        proc = subprocess.Popen(cmd, env=ctx["env"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for("watch: first pass", lambda: "pass (start)" in ctx["log"].read_text(),
                 timeout=120)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(ctx["log"].read_text()[-4000:])


def history(ctx: dict, name: str) -> list[dict]:
    return json.loads(onboard(ctx, "history", name, "-f", "json").stdout or "[]")


def test_power_off_and_on_in_vcenter_arrive_in_nova(ctx, watcher):
    name = ctx["names"][0]
    vm = ctx["vms"][name]
    server_id = vm.config.instanceUuid
    WaitForTask(vm.PowerOffVM_Task())
    wait_for("vCenter power-off -> Nova SHUTOFF",
             lambda: server(ctx, server_id)["status"] == "SHUTOFF")
    WaitForTask(vm.PowerOnVM_Task())
    wait_for("vCenter power-on -> Nova ACTIVE",
             lambda: server(ctx, server_id)["status"] == "ACTIVE")
    time.sleep(5)  # Nova's own sync must not have acted on it: the VM stays on
    assert vm.runtime.powerState == "poweredOn"
    assert watcher.poll() is None
    tolerated = [r for r in history(ctx, name)
                 if (r["Kind"], r["Action"]) == ("power-changed", "tolerated")]
    assert len(tolerated) == 2, tolerated  # one per change: no echo of what was written


def test_relocation_to_the_other_cluster_moves_the_server(ctx, si, watcher):
    name = ctx["names"][0]
    vm = ctx["vms"][name]
    server_id = vm.config.instanceUuid
    home = _cluster(vm)
    other = next(c for c in HOSTS if c != home)
    target = every(si, vim.ClusterComputeResource)[other]
    boot = vm.runtime.bootTime
    WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=target.host[0],
                                                       pool=target.resourcePool)))
    wait_for(f"relocation {home} -> {other}: server host {HOSTS[other]}",
             lambda: server(ctx, server_id)["OS-EXT-SRV-ATTR:host"] == HOSTS[other])
    srv = server(ctx, server_id)
    node = srv["OS-EXT-SRV-ATTR:hypervisor_hostname"]
    assert node == f"{target._moId}.{si.content.about.instanceUuid}"
    [port] = openstack(ctx, "port", "list", "--device-id", server_id, "--long")
    assert openstack(ctx, "port", "show", port["ID"])["binding_host_id"] == HOSTS[other]
    providers = openstack(ctx, "resource", "provider", "list", "--name", node)
    allocations = openstack(ctx, "resource", "provider", "allocation", "show", server_id)
    assert [a["resource_provider"] for a in allocations] == [providers[0]["uuid"]]
    assert (vm.runtime.bootTime, vm.runtime.powerState) == (boot, "poweredOn")
    # ...and back home, as the lab keeps it
    source = every(si, vim.ClusterComputeResource)[home]
    WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=source.host[0],
                                                       pool=source.resourcePool)))
    wait_for(f"relocation back to {home}",
             lambda: server(ctx, server_id)["OS-EXT-SRV-ATTR:host"] == HOSTS[home])


def test_a_vm_made_in_vcenter_is_adopted_by_the_policy(ctx, si, watcher):
    """Phase 3, vCenter -> OpenStack: a new VM on a managed cluster whose name the
    mapping's owner rules take becomes a server with its instanceUuid and MAC."""
    instance_uuid = str(uuid.uuid4())
    vm = create_vm(si, vm_spec(si, NEW_NAME, instance_uuid, NEW_MAC,
                               ctx["lab"]["LAB_VC_PORT_GROUP"]), "DC0_C1")
    prefix = ctx["lab"].get("LAB_VC_CIDR", "10.99.0.0/24").rsplit(".", 1)[0]
    address = f"{prefix}.{NEW_IP_SUFFIX}"
    # VMware Tools report its address (the simulator's SET.guest.ipAddress), then it runs
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="SET.guest.ipAddress", value=address)])))
    WaitForTask(vm.PowerOnVM_Task())
    before = witness(vm)

    def adopted_now() -> bool:
        return any(s["ID"] == instance_uuid for s in openstack(
            ctx, "server", "list", "--all-projects"))
    wait_for("new vCenter VM -> adopted", adopted_now, timeout=120)
    srv = server(ctx, instance_uuid)
    assert (srv["status"], srv["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "vc-c1")
    [port] = openstack(ctx, "port", "list", "--device-id", instance_uuid, "--long")
    assert port["MAC Address"] == NEW_MAC
    assert [i["ip_address"] for i in port["Fixed IP Addresses"]] == [address]
    assert witness(vm) == before
    assert "nvp.vm-uuid" not in {o.key for o in vm.config.extraConfig or []}


def test_a_server_made_through_openstack_is_never_drift(ctx, si, watcher):
    """Phase 3, OpenStack -> vCenter: Nova's driver makes the VM; the watcher sees it
    appear in vCenter and leaves it alone (not 'not adopted', no drift)."""
    lab = ctx["lab"]
    offset = len(ctx["log"].read_text())
    made = openstack(ctx, "server", "create", "--availability-zone", lab["LAB_VC_AZ"],
                     "--image", lab["LAB_VC_IMAGE"], "--flavor", lab["LAB_VC_FLAVOR"],
                     "--network", lab["LAB_VC_NETWORK"], "--wait", "vc-made-by-nova")
    try:
        assert made["status"] == "ACTIVE"
        vms = [v for v in every(si, vim.VirtualMachine).values()
               if v.config and v.config.instanceUuid == made["id"]]
        assert len(vms) == 1
        # the watcher saw the VM appear (an event, then a pass)
        wait_for("watcher pass after the Nova-made VM appeared",
                 lambda: "pass (event" in ctx["log"].read_text()[offset:], timeout=60)
        time.sleep(3)
        # the event that woke the pass names it; no drift row does
        rows = [line for line in ctx["log"].read_text().splitlines()
                if made["id"] in line and not line.startswith("pass (")]
        assert not rows, rows
        assert history(ctx, made["id"]) == []
    finally:
        subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", "server", "delete", "--wait",
                        made["id"]], env=ctx["env"], capture_output=True, timeout=300,
                       check=False)
    assert watcher.poll() is None


def _disks(vm) -> list:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def _volume_status(ctx: dict, volume_id: str, want: str, timeout: float = 180) -> dict:
    shown: dict = {}

    def reached() -> bool:
        shown.update(openstack(ctx, "volume", "show", volume_id))
        assert shown["status"] != "error", shown
        return shown["status"] == want
    wait_for(f"volume {volume_id} {want}", reached, timeout=timeout)
    return shown


def test_nova_s_driver_reboots_and_attaches_a_volume_to_an_adopted_vm(ctx, si, watcher):
    """Afterwards the real VMware driver manages the adopted VM: a reboot through
    OpenStack restarts that very VM; a Cinder VMDK volume attached and detached through
    Nova appears in and leaves the VM; the watcher reports none of it as drift."""
    lab = ctx["lab"]
    if not lab.get("LAB_CINDER_VMDK_TYPE"):
        pytest.skip("the lab's Cinder has no vmdk backend (lab/lab env)")
    name = ctx["names"][-1]
    vm = ctx["vms"][name]
    server_id = vm.config.instanceUuid
    offset = len(ctx["log"].read_text())
    boot = vm.runtime.bootTime
    subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", "server", "reboot", "--hard",
                    "--wait", server_id], env=ctx["env"], capture_output=True, check=True,
                   timeout=300)
    assert server(ctx, server_id)["status"] == "ACTIVE"
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime != boot

    volume = openstack(ctx, "volume", "create", "--type", lab["LAB_CINDER_VMDK_TYPE"],
                       "--size", "1", f"vc-watch-{uuid.uuid4().hex[:6]}")
    try:
        _volume_status(ctx, volume["id"], "available")
        before = {d.key for d in _disks(vm)}
        subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", "server", "add", "volume",
                        server_id, volume["id"]], env=ctx["env"], capture_output=True,
                       check=True, timeout=300)
        _volume_status(ctx, volume["id"], "in-use")
        added = [d for d in _disks(vm) if d.key not in before]
        assert [d.backing.uuid for d in added] == [volume["id"]]
        subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", "server", "remove", "volume",
                        server_id, volume["id"]], env=ctx["env"], capture_output=True,
                       check=True, timeout=300)
        _volume_status(ctx, volume["id"], "available")
        assert {d.key for d in _disks(vm)} == before
    finally:
        subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", "volume", "delete",
                        "--force", volume["id"]], env=ctx["env"], capture_output=True,
                       check=False, timeout=120)
    time.sleep(3)  # a pass after the last device change
    # neither the VM (its new disk is the volume: same id) nor Cinder's backing VM
    # of the volume (named volume-<id>, instanceUuid = the volume id) is drift
    rows = [line for line in ctx["log"].read_text()[offset:].splitlines()
            if line.startswith((f"{name} |", f"volume-{volume['id']} |"))]
    assert not rows, rows
    assert watcher.poll() is None


def test_cpu_and_memory_reconfigured_in_vcenter_become_the_flavor(ctx, watcher):
    """resized on vSphere: the flavor (the planner's policy) and the allocation follow."""
    name = ctx["names"][1]
    vm = ctx["vms"][name]
    server_id = vm.config.instanceUuid
    shape = (vm.config.hardware.numCPU, vm.config.hardware.memoryMB)
    try:
        WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=2, memoryMB=128)))

        def flavor() -> dict:
            return server(ctx, server_id)["flavor"]
        wait_for("vCenter 2 vCPU / 128 MiB -> Nova flavor",
                 lambda: (flavor()["vcpus"], flavor()["ram"]) == (2, 128))
        allocations = openstack(ctx, "resource", "provider", "allocation", "show", server_id)
        assert allocations[0]["resources"]["VCPU"] == 2
        assert allocations[0]["resources"]["MEMORY_MB"] == 128
        assert vm.runtime.powerState == "poweredOn"
    finally:
        WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(numCPUs=shape[0],
                                                         memoryMB=shape[1])))
        wait_for("shape back in Nova", lambda: (server(ctx, server_id)["flavor"]["vcpus"],
                                                server(ctx, server_id)["flavor"]["ram"])
                 == shape)
