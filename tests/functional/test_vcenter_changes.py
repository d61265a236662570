"""Out-of-band vCenter changes on an adopted VM reach OpenStack (phases 2 and 3 on vSphere).

A VM of this test's own (``vcchg-<random>``, a vCenter user's VM: one NIC on
``DC0_DVPG0``, which the mapping maps to ``vc-net``) is adopted with
plan/apply; then, against the real simulator and Nova's real VMware driver:

* renamed in vCenter: ``report`` shows it and writes nothing; a watcher
  makes it the server's display name (and ``os-onboard:vm-name``); a rename
  through OpenStack is never drift, never undone;
* renamed on both sides before the watcher's pass: vCenter's name wins, the
  overwritten OpenStack name is in the audit row;
* a NIC hot-added in vCenter becomes a Neutron port with its MAC, bound to the
  cluster's nova-compute, in Nova's network cache; hot-removed, the port goes;
* the VM deleted in vCenter is ``vm-gone``: deferred on the first pass that
  misses it, its records purged on the second.

The watcher tolerates the kinds this file is about and only reports the
others: the lab is shared, and another test's watcher owns what happens to
its own VMs' power, place and shape. os-onboard writes nothing to vCenter:
the VM's boot time and power state are unchanged by it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.functional.lab import REPO
from tests.functional.vcenter import (
    CLI,
    add_nic,
    create_vm,
    destroy,
    every,
    nics,
    onboard,
    remove_nic,
    rename,
    session,
    vm_spec,
)

PREFIX = "vcchg-"  # this file's VMs (an owner rule of its own mapping takes them)
MAC = "00:50:56:3f:22:01"
ADDED_MAC = "00:50:56:3f:22:02"
IP_SUFFIX = 242
#: what this file's watcher tolerates; every other kind is reported only
KINDS = ("renamed", "nic-added", "nic-removed", "ip-changed", "vm-gone")


@pytest.fixture(scope="module")
def si(lab):
    if not lab.get("LAB_VC_AZ"):
        pytest.skip("the lab has no VMware computes (lab/lab env)")
    with session(lab) as conn:
        yield conn


def witness(vm) -> tuple:
    """What a restart or a power operation by os-onboard would change."""
    return vm.runtime.bootTime, vm.runtime.powerState


def openstack(ctx: dict, *args: str):
    """An openstack command; its JSON answer (commands that print nothing: None)."""
    shows = args[:2] != ("server", "set")
    proc = subprocess.run([f"{ctx['lab']['LAB_OPENSTACK_BIN']}/openstack", *args,
                           *(("-f", "json") if shows else ())],
                          env=ctx["env"], capture_output=True, text=True, check=True,
                          timeout=120)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def server(ctx: dict) -> dict:
    return openstack(ctx, "server", "show", ctx["uuid"])


def wait_for(what: str, probe, timeout: float = 60, interval: float = 0.5) -> float:
    """Seconds until probe() is true (printed); fails after ``timeout``."""
    started = time.monotonic()
    while not probe():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)
    took = time.monotonic() - started
    print(f"{what}: {took:.1f} s")
    return took


def _mapping(path: Path) -> str:
    """lab/mapping.yaml with an owner rule for this file's VMs."""
    mapping = yaml.safe_load((REPO / "lab/mapping.yaml").read_text())
    mapping["owners"].append({"match": {"name": f"{PREFIX}*"}, "project": "demo",
                              "user": "demo"})
    path.write_text(yaml.safe_dump(mapping))
    return str(path)


