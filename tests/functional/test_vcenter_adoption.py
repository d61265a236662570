"""A running vSphere VM adopted into Nova, Neutron and Placement without touching it.

The VM is made for the test in the lab's simulator (the model's own VMs share one
MAC per host, which the planner rightly refuses): powered on in cluster DC0_C0,
a thin root VMDK, one NIC with a fixed MAC on the mapped port group, its own
instanceUuid and no ``nvp.vm-uuid``. ``os-onboard discover``/``plan``/``apply``
run as a user runs them; afterwards Nova's VMware driver (the lab's
nova-compute of that cluster) manages the VM: the server is ACTIVE on the
cluster's compute node with the VM's instanceUuid and its port carries the
VM's MAC. The VM is proven undisturbed (``runtime.bootTime``, power state,
``config.changeVersion``, and its tasks: none new), and
``unmanage`` releases the records and leaves the VM as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.functional.vcenter import create_vm, destroy, onboard, session, vm_spec

MAC = "00:50:56:3f:00:a1"
NAME = "legacy-vc-adopt"


@pytest.fixture(scope="module")
def si(lab):
    if not lab.get("LAB_VC_AZ"):
        pytest.skip("the lab runs no VMware nova-compute (lab/lab env: no LAB_VC_AZ)")
    with session(lab) as conn:
        yield conn


def _make_vm(si, instance_uuid: str):
    """A powered-on VM as a vCenter user would have made it (no OpenStack tags)."""
    vm = create_vm(si, vm_spec(si, NAME, instance_uuid, MAC, "DC0_DVPG0"), "DC0_C0")
    WaitForTask(vm.PowerOnVM_Task())
    return vm


def _witness(vm) -> tuple:
    """What a disturbance would change: boot time, power, configuration version."""
    return (vm.runtime.bootTime, vm.runtime.powerState, vm.config.changeVersion)


def _tasks_on(si, vm) -> list[str]:
    """The VM's tasks (``recentTask``; 0.24 has no task history collector)."""
    return [t.info.key for t in vm.recentTask or []]


def _event_keys(si, vm) -> set[int]:
    """The keys of the VM's events in vCenter's event history (each write makes one)."""
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(
        entity=vm, recursion="self"))
    return {e.key for e in si.content.eventManager.QueryEvents(spec)
            if e.vm is not None and e.vm.vm == vm}


@pytest.fixture(scope="module")
def ctx(lab, si, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("vcenter-adoption")
    mapping = state / "mapping.yaml"
    mapping.write_text(json.dumps({
        "owners": [{"match": {"name": "legacy-vc-*"}, "project": "demo", "user": "demo"}],
        "networks": [{"match": {"network": lab["LAB_VC_PORT_GROUP"]},
                      "neutron_network": lab["LAB_VC_NETWORK"]}],
        "flavors": {"policy": "reuse-or-create", "prefix": "adopted"},
        "local_disks": "block"}))
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db"}
    context = {"lab": lab, "env": env, "mapping": str(mapping)}
    for stale in _vms_named(si, NAME):  # an interrupted run's (the estate persists it)
        onboard(context, "unmanage", stale.config.instanceUuid, check=False)
        destroy(stale)
    instance_uuid = str(uuid.uuid4())
    vm = _make_vm(si, instance_uuid)
    context.update(vm=vm, uuid=instance_uuid)
    try:
        yield context
    finally:
        onboard(context, "unmanage", instance_uuid, check=False)
        destroy(vm)


def _vms_named(si, name: str) -> list:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder,
                                                      [vim.VirtualMachine], True)
    try:
        return [o for o in view.view if o.name == name]
    finally:
        view.Destroy()


def openstack(ctx: dict, *args: str) -> dict | list:
    lab = ctx["lab"]
    proc = subprocess.run([f"{lab['LAB_OPENSTACK_BIN']}/openstack", *args, "-f", "json"],
                          env=ctx["env"], capture_output=True, text=True, check=True,
                          timeout=120)
    return json.loads(proc.stdout)


def test_a_running_vsphere_vm_is_adopted_without_being_touched(ctx, si):
    vm, instance_uuid = ctx["vm"], ctx["uuid"]
    before, tasks_before, events_before = _witness(vm), _tasks_on(si, vm), _event_keys(si, vm)
    assert before[1] == "poweredOn"

    onboard(ctx, "discover", ctx["lab"]["LAB_VSPHERE_URI"])
    plan = json.loads(onboard(ctx, "plan", "--mapping", ctx["mapping"], "--vm", NAME,
                              "-f", "json").stdout)
    [vm_plan] = plan["vms"]
    assert vm_plan["op"] == "+", vm_plan["blocked"]
    node = f"clustercomputeresource-38.{si.content.about.instanceUuid}"
    assert vm_plan["node"] == node and vm_plan["host"] == "vc-c0"
    assert not [s for s in vm_plan["steps"] if s["kind"] == "host"]  # nothing on vCenter
    outcomes = json.loads(onboard(ctx, "apply", "-f", "json").stdout)
    assert [o["Status"] for o in outcomes] == ["adopted"], outcomes

    server = openstack(ctx, "server", "show", instance_uuid)
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-SRV-ATTR:host"] == "vc-c0"
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node
    ports = openstack(ctx, "port", "list", "--device-id", instance_uuid, "--long")
    assert [p["MAC Address"] for p in ports] == [MAC]
    assert [p["Status"] for p in ports] == ["ACTIVE"]

    # The VM saw nothing: same boot, power and configuration; no task ran on it.
    assert _witness(vm) == before
    assert _tasks_on(si, vm) == tasks_before
    assert _event_keys(si, vm) == events_before  # no write at all: no event
    assert "nvp.vm-uuid" not in {o.key for o in vm.config.extraConfig or []}

    released = json.loads(onboard(ctx, "unmanage", instance_uuid, "-f", "json").stdout)
    assert [r["Status"] for r in released] == ["released"], released
    assert _witness(vm) == before
    assert not _servers(ctx, instance_uuid)


def test_nova_s_vmware_driver_manages_the_adopted_vm(ctx, si):
    """Stop and start through Nova act on the very VM (found by its instanceUuid)."""
    vm, instance_uuid = ctx["vm"], ctx["uuid"]
    onboard(ctx, "discover", ctx["lab"]["LAB_VSPHERE_URI"])
    onboard(ctx, "plan", "--mapping", ctx["mapping"], "--vm", NAME)
    outcomes = json.loads(onboard(ctx, "apply", "-f", "json").stdout)
    assert [o["Status"] for o in outcomes] == ["adopted"], outcomes
    for action, status, power in (("stop", "SHUTOFF", "poweredOff"),
                                  ("start", "ACTIVE", "poweredOn")):
        openstack_run(ctx, "server", action, instance_uuid)
        wait_for(f"server {action}", lambda s=status: openstack(
            ctx, "server", "show", instance_uuid)["status"] == s)
        assert vm.runtime.powerState == power
    assert len(_servers(ctx, instance_uuid)) == 1


def _servers(ctx: dict, instance_uuid: str) -> list[dict]:
    return [s for s in openstack(ctx, "server", "list", "--all-projects")
            if s["ID"] == instance_uuid]


def openstack_run(ctx: dict, *args: str) -> None:
    subprocess.run([f"{ctx['lab']['LAB_OPENSTACK_BIN']}/openstack", *args], env=ctx["env"],
                   capture_output=True, text=True, check=True, timeout=120)


def wait_for(what: str, probe, timeout: float = 90, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)
