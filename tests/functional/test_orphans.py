"""os-onboard's orphans on the lab's real OpenStack: ``plan`` names them, ``cleanup`` removes them.

An abandoned apply, simulated the way apply writes (a Nova delete of an
adopted lab guest is not an option: Nova would stop the guest): for a UUID
Nova never got, a port with lab-vm1's MAC and IP and os-onboard's
description, a Cinder volume managed from a scratch RBD image with
os-onboard's metadata and an attachment to that UUID (in-use), and a
Placement allocation on host A's compute node. The port blocks lab-vm1's
plan; ``plan`` says it is an orphan and names ``os-onboard cleanup``;
``cleanup --dry-run`` lists the three and removes nothing; ``cleanup``
releases them (the volume marked detached and unmanaged: the RBD image
stays, under Cinder's name); the plan is no longer blocked. lab-vm1 is
not touched throughout (same QEMU, heartbeat without a gap).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_onboard.apply.steps import DISK_KEY, PORT_DESCRIPTION
from os_onboard.cloud.openstack import OpenStackCloud
from os_onboard.plan.model import MARKER_KEY
from tests.functional.lab import REPO, ensure_nova_compute_on_a, run, undisturbed

CLI = Path(sys.executable).parent / "os-onboard"
GUEST = "lab-vm1"
IMAGE = "lab-orph1-data"


def _onboard(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(CLI, *args, env=ctx["env"], check=check)


def _rbd(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("rbd", "-c", ctx["lab"]["LAB_CEPH_CONF"], *args, check=check)


def _plan_blocked(ctx: dict) -> list[str]:
    out = _onboard(ctx, "plan", "--mapping", str(REPO / "lab" / "mapping.yaml"), "--vm", GUEST,
                   "-f", "json").stdout
    [vm] = json.loads(out)["vms"]
    return vm["blocked"]


def _cleanup(ctx: dict, *args: str) -> list[dict]:
    out = _onboard(ctx, "cleanup", "--older-than", "0", "-f", "json", *args).stdout
    return [row for row in json.loads(out) if row["ID"] in ctx["ours"]]


@pytest.fixture(scope="module")
def ctx(lab, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("orphans")
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db",
           "OS_CLOUD": "lab-admin"}
    context = {"lab": lab, "env": env, "ours": set(), "ports": [],
               "cloud": OpenStackCloud("lab-admin"),
               "gone": str(uuidlib.uuid4())}
    ensure_nova_compute_on_a(lab)
    _onboard(context, "discover", lab["LAB_HOST_A_URI"], "-f", "value", "-c", "Name")
    yield context
    cloud = context["cloud"]
    for port_id in context["ports"]:
        cloud.delete_port(port_id)
    cloud.delete_allocations(context["gone"])
    volume_id = context.get("volume_id")
    if volume_id and cloud.volume(volume_id) is not None:
        cloud.reset_volume_detached(volume_id)
        cloud.unmanage_volume(volume_id)
    pool = lab["LAB_CEPH_POOL_LEGACY"]
    for name in (IMAGE, f"volume-{volume_id}" if volume_id else ""):
        if name:
            _rbd(context, "rm", "--no-progress", f"{pool}/{name}", check=False)


def _inventory_vm(ctx: dict) -> dict:
    out = _onboard(ctx, "inventory", "show", "-f", "json").stdout
    return next(vm for vm in json.loads(out) if vm["Name"] == GUEST)


def test_an_abandoned_apply_is_named_by_plan_and_removed_by_cleanup(ctx, lab, console_log):
    cloud: OpenStackCloud = ctx["cloud"]
    gone = ctx["gone"]
    vm = _inventory_vm(ctx)
    nic = vm["NICs"][0]
    mac = nic["mac"].lower()
    ip = next(a["address"] for a in nic["addresses"] if a["family"] == "ipv4")
    assert not _plan_blocked(ctx), "lab-vm1 must be plannable before the test (lab/lab reset)"

    with undisturbed([(lab["LAB_HOST_A_URI"], GUEST)], console_log):
        # -- what an apply abandoned after its ports and volumes leaves ----------------
        network = next(n for n in cloud.networks() if n["name"] == "onboard-lab")
        subnet = next(s for s in cloud.subnets() if s["name"] == "onboard-lab-v4")
        project = cloud.project_id("demo")
        port = cloud.create_port(network_id=network["id"], mac_address=mac,
                                 fixed_ips=[{"subnet_id": subnet["id"], "ip_address": ip}],
                                 device_id=gone, device_owner="compute:nova",
                                 project_id=project, name=f"{GUEST}-{mac[-8:]}",
                                 description=PORT_DESCRIPTION.format(name=GUEST))
        ctx["ours"].add(port["id"])
        ctx["ports"].append(port["id"])
        pool = lab["LAB_CEPH_POOL_LEGACY"]
        _rbd(ctx, "create", "--size", "8", f"{pool}/{IMAGE}")
        volume = cloud.manage_volume(lab["LAB_CINDER_BACKEND_HOST"], {"source-name": IMAGE},
                                     name=f"{GUEST}-vdz",
                                     metadata={MARKER_KEY: "host=functional-test",
                                               DISK_KEY: f"{gone}/vdz"})
        ctx["volume_id"] = volume["id"]
        ctx["ours"].add(volume["id"])
        cloud.wait_volume(volume["id"], ("available",))
        attachment = cloud.create_attachment(volume["id"], gone, {
            "host": lab["LAB_NOVA_HOST_A"], "ip": "127.0.0.1", "platform": "x86_64",
            "os_type": "linux", "multipath": False, "mountpoint": "/dev/vdz"})
        cloud.complete_attachment(attachment["id"])
        assert cloud.volume(volume["id"])["status"] == "in-use"
        node = next(h for h in cloud.hypervisors() if h["service_host"] == lab["LAB_NOVA_HOST_A"])
        cloud.put_allocations(gone, node["uuid"], {"VCPU": 1, "MEMORY_MB": 96}, project,
                              cloud.current_ids()[1], None)
        ctx["ours"].add(gone)

        # -- plan names the orphan and what removes it -----------------------------------
        blocked = _plan_blocked(ctx)
        assert any(f"MAC {mac} is already used by Neutron port {port['id']}" in b
                   and "orphan of os-onboard" in b and "'os-onboard cleanup'" in b
                   for b in blocked), blocked

        # -- cleanup: the default grace leaves records this young alone ------------------
        young = json.loads(_onboard(ctx, "cleanup", "--dry-run", "-f", "json").stdout)
        assert not [r for r in young if r["ID"] in ctx["ours"] and r["Kind"] != "allocation"]

        listed = _cleanup(ctx, "--dry-run")
        assert sorted((r["Kind"], r["ID"], r["Status"]) for r in listed) == sorted([
            ("port", port["id"], "orphan"), ("volume", volume["id"], "orphan"),
            ("allocation", gone, "orphan")])
        assert cloud.ports(mac_address=mac) and cloud.volume(volume["id"]) is not None

        removed = _cleanup(ctx)
        assert {(r["Kind"], r["Status"]) for r in removed} == {
            ("port", "removed"), ("volume", "removed"), ("allocation", "removed")}, removed
        assert cloud.ports(mac_address=mac) == []
        assert cloud.volume(volume["id"]) is None
        assert cloud.allocations(gone).get("allocations") == {}
        # unmanaged, never deleted: the backend keeps the image under Cinder's name
        assert _rbd(ctx, "info", f"{pool}/volume-{volume['id']}", check=False).returncode == 0
        assert _cleanup(ctx) == []  # a second run finds nothing of ours

        assert not _plan_blocked(ctx)