@pytest.fixture(scope="module")
def ctx(lab, si, tmp_path_factory) -> Iterator[dict]:
    """This file's VM, made in vCenter, powered on, adopted with plan/apply; unmanaged
    and destroyed afterwards whatever happened."""
    state = tmp_path_factory.mktemp("vcenter-changes")
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db"}
    context = {"lab": lab, "env": env, "mapping": _mapping(state / "mapping.yaml"),
               "log": state / "watch.log", "uuid": str(uuid.uuid4()),
               "name": f"{PREFIX}{uuid.uuid4().hex[:6]}"}
    for name, stale in every(si, vim.VirtualMachine).items():  # an interrupted run's
        if name.startswith(PREFIX):
            onboard(context, "unmanage", stale.config.instanceUuid, check=False)
            destroy(stale)
    vm = create_vm(si, vm_spec(si, context["name"], context["uuid"], MAC,
                               lab["LAB_VC_PORT_GROUP"]), "DC0_C0")
    try:
        prefix = lab.get("LAB_VC_CIDR", "10.99.0.0/24").rsplit(".", 1)[0]
        context["ip"] = f"{prefix}.{IP_SUFFIX}"
        WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[  # VMware Tools' answer
            vim.option.OptionValue(key="SET.guest.ipAddress", value=context["ip"])])))
        WaitForTask(vm.PowerOnVM_Task())
        context["vm"] = vm
        onboard(context, "discover", lab["LAB_VSPHERE_URI"])
        plan = json.loads(onboard(context, "plan", "--mapping", context["mapping"], "--vm",
                                  context["name"], "-f", "json").stdout)
        assert [(v["name"], v["op"], v["blocked"]) for v in plan["vms"]] == \
            [(context["name"], "+", [])]
        before = witness(vm)
        outcomes = json.loads(onboard(context, "apply", "-f", "json").stdout)
        assert {o["Status"] for o in outcomes} == {"adopted"}, outcomes
        assert witness(vm) == before
        context["boot"] = before
        yield context
    finally:
        onboard(context, "unmanage", context["uuid"], check=False)
        for name, made in every(si, vim.VirtualMachine).items():
            if name.startswith(PREFIX):
                destroy(made)


def _watch_command(ctx: dict) -> list[str]:
    kinds = [a for k in KINDS for a in ("--kind-policy", f"{k}=tolerate")]
    return [str(CLI), "watch", "--policy", "report", *kinds, "--mapping", ctx["mapping"],
            ctx["lab"]["LAB_VSPHERE_URI"]]


