"""Out-of-band changes to an adopted VM, tolerated: OpenStack's records follow.

A scratch legacy guest of this module's own, ``lab-tol1`` (root and data disk
on the shared Ceph, one NIC, one of two vCPUs online), is adopted, then
changed behind OpenStack's back with plain virsh: a NIC hot-plugged and
unplugged, a disk hot-plugged and unplugged, a vCPU hot-plugged, a live
migration A->B->A, a power-off and power-on, and finally destroy + undefine.
For each, ``reconcile --policy report`` lists the drift and writes nothing,
then ``--policy tolerate`` makes ``openstack server show``, the ports, the
volumes and the flavor follow within one pass (seconds). Nova runs at its
defaults apart from the lab's 20 s power sync; every change but the power
ones leaves the guest undisturbed (same QEMU, same domain id, heartbeat
without a gap) through at least two power-sync periods after the writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_onboard.drivers.libvirt.hostwrite import renamemap
from tests.functional.lab import (
    REPO,
    HeartbeatMonitor,
    ensure_nova_compute_on_a,
    run,
    undisturbed,
    virsh,
)
from tests.functional.test_adoption import (
    SCRATCH_XML,
    _onboard,
    _openstack,
    _rbd,
    _server_or_none,
    _sql,
    _uuid,
    _wait_lease,
)

TOL = "lab-tol1"
MAC = "52:54:00:0b:70:01"
NEW_MAC = "52:54:00:0b:70:02"
SYNC_PERIODS = 45  # seconds: more than two of the lab's 20 s power-sync periods

NIC_XML = """<interface type='network'><mac address='{mac}'/><source network='{network}'/>
<model type='virtio'/></interface>"""
DISK_XML = """<disk type='network' device='disk'><driver name='qemu' type='raw'/>
<auth username='{user}'><secret type='ceph' uuid='{secret}'/></auth>
<source protocol='rbd' name='{image}'><host name='{mon}' port='{port}'/></source>
<target dev='vdc' bus='virtio'/></disk>"""


# -- the scratch guest ---------------------------------------------------------------

def _images(ctx: dict) -> list[str]:
    pool = ctx["lab"]["LAB_CEPH_POOL_LEGACY"]
    return [f"{pool}/{TOL}-{part}" for part in ("root", "data", "hot")]


def _make(ctx: dict) -> None:
    lab = ctx["lab"]
    _remove(ctx)
    root, data, hot = _images(ctx)
    for image in (root, data, hot):
        _rbd(ctx, "create", "--size", "64", image)
    console = Path(lab["LAB_CONSOLE_DIR"]) / f"{TOL}-console.log"
    console.unlink(missing_ok=True)
    xml = ctx["state"] / f"{TOL}.xml"
    # Two vCPUs, one online: 'virsh setvcpus --live 2' is the out-of-band resize.
    xml.write_text(SCRATCH_XML.replace("<vcpu>1</vcpu>", "<vcpu current='1'>2</vcpu>").format(
        name=TOL, state=lab["LAB_STATE_DIR"], root=root, image=data,
        user=lab["LAB_CEPH_USER"], secret=lab["LAB_CEPH_SECRET_UUID"],
        mon=lab["LAB_CEPH_MON_HOST"], port=lab["LAB_CEPH_MON_PORT"], mac=MAC,
        network=lab["LAB_NETWORK"], console=console))
    virsh(lab["LAB_HOST_A_URI"], "define", str(xml))
    virsh(lab["LAB_HOST_A_URI"], "start", TOL)
    ctx["uuid"] = _uuid(lab["LAB_HOST_A_URI"], TOL)
    ctx["console"] = console
    with HeartbeatMonitor(console) as beats:
        beats.wait_for_beats(2, 90)
    _wait_lease(ctx, MAC)


def _remove(ctx: dict) -> None:
    """Domain, RBD images (under Cinder's names too) and rename-map entries."""
    lab = ctx["lab"]
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        for ident in (ctx.get("uuid"), TOL):
            if ident:
                for verb in ("destroy", "undefine"):
                    subprocess.run(["virsh", "-c", lab[key], verb, ident],
                                   capture_output=True, check=False)
    originals = _images(ctx)
    names = list(originals)
    for config_dir in lab["OS_ONBOARD_LIBVIRT_CONFIG_DIRS"].split(":"):
        path = renamemap.map_path(config_dir)
        entries = renamemap.load(path)
        names += [v for k, v in entries.items() if k in originals]
        renamemap.remove(path, [k for k in entries if k in originals])
    for name in dict.fromkeys(names):
        for _ in range(45):  # a watch of a destroyed QEMU expires after 30 s
            if _rbd(ctx, "info", name, check=False).returncode != 0:
                break
            if _rbd(ctx, "rm", "--no-progress", name, check=False).returncode == 0:
                break
            time.sleep(1)


@pytest.fixture(scope="module")
def ctx(lab, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("toleration")
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db",
           "OS_ONBOARD_INSTANCES_PATH": lab["LAB_NOVA_INSTANCES_PATH"], "OS_CLOUD": "lab-admin"}
    context = {"lab": lab, "env": env, "state": state}
    ensure_nova_compute_on_a(lab)
    dirs = lab["OS_ONBOARD_LIBVIRT_CONFIG_DIRS"].split(":")
    _onboard(context, "install-hook", *[a for d in dirs for a in ("--libvirt-config-dir", d)])
    run(REPO / "lab" / "lab", "reload-libvirtd")
    _make(context)
    try:
        yield context
    finally:
        if context.get("uuid"):
            _onboard(context, "unmanage", context["uuid"], "--host", lab["LAB_NOVA_HOST_A"],
                     check=False)
        _remove(context)


def _reconcile(ctx: dict, policy: str) -> list[dict]:
    lab = ctx["lab"]
    out = _onboard(ctx, "reconcile", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"], "--policy",
                   policy, "--mapping", str(REPO / "lab" / "mapping.yaml"), "-f", "json").stdout
    # "resolved": a drift queued by an earlier failed write (e.g. the start Nova
    # stopped) that the hypervisors no longer show - queue housekeeping, no drift.
    return [r for r in json.loads(out) if r["UUID"] == ctx["uuid"] and r["Action"] != "resolved"]


def _kinds(rows: list[dict]) -> dict[str, str]:
    return {r["Kind"]: r["Action"] for r in rows}


def _where(ctx: dict) -> str:
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        result = run("virsh", "-c", ctx["lab"][key], "--readonly", "domstate", TOL, check=False)
        if result.returncode == 0 and result.stdout.strip() in ("running", "paused"):
            return ctx["lab"][key]
    return ctx["lab"]["LAB_HOST_A_URI"]


def _server(ctx: dict) -> dict:
    return _openstack(ctx, "server", "show", ctx["uuid"])  # type: ignore[return-value]


def _ports(ctx: dict) -> dict[str, dict]:
    ports = _openstack(ctx, "port", "list", "--device-id", ctx["uuid"], "--long")
    return {p["MAC Address"]: _openstack(ctx, "port", "show", p["ID"])  # type: ignore[misc]
            for p in ports}  # type: ignore[union-attr]


def _volumes(ctx: dict) -> dict[str, dict]:
    """Attached volumes of the scratch guest by device."""
    out = {}
    for volume in _openstack(ctx, "volume", "list", "--all-projects", "--long"):  # type: ignore
        if volume["Name"].startswith(f"{TOL}-"):
            detail = _openstack(ctx, "volume", "show", volume["ID"])
            for attachment in detail["attachments"]:  # type: ignore[index]
                if attachment["server_id"] == ctx["uuid"]:
                    out[attachment["device"]] = {**detail, "attachment": attachment}
    return out


def _nova_macs(ctx: dict) -> tuple[set[str], set[str]]:
    """MACs of Nova's virtual interfaces and of its network info cache."""
    uuid = ctx["uuid"]
    vifs = {r[0] for r in _sql("SELECT address FROM nova.virtual_interfaces WHERE "
                               f"instance_uuid = '{uuid}' AND deleted = 0")}
    [[cache]] = _sql(f"SELECT network_info FROM nova.instance_info_caches WHERE "
                     f"instance_uuid = '{uuid}'")
    return vifs, {v["address"] for v in json.loads(cache)}


def _guest(ctx: dict) -> list[tuple[str, str]]:
    return [(_where(ctx), TOL)]


def _console(ctx: dict):
    return lambda _name: ctx["console"]


# -- the tests -----------------------------------------------------------------------

def test_a_new_vm_is_reported_not_adopted_then_adopted(ctx):
    lab = ctx["lab"]
    rows = json.loads(_onboard(ctx, "drift", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"],
                               "-f", "json").stdout)
    assert [(r["Kind"], r["Action"]) for r in rows if r["UUID"] == ctx["uuid"]] == [
        ("not-adopted", "reported")], rows
    with undisturbed(_guest(ctx), _console(ctx)):
        _onboard(ctx, "discover", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"])
        _onboard(ctx, "plan", "--mapping", str(REPO / "lab" / "mapping.yaml"), "--vm", TOL)
        outcomes = json.loads(_onboard(ctx, "apply", "-f", "json").stdout)
        assert [o["Status"] for o in outcomes] == ["adopted"], outcomes
        assert _reconcile(ctx, "tolerate") == []  # in sync
    assert _server(ctx)["status"] == "ACTIVE"
    # Witness of the hot-plug and resize tests below, checked after two power-sync
    # periods by test_the_guest_ran_undisturbed_through_two_power_sync_periods.
    ctx["witness"] = undisturbed(_guest(ctx), _console(ctx))
    ctx["witness"].__enter__()


def test_nic_hotplug_and_unplug(ctx):
    lab, uri = ctx["lab"], _where(ctx)
    xml = ctx["state"] / "nic.xml"
    xml.write_text(NIC_XML.format(mac=NEW_MAC, network=lab["LAB_NETWORK"]))
    virsh(uri, "attach-device", TOL, str(xml), "--live")
    assert _kinds(_reconcile(ctx, "report")) == {"nic-added": "reported"}
    assert NEW_MAC not in _ports(ctx)  # report wrote nothing
    assert _kinds(_reconcile(ctx, "tolerate")) == {"nic-added": "tolerated"}
    port = _ports(ctx)[NEW_MAC]
    assert (port["device_owner"], port["binding_host_id"], port["binding_vif_type"]) == (
        "compute:nova", lab["LAB_NOVA_HOST_A"], "bridge"), port
    assert _nova_macs(ctx) == ({MAC, NEW_MAC}, {MAC, NEW_MAC})
    assert _reconcile(ctx, "tolerate") == []

    virsh(uri, "detach-device", TOL, str(xml), "--live")
    deadline = time.monotonic() + 30
    while NEW_MAC in virsh(uri, "--readonly", "domiflist", TOL):
        assert time.monotonic() < deadline, "the guest did not release the NIC"
        time.sleep(0.5)
    assert _kinds(_reconcile(ctx, "report")) == {"nic-removed": "reported"}
    assert NEW_MAC in _ports(ctx)
    assert _kinds(_reconcile(ctx, "tolerate")) == {"nic-removed": "tolerated"}
    assert set(_ports(ctx)) == {MAC}
    assert _openstack(ctx, "port", "list", "--mac-address", NEW_MAC) == []
    assert _nova_macs(ctx) == ({MAC}, {MAC})
    assert MAC in virsh(uri, "--readonly", "domiflist", TOL)


def test_disk_hotplug_and_unplug(ctx):
    lab, uri = ctx["lab"], _where(ctx)
    xml = ctx["state"] / "disk.xml"
    xml.write_text(DISK_XML.format(
        image=_images(ctx)[2], user=lab["LAB_CEPH_USER"], secret=lab["LAB_CEPH_SECRET_UUID"],
        mon=lab["LAB_CEPH_MON_HOST"], port=lab["LAB_CEPH_MON_PORT"]))
    virsh(uri, "attach-device", TOL, str(xml), "--live")
    assert _kinds(_reconcile(ctx, "report")) == {"disk-added": "reported"}
    assert "/dev/vdc" not in _volumes(ctx)
    assert _kinds(_reconcile(ctx, "tolerate")) == {"disk-added": "tolerated"}
    volume = _volumes(ctx)["/dev/vdc"]
    assert volume["status"] == "in-use" and volume["name"] == f"{TOL}-vdc", volume
    assert _reconcile(ctx, "tolerate") == []

    # Unplugged out of band: only the records let go (no attachment delete).
    virsh(uri, "detach-device", TOL, str(xml), "--live")
    deadline = time.monotonic() + 30
    while "vdc" in virsh(uri, "--readonly", "domblklist", TOL):
        assert time.monotonic() < deadline, "the guest did not release the disk"
        time.sleep(0.5)
    assert _kinds(_reconcile(ctx, "report")) == {"disk-removed": "reported"}
    assert "/dev/vdc" in _volumes(ctx)
    assert _kinds(_reconcile(ctx, "tolerate")) == {"disk-removed": "tolerated"}
    assert set(_volumes(ctx)) == {"/dev/vda", "/dev/vdb"}
    assert _openstack(ctx, "volume", "show", volume["id"])["status"] == "available"


def test_vcpu_hotplug_resizes_the_flavor(ctx):
    uri = _where(ctx)
    before = _server(ctx)["flavor"]
    # --live --config: a lasting resize (a --live one alone would be undone by
    # the next cold start, and a shut-off guest then shows its 1-vCPU config)
    virsh(uri, "setvcpus", TOL, "2", "--live", "--config")
    rows = _reconcile(ctx, "report")
    assert _kinds(rows) == {"resized": "reported"}, rows
    assert _server(ctx)["flavor"] == before
    assert _kinds(_reconcile(ctx, "tolerate")) == {"resized": "tolerated"}
    flavor = _server(ctx)["flavor"]
    assert (flavor["vcpus"], flavor["ram"]) == (2, before["ram"]), flavor
    allocation = _openstack(ctx, "resource", "provider", "allocation", "show", ctx["uuid"])
    assert allocation[0]["resources"]["VCPU"] == 2, allocation  # type: ignore[index]


def test_the_guest_ran_undisturbed_through_two_power_sync_periods(ctx):
    """After the hot-plugs and the resize: Nova's power sync ran twice over the
    records os-onboard wrote, the records stay in sync, and the guest never
    noticed (same QEMU, same domain id, heartbeat without a gap since adoption)."""
    time.sleep(SYNC_PERIODS)
    assert _reconcile(ctx, "tolerate") == []
    server = _server(ctx)
    assert (server["status"], server["flavor"]["vcpus"]) == ("ACTIVE", 2)
    ctx.pop("witness").__exit__(None, None, None)  # asserts undisturbed


def test_live_migration_moves_the_volume_connectors(ctx):
    lab = ctx["lab"]
    with HeartbeatMonitor(ctx["console"]) as beats:
        run(REPO / "lab" / "lab", "migrate", TOL, "--to", "b")
        assert _kinds(_reconcile(ctx, "report")) == {"host-changed": "reported"}
        assert {v["attachment"]["host_name"] for v in _volumes(ctx).values()} == {
            lab["LAB_NOVA_HOST_A"]}
        assert _kinds(_reconcile(ctx, "tolerate")) == {"host-changed": "tolerated"}
        server = _server(ctx)
        assert (server["OS-EXT-SRV-ATTR:host"], server["status"]) == (lab["LAB_NOVA_HOST_B"],
                                                                      "ACTIVE")
        assert {v["attachment"]["host_name"] for v in _volumes(ctx).values()} == {
            lab["LAB_NOVA_HOST_B"]}
        run(REPO / "lab" / "lab", "migrate", TOL, "--to", "a")
        assert _kinds(_reconcile(ctx, "tolerate")) == {"host-changed": "tolerated"}
        assert {v["attachment"]["host_name"] for v in _volumes(ctx).values()} == {
            lab["LAB_NOVA_HOST_A"]}
    beats.assert_no_gap(max_interval=5.0)


def test_power_off_and_on_out_of_band(ctx):
    """The test powers the guest off and on itself (a new QEMU is the point).

    Off: os-onboard defers (a quick restart must not meet a STOPPED record),
    Nova's own delayed STOPPED event or os-onboard after the grace records it.
    On, while Nova says SHUTOFF: under Nova's defaults its lifecycle handler
    reacts to the STARTED event within milliseconds (force_stop), before any
    pass; os-onboard's write then fails on Nova's task_state instead of racing
    it (docs/nova-out-of-band.md §4: [workarounds]
    handle_virt_lifecycle_events=False on such hosts). Either way, after two
    power-sync periods record and guest agree, and os-onboard wrote nothing
    while Nova was acting.
    """
    uri = _where(ctx)
    virsh(uri, "destroy", TOL)
    off_at = time.monotonic()
    rows = _reconcile(ctx, "tolerate")
    assert _kinds(rows) == {"power-changed": "deferred"}, rows
    while time.monotonic() - off_at < 22:
        time.sleep(1)
    rows = _reconcile(ctx, "tolerate")
    assert _kinds(rows) in ({"power-changed": "tolerated"}, {}), rows  # {}: Nova was first
    assert _server(ctx)["status"] == "SHUTOFF"

    virsh(uri, "start", TOL)
    started = time.monotonic()
    rows = _reconcile(ctx, "tolerate")
    took = time.monotonic() - started
    timeline = []
    while time.monotonic() - started < SYNC_PERIODS:
        server = _server(ctx)
        timeline.append((round(time.monotonic() - started, 1),
                         virsh(uri, "--readonly", "domstate", TOL).strip(),
                         server["status"], server.get("OS-EXT-STS:task_state")))
        time.sleep(2)
    print(f"out-of-band start, Nova recording SHUTOFF; reconcile after {took:.1f} s: "
          f"{[(r['Action'], r['Detail']) for r in rows]}; then (s, libvirt, Nova, task): "
          f"{timeline}")
    if _kinds(rows) == {"power-changed": "failed"}:  # Nova was already stopping it
        assert "task_state" in rows[0]["Detail"] or "UnexpectedTaskState" in rows[0]["Detail"]
    else:
        assert _kinds(rows) in ({"power-changed": "tolerated"}, {}), rows
    final = {"running": "ACTIVE", "shut off": "SHUTOFF"}
    assert final.get(timeline[-1][1]) == timeline[-1][2], timeline  # record == guest


def _restart_nova_compute_a() -> None:
    lab_cli = REPO / "lab" / "lab"
    run(lab_cli, "os-service", "stop", "nova-compute-a")
    run(lab_cli, "os-service", "start", "nova-compute-a")  # waits until it reports


def test_out_of_band_start_is_tolerated_with_lifecycle_events_off(ctx):
    """The out-of-band start that Nova's defaults undo (previous test), tolerated.

    docs/nova-out-of-band.md §4: on hosts where the old tools start adopted
    VMs, ``[workarounds] handle_virt_lifecycle_events=False`` stops Nova from
    force-stopping a STARTED guest it records as stopped; what is left is
    the periodic power sync (the lab's 20 s; 600 s by default), which
    os-onboard must beat by recording the start. This test sets exactly that
    one option on host A's nova-compute (plus debug logging, to see the sync
    run), starts the guest with plain virsh right after a power sync, runs
    one reconcile pass, and then proves the guest runs on undisturbed - same
    QEMU, same domain id, heartbeat without a gap - through two more syncs.
    """
    lab = ctx["lab"]
    uri = lab["LAB_HOST_A_URI"]
    if virsh(uri, "--readonly", "domstate", TOL).strip() != "shut off":
        virsh(uri, "destroy", TOL)
    deadline = time.monotonic() + 90
    while _server(ctx)["status"] != "SHUTOFF":  # recorded after the shutdown grace
        assert time.monotonic() < deadline, _server(ctx)
        _reconcile(ctx, "tolerate")
        time.sleep(3)

    override = Path(lab["LAB_OPENSTACK_ETC"]) / "nova" / "nova-compute-a.d" / "90-test.conf"
    override.write_text("[DEFAULT]\ndebug = true\n"
                        "[workarounds]\nhandle_virt_lifecycle_events = false\n")
    log = Path(lab["LAB_OPENSTACK_LOG_DIR"]) / "nova-compute-a.log"
    try:
        _restart_nova_compute_a()
        seen = log.stat().st_size
        deadline = time.monotonic() + 60
        while b"ComputeManager._sync_power_states" not in log.read_bytes()[seen:]:
            assert time.monotonic() < deadline, "no power sync in 60 s"
            time.sleep(0.2)
        # The line is logged as the sync *starts*; it reads each domain's state
        # a moment later (measured: a guest started at once was seen "paused",
        # i.e. QEMU starting, and stopped). Let it finish: ~17 s to the next.
        time.sleep(3)
        virsh(uri, "start", TOL)
        started = time.monotonic()
        rows = _reconcile(ctx, "tolerate")
        took = time.monotonic() - started
        assert _kinds(rows) == {"power-changed": "tolerated"}, rows
        assert _server(ctx)["status"] == "ACTIVE"
        print(f"out-of-band start recorded ACTIVE {took:.1f} s after virsh start")
        with undisturbed(_guest(ctx), _console(ctx)):
            time.sleep(SYNC_PERIODS)
        server = _server(ctx)
        assert (server["status"], server.get("OS-EXT-STS:task_state")) == ("ACTIVE", None)
        assert virsh(uri, "--readonly", "domstate", TOL).strip() == "running"
        syncs = log.read_bytes()[seen:].count(b"ComputeManager._sync_power_states")
        assert syncs >= 3, f"only {syncs} power syncs ran"
    finally:
        override.unlink(missing_ok=True)
        _restart_nova_compute_a()


def test_destroy_and_undefine_is_vm_gone_and_the_records_are_purged(ctx):
    uri, uuid = _where(ctx), ctx["uuid"]
    run("virsh", "-c", uri, "destroy", TOL, check=False)  # running or not
    virsh(uri, "undefine", TOL)
    assert _kinds(_reconcile(ctx, "report")) == {"vm-gone": "reported"}
    assert _server_or_none(ctx, uuid) is not None  # report wrote nothing
    assert _kinds(_reconcile(ctx, "tolerate")) == {"vm-gone": "tolerated"}
    assert _server_or_none(ctx, uuid) is None
    assert _openstack(ctx, "port", "list", "--device-id", uuid) == []
    assert not [v for v in _openstack(ctx, "volume", "list", "--all-projects")  # type: ignore
                if v["Name"].startswith(f"{TOL}-")]
    # purged, not soft-deleted: nothing for running_deleted_instance_action=reap
    assert _sql(f"SELECT count(*) FROM nova.instances WHERE uuid = '{uuid}'") == [["0"]]
    assert _reconcile(ctx, "tolerate") == []