@pytest.fixture(scope="module")
def watcher(ctx) -> Iterator[subprocess.Popen]:
    with open(ctx["log"], "a") as log:
        proc = subprocess.Popen(_watch_command(ctx), env=ctx["env"], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_for("watch: first pass", lambda: "pass (start)" in ctx["log"].read_text(),
                 timeout=60)
        yield proc
        assert proc.poll() is None, "the watcher ended"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(ctx["log"].read_text()[-3000:])


def history(ctx: dict) -> list[dict]:
    return json.loads(onboard(ctx, "history", ctx["uuid"], "-f", "json").stdout or "[]")


def one_pass(ctx: dict, policy: str) -> list[dict]:
    """One ``reconcile`` pass (as a watcher's), this VM's rows."""
    args = ["--kind-policy", "renamed=tolerate"] if policy == "tolerate" else []
    rows = json.loads(onboard(ctx, "reconcile", "--policy", "report", *args, "--mapping",
                              ctx["mapping"], ctx["lab"]["LAB_VSPHERE_URI"], "-f",
                              "json").stdout or "[]")
    return [r for r in rows if r.get("UUID") == ctx["uuid"]]


def test_a_rename_in_vcenter_is_reported_then_becomes_the_display_name(ctx, si):
    vm, old = ctx["vm"], ctx["name"]
    new = f"{old}-renamed"
    rename(vm, new)
    ctx["name"] = new
    rows = one_pass(ctx, "report")
    assert [(r["Kind"], r["Recorded"], r["Actual"], r["Action"]) for r in rows] == \
        [("renamed", old, new, "reported")], rows
    assert server(ctx)["name"] == old  # report wrote nothing

    rows = one_pass(ctx, "tolerate")
    assert [(r["Kind"], r["Action"]) for r in rows] == [("renamed", "tolerated")], rows
    srv = server(ctx)
    assert srv["name"] == new
    assert srv["properties"]["os-onboard:vm-name"] == new
    assert one_pass(ctx, "tolerate") == []  # no echo

    # A rename through OpenStack is no drift: never undone
    openstack(ctx, "server", "set", "--name", "named-in-openstack", ctx["uuid"])
    assert one_pass(ctx, "tolerate") == []
    assert server(ctx)["name"] == "named-in-openstack"
    assert witness(vm) == ctx["boot"]


def test_renamed_on_both_sides_vcenter_wins_and_the_openstack_name_is_audited(ctx, watcher):
    """Phase 3: the server renamed through OpenStack and the VM in vCenter before the
    watcher's pass; the VM's new name wins, the overwritten name is in the audit."""
    vm = ctx["vm"]
    openstack(ctx, "server", "set", "--name", "both-openstack", ctx["uuid"])  # no event
    new = f"{PREFIX}both-{uuid.uuid4().hex[:4]}"
    rename(vm, new)  # an event: the watcher's pass sees both changes
    ctx["name"] = new
    wait_for("vCenter rename -> Nova display name", lambda: server(ctx)["name"] == new)
    [row] = [r for r in history(ctx) if (r["Kind"], r["Action"]) == ("renamed", "tolerated")
             and r["Actual"] == new]
    assert row["Recorded"] == "both-openstack"
    assert "'both-openstack' set through OpenStack is overwritten" in row["Detail"], row
    assert server(ctx)["properties"]["os-onboard:vm-name"] == new
    assert witness(vm) == ctx["boot"]


def _ports(ctx: dict) -> dict[str, dict]:
    return {p["MAC Address"]: p for p in openstack(ctx, "port", "list", "--device-id",
                                                   ctx["uuid"], "--long")}


def _cached_macs(ctx: dict) -> set[str]:
    """The MACs of Nova's network info cache (os-interface reads Neutron; the cache is
    what server show's addresses and Nova's driver read)."""
    out = subprocess.run(
        ["mariadb", "-u", "root", "-N", "-B", "-e", "SELECT network_info FROM "
         f"nova.instance_info_caches WHERE instance_uuid = '{ctx['uuid']}' "
         "AND deleted = 0"], capture_output=True, text=True, check=True, timeout=30).stdout
    return {v["address"] for v in json.loads(out or "[]")}


def test_a_nic_added_and_removed_in_vcenter_is_a_port_made_and_deleted(ctx, si, watcher):
    vm = ctx["vm"]
    add_nic(si, vm, ADDED_MAC, ctx["lab"]["LAB_VC_PORT_GROUP"])
    wait_for("vCenter NIC added -> Neutron port", lambda: ADDED_MAC in _ports(ctx))
    ports = _ports(ctx)
    port = openstack(ctx, "port", "show", ports[ADDED_MAC]["ID"])
    adopted = openstack(ctx, "port", "show", ports[MAC]["ID"])
    # bound as apply bound the VM's first NIC: the cluster's nova-compute, a dvs VIF
    assert (port["binding_host_id"], port["binding_vif_type"], port["device_owner"]) == (
        "vc-c0", "dvs", adopted["device_owner"]), port
    assert openstack(ctx, "network", "show", port["network_id"])["name"] == \
        ctx["lab"]["LAB_VC_NETWORK"]
    wait_for("the new port in Nova's network cache",
             lambda: ADDED_MAC in _cached_macs(ctx), timeout=20)
    time.sleep(2)  # Neutron's events for the port reached Nova: it plugged nothing more
    assert sorted(nics(vm)) == sorted([MAC, ADDED_MAC])
    assert witness(vm) == ctx["boot"]

    remove_nic(vm, ADDED_MAC)
    wait_for("vCenter NIC removed -> port deleted", lambda: ADDED_MAC not in _ports(ctx))
    assert list(_ports(ctx)) == [MAC]
    assert _cached_macs(ctx) == {MAC}
    assert list(nics(vm)) == [MAC]
    assert witness(vm) == ctx["boot"]


def test_the_vm_deleted_in_vcenter_is_vm_gone_on_the_second_pass(ctx, watcher):
    vm = ctx["vm"]
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.Destroy_Task())
    wait_for("vCenter VM deleted -> server purged", lambda: ctx["uuid"] not in {
        s["ID"] for s in openstack(ctx, "server", "list", "--all-projects")}, timeout=60)
    assert openstack(ctx, "port", "list", "--device-id", ctx["uuid"]) == []
    # newest first: purged by the pass after the one that first missed it
    assert [r["Action"] for r in history(ctx) if r["Kind"] == "vm-gone"] == \
        ["tolerated", "deferred"]
