"""Adoption end to end on the lab: plan, apply, Nova manages the VMs, unmanage.

Nova is at its defaults (``running_deleted_instance_action=reap`` included).
The lab's legacy guests (lab-vm1: qcow2 root + raw SCSI data file; lab-vm2:
qcow2 root + RBD data disk, two NICs; lab-vm3: shut off) are adopted and
released without being disturbed: same QEMU PID, same domain id, heartbeat
without a gap. What by definition replaces the QEMU process - Nova's stop and
start (a rebuild from its records), a live migration - is done to a scratch
legacy guest of this module's own, ``lab-ad1`` (qcow2 root copy + RBD data
disk), so the lab's guests keep their identity for the other tests.

Faults: a duplicate MAC (blocked in the plan, nothing written), ``kill -9``
in the middle of ``apply`` (the rerun converges without duplicates),
Placement down in the middle of ``apply`` (clear error, resumable), and an
unmanage then re-adopt cycle (lab-vm2, whose RBD image Cinder renamed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_onboard.drivers.libvirt.hostwrite import persistent, renamemap
from tests.functional.lab import (
    REPO,
    HeartbeatMonitor,
    ensure_nova_compute_on_a,
    qemu_pid,
    run,
    undisturbed,
    virsh,
)

CLI = Path(sys.executable).parent / "os-onboard"
SCRATCH = "lab-ad1"
SCRATCH_MAC = "52:54:00:0b:ad:01"
MARKER = "os-onboard:adopted"

SCRATCH_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{state}/guest/vmlinux</kernel>
    <initrd>{state}/guest/initramfs.cpio</initrd>
    <cmdline>console=ttyS0 panic=-1 edd=off quiet lab.name={name}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <auth username='{user}'><secret type='ceph' uuid='{secret}'/></auth>
      <source protocol='rbd' name='{root}'><host name='{mon}' port='{port}'/></source>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <auth username='{user}'><secret type='ceph' uuid='{secret}'/></auth>
      <source protocol='rbd' name='{image}'><host name='{mon}' port='{port}'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='{mac}'/>
      <source network='{network}'/>
      <model type='virtio'/>
      <driver name='qemu'/>
    </interface>
    <serial type='pty'><log file='{console}' append='on'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
"""


# -- helpers --------------------------------------------------------------------

def _onboard(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(CLI, *args, env=ctx["env"], check=check)


def _openstack(ctx: dict, *args: str) -> object:
    """Run an openstack command; JSON output for the commands that print something."""
    printing = any(verb in args[:4] for verb in ("show", "list", "create"))
    out = run(Path(ctx["lab"]["LAB_OPENSTACK_BIN"]) / "openstack", *args,
               *(("-f", "json") if printing else ()), env=ctx["env"]).stdout
    return json.loads(out) if out.strip() else None


def _sql(query: str) -> list[list[str]]:
    out = run("mariadb", "-u", "root", "-N", "-B", "-e", query).stdout
    return [line.split("\t") for line in out.splitlines()]


def _plan(ctx: dict, *vms: str) -> dict:
    args = ["plan", "--mapping", str(REPO / "lab" / "mapping.yaml"), "-f", "json"]
    for vm in vms:
        args += ["--vm", vm]
    return json.loads(_onboard(ctx, *args).stdout)


def _apply(ctx: dict, check: bool = True) -> list[dict]:
    result = _onboard(ctx, "apply", "-f", "json", check=check)
    return json.loads(result.stdout) if result.stdout.strip() else []


def _discover(ctx: dict) -> None:
    lab = ctx["lab"]
    _onboard(ctx, "discover", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"], "-f", "value",
             "-c", "Name")


def _server(ctx: dict, uuid: str) -> dict:
    return _openstack(ctx, "server", "show", uuid)  # type: ignore[return-value]


def _wait_status(ctx: dict, uuid: str, status: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        server = _server(ctx, uuid)
        if server["status"] == status and not server.get("OS-EXT-STS:task_state"):
            return server
        assert server["status"] != "ERROR", server.get("fault")
        assert time.monotonic() < deadline, f"{uuid} is {server['status']}, not {status}"
        time.sleep(2)


def _uuid(host_uri: str, name: str) -> str:
    return virsh(host_uri, "--readonly", "domuuid", name).strip()


def _where(ctx: dict, uuid: str) -> tuple[str, str]:
    """(host uri, domain name) of the domain with this UUID, wherever it is now."""
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        uri = ctx["lab"][key]
        out = subprocess.run(["virsh", "-c", uri, "--readonly", "domname", uuid],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return uri, out.stdout.strip()
    raise AssertionError(f"no lab host has domain {uuid}")


def _where_any(ctx: dict, uuid: str) -> tuple[str | None, str | None]:
    """Like _where, but (None, None) while no host has the domain."""
    try:
        return _where(ctx, uuid)
    except AssertionError:
        return None, None


def _journal(ctx: dict) -> dict[str, int]:
    path = ctx["env"]["OS_ONBOARD_STATE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT status, count(*) FROM apply_steps GROUP BY status"))


def _ports_with_mac(ctx: dict, mac: str) -> list[dict]:
    return _openstack(ctx, "port", "list", "--mac-address", mac)  # type: ignore[return-value]


def _unmanage_all(ctx: dict, stale: bool = False) -> None:
    """Release the lab guests (and, with ``stale``, servers of the same names
    whose domains are gone: ``lab down`` + ``up`` defines the guests anew, with
    new UUIDs, and a demo's servers would keep holding their MACs)."""
    uuids = [u for u in ctx["uuids"].values() if u]
    if stale:
        servers = _openstack(ctx, "server", "list", "--all-projects")
        uuids += [s["ID"] for s in servers  # type: ignore[union-attr]
                  if s["Name"] in ctx["uuids"] and s["ID"] not in uuids]
    result = _onboard(ctx, "unmanage", *uuids, "--host", ctx["lab"]["LAB_NOVA_HOST_A"],
                      "-f", "json")
    for row in json.loads(result.stdout):
        assert row["Status"] == "released", row


# -- the module's lab context ----------------------------------------------------

@pytest.fixture(scope="module")
def ctx(lab, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("adoption")
    env = dict(os.environ)
    env.update({k: v for k, v in lab.items()})
    env.update(OS_ONBOARD_STATE_URL=f"sqlite:///{state}/state.db",
               OS_ONBOARD_INSTANCES_PATH=lab["LAB_NOVA_INSTANCES_PATH"],
               OS_CLOUD="lab-admin")
    context = {"lab": lab, "env": env, "state": state, "uuids": {}}
    ensure_nova_compute_on_a(lab)  # on a fresh lab, host A's nova-compute waits for this
    config_dirs = lab["OS_ONBOARD_LIBVIRT_CONFIG_DIRS"].split(":")
    _onboard(context, "install-hook", *[a for d in config_dirs
                                         for a in ("--libvirt-config-dir", d)])
    run(REPO / "lab" / "lab", "reload-libvirtd")
    _make_scratch(context)
    for name in lab["LAB_GUESTS"].split():
        context["uuids"][name] = _uuid(_lab_host(context, name), name)
    _unmanage_all(context, stale=True)  # a clean slate, whatever an earlier run left
    _restore_rbd_names(context)
    yield context
    with contextlib.suppress(AssertionError):
        _unmanage_all(context)
    _restore_rbd_names(context)
    _remove_scratch(context)


def _restore_rbd_names(ctx: dict, disks: list[str] | None = None) -> None:
    """Give the lab guests' RBD images back the names the lab gave them.

    After unmanage an image keeps the name Cinder gave it (volume-<id>), and
    the rename map plus the persistent definition follow it. The other tests
    (and ``lab up``) know the lab's names, so undo it here, the way Cinder
    did it: ``rbd rename`` under the running guest, then the persistent
    definition and the maps. Test housekeeping, not an os-onboard feature.

    :param disks: ``guest=pool/image`` items (default: the lab guests' RBD disks)
    """
    lab = ctx["lab"]
    dirs = lab["OS_ONBOARD_LIBVIRT_CONFIG_DIRS"].split(":")
    maps = {d: renamemap.load(renamemap.map_path(d)) for d in dirs}
    for item in lab["LAB_CEPH_RBD_DISKS"].split() if disks is None else disks:
        guest, original = item.split("=", 1)
        current = next((m[original] for m in maps.values() if original in m), None)
        if current is None or current == original:
            continue
        if _rbd(ctx, "info", original, check=False).returncode == 0:
            # `lab down` + `up` made the guest anew, on a new image: the renamed
            # one belongs to no guest any more (rm is refused if something has it open)
            _rbd(ctx, "rm", "--no-progress", current, check=False)
        else:
            _rbd(ctx, "rename", current, original)
            uri = _lab_host(ctx, guest)
            persistent.redefine_with_renames(uri, _uuid(uri, guest), {current: original})
        for d, entries in maps.items():
            renamemap.remove(renamemap.map_path(d),
                             [old for old, new in entries.items() if new == current])
    if disks is None:
        _restart_guests_on_renamed_images(ctx)


def _restart_guests_on_renamed_images(ctx: dict) -> None:
    """Boot a lab guest again when its QEMU opened the image under Cinder's name.

    That happens when the lab last started the guest from a definition
    os-onboard had rewritten (``make demo`` left it adopted, then the machine
    restarted and ``lab up`` booted it): the rename back above leaves that
    QEMU's own record of the name behind, and a later discovery would plan a
    Cinder manage of an image that no longer exists under that name (the CI
    failure of 2026-12-06). Test housekeeping before any undisturbed window.
    """
    lab = ctx["lab"]
    for item in lab["LAB_CEPH_RBD_DISKS"].split():
        guest, original = item.split("=", 1)
        uri = _lab_host(ctx, guest)
        if virsh(uri, "domstate", guest).strip() != "running":
            continue
        live = _rbd_sources(virsh(uri, "--readonly", "dumpxml", guest))
        if original in live:
            continue
        stale = {name: original for name in live if name.split("/")[-1].startswith("volume-")}
        assert len(stale) == 1, f"{guest}: runs on {live}, none of them the lab's {original}"
        if _rbd(ctx, "info", original, check=False).returncode != 0:
            _rbd(ctx, "rename", *stale, original)  # no rename-map entry was left to say so
        persistent.redefine_with_renames(uri, _uuid(uri, guest), stale)
        virsh(uri, "destroy", guest)
        run(REPO / "lab" / "lab", "up", timeout=600)  # boots it, waits for heartbeat + lease
        assert original in _rbd_sources(virsh(_lab_host(ctx, guest), "--readonly", "dumpxml",
                                              guest))


def _rbd_sources(xml: str) -> list[str]:
    return [s.get("name", "") for s in ET.fromstring(xml).iterfind("devices/disk/source")
            if s.get("protocol") == "rbd"]


def _lab_host(ctx: dict, name: str) -> str:
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        uri = ctx["lab"][key]
        if subprocess.run(["virsh", "-c", uri, "--readonly", "dominfo", name],
                          capture_output=True, check=False).returncode == 0:
            return uri
    raise AssertionError(f"{name} is on no lab host")


def _rbd(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("rbd", "-c", ctx["lab"]["LAB_CEPH_CONF"], *args, check=check)


def _make_scratch(ctx: dict) -> None:
    lab = ctx["lab"]
    _remove_scratch(ctx)
    # Both disks on the shared Ceph: libvirt refuses a (non-block) live
    # migration of a file disk on a local filesystem, so only a VM whose disks
    # are all on shared storage can be live-migrated by Nova between hosts.
    root = f"{lab['LAB_CEPH_POOL_LEGACY']}/{SCRATCH}-root"
    image = f"{lab['LAB_CEPH_POOL_LEGACY']}/{SCRATCH}-data"
    _rbd(ctx, "create", "--size", "64", root)
    _rbd(ctx, "create", "--size", "64", image)
    console = Path(lab["LAB_CONSOLE_DIR"]) / f"{SCRATCH}-console.log"
    console.unlink(missing_ok=True)
    xml = ctx["state"] / f"{SCRATCH}.xml"
    xml.write_text(SCRATCH_XML.format(
        name=SCRATCH, state=lab["LAB_STATE_DIR"], root=root, image=image,
        user=lab["LAB_CEPH_USER"], secret=lab["LAB_CEPH_SECRET_UUID"],
        mon=lab["LAB_CEPH_MON_HOST"], port=lab["LAB_CEPH_MON_PORT"], mac=SCRATCH_MAC,
        network=lab["LAB_NETWORK"], console=console))
    virsh(lab["LAB_HOST_A_URI"], "define", str(xml))
    virsh(lab["LAB_HOST_A_URI"], "start", SCRATCH)
    ctx["uuids"][SCRATCH] = _uuid(lab["LAB_HOST_A_URI"], SCRATCH)
    ctx["scratch_console"] = console
    with HeartbeatMonitor(console) as beats:
        beats.wait_for_beats(2, 90)
    _wait_lease(ctx, SCRATCH_MAC)


def _wait_lease(ctx: dict, mac: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while mac not in virsh(ctx["lab"]["LAB_HOST_A_URI"], "--readonly", "net-dhcp-leases",
                           ctx["lab"]["LAB_NETWORK"]):
        assert time.monotonic() < deadline, f"no DHCP lease for {mac}"
        time.sleep(1)


def _remove_scratch(ctx: dict) -> None:
    lab = ctx["lab"]
    uuid = ctx["uuids"].get(SCRATCH)
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        for ident in (uuid, SCRATCH):
            if ident:
                subprocess.run(["virsh", "-c", lab[key], "destroy", ident],
                               capture_output=True, check=False)
                subprocess.run(["virsh", "-c", lab[key], "undefine", ident],
                               capture_output=True, check=False)
    pool = lab["LAB_CEPH_POOL_LEGACY"]
    originals = [f"{pool}/{SCRATCH}-root", f"{pool}/{SCRATCH}-data"]
    names = [o.split("/", 1)[1] for o in originals]
    for config_dir in lab["OS_ONBOARD_LIBVIRT_CONFIG_DIRS"].split(":"):
        path = renamemap.map_path(config_dir)
        entries = renamemap.load(path)
        names += [v.split("/", 1)[1] for k, v in entries.items() if k in originals]
        renamemap.remove(path, [k for k, v in entries.items() if k in originals
                                or any(v == entries.get(o) for o in originals)])
    for name in dict.fromkeys(names):
        for _ in range(45):  # a watch of a destroyed QEMU expires after 30 s
            if _rbd(ctx, "info", f"{pool}/{name}", check=False).returncode != 0:
                break
            if _rbd(ctx, "rm", "--no-progress", f"{pool}/{name}", check=False).returncode == 0:
                break
            time.sleep(1)
    if uuid:
        shutil.rmtree(Path(lab["LAB_NOVA_INSTANCES_PATH"]) / uuid, ignore_errors=True)


def _running(ctx: dict) -> list[tuple[str, str]]:
    names = [*ctx["lab"]["LAB_RUNNING_GUESTS"].split(), SCRATCH]
    return [(_lab_host(ctx, n), n) for n in names]


def _console(ctx: dict):
    lab_console = Path(ctx["lab"]["LAB_CONSOLE_DIR"])
    return lambda name: lab_console / f"{name}-console.log"


# -- the tests ------------------------------------------------------------------

def test_duplicate_mac_is_blocked_and_nothing_is_written(ctx):
    _discover(ctx)
    network = ctx["lab"]["LAB_OPENSTACK_PROVIDER_NETWORK"]
    squatter = _openstack(ctx, "port", "create", "--network", network, "--mac-address",
                          SCRATCH_MAC, "--no-fixed-ip", "squatter")
    try:
        plan = _plan(ctx, SCRATCH)
        [vm] = plan["vms"]
        assert vm["op"] == "!" and vm["steps"] == []
        assert any(f"MAC {SCRATCH_MAC} is already used by Neutron port {squatter['id']}" in r
                   for r in vm["blocked"]), vm["blocked"]
        outcomes = _apply(ctx)
        assert [o["Status"] for o in outcomes] == ["blocked"]
        assert _server_or_none(ctx, ctx["uuids"][SCRATCH]) is None
        assert [p["ID"] for p in _ports_with_mac(ctx, SCRATCH_MAC)] == [squatter["id"]]
    finally:
        _openstack(ctx, "port", "delete", squatter["id"])


def _server_or_none(ctx: dict, uuid: str) -> dict | None:
    result = run(Path(ctx["lab"]["LAB_OPENSTACK_BIN"]) / "openstack", "server", "show", uuid,
                  "-f", "json", env=ctx["env"], check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_an_image_renamed_after_discovery_is_blocked_in_the_plan(ctx):
    """The lab mapping has cross_check: plan asks Cinder's manageable list of the
    pool, so an image that is no longer under the name the domain shows blocks
    its VM at plan time (before, Cinder's manage went to error during apply)."""
    _discover(ctx)
    image = f"{ctx['lab']['LAB_CEPH_POOL_LEGACY']}/{SCRATCH}-data"
    with undisturbed([(ctx["lab"]["LAB_HOST_A_URI"], SCRATCH)], _console(ctx)):
        _rbd(ctx, "rename", image, f"{image}-moved")  # under the running guest, as Cinder does
        try:
            [vm] = _plan(ctx, SCRATCH)["vms"]
            assert vm["op"] == "!" and vm["steps"] == []
            assert any(f"{{'source-name': '{SCRATCH}-data'}}" in r and
                       "manageable list for lab@ceph-legacy#ceph-legacy has no such volume"
                       in r for r in vm["blocked"]), vm["blocked"]
        finally:
            _rbd(ctx, "rename", f"{image}-moved", image)
        [vm] = _plan(ctx, SCRATCH)["vms"]
        assert vm["op"] == "+", vm["blocked"]


def test_a_cinder_manage_that_fails_is_a_clear_error_and_resumable(ctx):
    """Without the cross-check the same rename reaches Cinder: its manage goes
    to error mid-apply; apply says which reference failed, and once the image
    is back the rerun releases that record and adopts. Then the VM is released
    again and its images get their names back (the later tests adopt it anew)."""
    lab = ctx["lab"]
    image = f"{lab['LAB_CEPH_POOL_LEGACY']}/{SCRATCH}-data"
    unchecked = ctx["state"] / "mapping-unchecked.yaml"
    text = (REPO / "lab" / "mapping.yaml").read_text()
    assert "cross_check: true" in text
    unchecked.write_text(text.replace("cross_check: true", "cross_check: false"))
    uuid = ctx["uuids"][SCRATCH]
    with undisturbed([(lab["LAB_HOST_A_URI"], SCRATCH)], _console(ctx)):
        _discover(ctx)
        _rbd(ctx, "rename", image, f"{image}-moved")
        try:
            plan = json.loads(_onboard(ctx, "plan", "--mapping", str(unchecked), "--vm",
                                       SCRATCH, "-f", "json").stdout)
            assert [v["op"] for v in plan["vms"]] == ["+"]
            [outcome] = _apply(ctx, check=False)
            assert outcome["Status"] == "failed", outcome
            assert (f"Cinder could not manage {{'source-name': '{SCRATCH}-data'}} on "
                    "lab@ceph-legacy#ceph-legacy") in outcome["Detail"], outcome
            assert "went to error" in outcome["Detail"]
            [failed] = _marked_volumes(ctx, uuid, "vdb")
            assert failed["status"] == "error"
        finally:
            _rbd(ctx, "rename", f"{image}-moved", image)
        [outcome] = _apply(ctx)  # the same plan, resumed
        assert outcome["Status"] == "adopted", outcome
        [volume] = _marked_volumes(ctx, uuid, "vdb")
        assert volume["id"] != failed["id"] and volume["status"] == "in-use"
        assert _server(ctx, uuid)["status"] == "ACTIVE"
        _unmanage_all(ctx)
    pool = lab["LAB_CEPH_POOL_LEGACY"]
    _restore_rbd_names(ctx, [f"{SCRATCH}={pool}/{SCRATCH}-root", f"{SCRATCH}={image}"])


def _marked_volumes(ctx: dict, uuid: str, target: str) -> list[dict]:
    """Cinder's volumes that os-onboard made for this VM's disk (any status)."""
    volumes = _openstack(ctx, "volume", "list", "--all-projects", "--long")
    return [{"id": v["ID"], "status": v["Status"]} for v in volumes  # type: ignore[union-attr]
            if (v.get("Properties") or {}).get("os-onboard:disk") == f"{uuid}/{target}"]


def test_apply_survives_kill_9_and_adopts_without_disturbing(ctx):
    _discover(ctx)
    plan = _plan(ctx)
    assert {v["name"]: v["op"] for v in plan["vms"]} == {
        **{n: "+" for n in ctx["lab"]["LAB_GUESTS"].split()}, SCRATCH: "+"}
    # Nova live migration before a first rebuild: the lab's legacy guests have
    # no <driver> on their virtio NICs, Nova writes <driver name='qemu'/> under
    # TCG, and libvirt's ABI check would refuse (measured in session 2); the
    # plan says so. The scratch guest has Nova's driver element: no such note.
    limits = {v["name"]: [n for n in v["notes"] if "refuses a Nova live migration" in n]
              for v in plan["vms"]}
    assert limits["lab-vm1"] and "virt_type qemu" in limits["lab-vm1"][0], limits
    assert not limits[SCRATCH], limits
    with undisturbed(_running(ctx), _console(ctx)):
        proc = subprocess.Popen([str(CLI), "apply"], env=ctx["env"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _journal(ctx).get("done", 0) < 6:  # shared records + a few ports/volumes
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "apply made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted = _journal(ctx)
        outcomes = _apply(ctx)  # the rerun resumes from the journal
    assert interrupted.get("done", 0) < sum(len(v["steps"]) for v in plan["vms"]) + len(
        plan["shared"]), "kill -9 came too late to prove anything"
    assert {o["VM"]: o["Status"] for o in outcomes} == {v["name"]: "adopted"
                                                        for v in plan["vms"]}
    for vm in plan["vms"]:  # no duplicates after the kill: one port per MAC, one volume
        for step in vm["steps"]:
            if step["kind"] == "port":
                assert len(_ports_with_mac(ctx, step["params"]["mac"])) == 1, step
    volumes = _openstack(ctx, "volume", "list", "--all-projects", "--long")
    mine = [v for v in volumes if v["Name"] in (f"{SCRATCH}-vda", f"{SCRATCH}-vdb",
                                                "lab-vm2-vdb")]
    assert sorted(v["Name"] for v in mine) == ["lab-ad1-vda", "lab-ad1-vdb", "lab-vm2-vdb"]
    assert all(v["Status"] == "in-use" for v in mine), mine


def test_openstack_shows_the_adopted_vms(ctx):
    lab = ctx["lab"]
    leases = virsh(lab["LAB_HOST_A_URI"], "--readonly", "net-dhcp-leases", lab["LAB_NETWORK"])
    for name, uuid in ctx["uuids"].items():
        server = _server(ctx, uuid)
        assert server["name"] == name
        assert server["OS-EXT-SRV-ATTR:host"] == lab["LAB_NOVA_HOST_A"]
        assert server["flavor"]["name"].startswith("adopted-1c-96m-")
        assert MARKER in server["properties"], server["properties"]
        expected = "SHUTOFF" if name not in [*lab["LAB_RUNNING_GUESTS"].split(), SCRATCH] \
            else "ACTIVE"
        assert server["status"] == expected, server
        ports = _openstack(ctx, "port", "list", "--device-id", uuid, "--long")
        assert ports, f"{name} has no port"
        for port in ports:
            detail = _openstack(ctx, "port", "show", port["ID"])
            assert detail["binding_host_id"] == lab["LAB_NOVA_HOST_A"]
            assert detail["binding_vif_type"] == "bridge" and detail["status"] == "ACTIVE"
            for ip in detail["fixed_ips"]:
                assert ip["ip_address"] in leases  # the guest's own lease
                assert ip["ip_address"] in json.dumps(server["addresses"])
        for port in ports:
            assert port["MAC Address"] in leases or expected == "SHUTOFF"
    verify = run(*lab["LAB_NOVA_MANAGE"].split(), "cell_v2", "verify_instance", "--uuid",
                  ctx["uuids"]["lab-vm2"], check=False)
    assert verify.returncode == 0 and "is in cell" in verify.stdout, verify.stdout
    audit = run(*lab["LAB_NOVA_MANAGE"].split(), "placement", "audit", "--verbose",
                 check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    heal = run(*lab["LAB_NOVA_MANAGE"].split(), "placement", "heal_allocations", "--dry-run",
                "--verbose", check=False)
    assert heal.returncode == 4, heal.stdout  # 4: nothing to do
    for uuid in ctx["uuids"].values():
        assert f"allocation of instance {uuid} is up-to-date" in heal.stdout
    # Cinder's manage path left service_uuid NULL; os-onboard filled it in and
    # gave the volume to the VM's project.
    rows = _sql("SELECT v.display_name, v.service_uuid = s.uuid, v.project_id = i.project_id "
                "FROM cinder.volumes v JOIN cinder.services s ON s.binary = 'cinder-volume' "
                "AND s.deleted = 0 AND v.host LIKE CONCAT(s.host, '#%') "
                "JOIN nova.instances i ON i.uuid = "
                "(SELECT instance_uuid FROM cinder.volume_attachment a WHERE a.volume_id = v.id "
                "AND a.deleted = 0 LIMIT 1) "
                "WHERE v.deleted = 0 AND v.display_name LIKE 'lab-%-vd_'")
    assert sorted(rows) == [["lab-ad1-vda", "1", "1"], ["lab-ad1-vdb", "1", "1"],
                            ["lab-vm2-vdb", "1", "1"]], rows


def test_rerun_is_a_no_op_and_a_new_plan_says_already_adopted(ctx):
    before = _journal(ctx)
    outcomes = _apply(ctx)
    assert {o["Status"] for o in outcomes} == {"adopted"}
    assert all(o["Detail"] == "done in an earlier run" for o in outcomes)
    assert _journal(ctx) == before
    _discover(ctx)
    plan = _plan(ctx)
    assert {v["op"] for v in plan["vms"]} == {"="}


def test_nova_compute_restart_leaves_adopted_guests_alone(ctx):
    lab = ctx["lab"]
    run_dir = Path(lab["LAB_STATE_DIR"]) / "openstack" / "run"
    pidfile = run_dir / "nova-compute-a.pid"
    with undisturbed(_running(ctx), _console(ctx)):
        old = int(pidfile.read_text().split()[0])
        os.kill(old, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{old}").exists():
            assert time.monotonic() < deadline, "nova-compute-a did not stop"
            time.sleep(0.5)
        log = Path(lab["LAB_OPENSTACK_LOG_DIR"]) / "nova-compute-a.log"
        offset = log.stat().st_size
        run(REPO / "lab" / "lab", "compute-start", "a")
        deadline = time.monotonic() + 180
        # init_host done (it plugged the adopted VMs' VIFs and synced their power
        # states); then leave its first periodic tasks time to run over them.
        while "unclaimed instances stuck in BUILDING" not in log.read_text(
                errors="replace")[offset:]:
            assert time.monotonic() < deadline, "nova-compute-a did not finish init_host"
            time.sleep(2)
        time.sleep(15)
    after = log.read_text(errors="replace")[offset:]
    assert "ERROR" not in after, after[-3000:]
    for name, uuid in ctx["uuids"].items():
        running = name in [*lab["LAB_RUNNING_GUESTS"].split(), SCRATCH]
        assert _server(ctx, uuid)["status"] == ("ACTIVE" if running else "SHUTOFF")


def test_nova_manages_an_adopted_vm(ctx):
    """Pause/unpause, a live migration through Nova, stop/start (Nova rebuilds the
    domain from its records), on the scratch guest."""
    lab, uuid = ctx["lab"], ctx["uuids"][SCRATCH]
    pid = qemu_pid(SCRATCH)
    _openstack(ctx, "server", "pause", uuid)
    _wait_status(ctx, uuid, "PAUSED")
    assert virsh(lab["LAB_HOST_A_URI"], "--readonly", "domstate", uuid).strip() == "paused"
    _openstack(ctx, "server", "unpause", uuid)
    _wait_status(ctx, uuid, "ACTIVE")
    assert qemu_pid(SCRATCH) == pid  # pause is not a restart

    # Live migrations through Nova, A -> B -> A. The scratch guest's NIC has
    # <driver name='qemu'/> as Nova writes it under virt_type=qemu, so libvirt's
    # ABI check accepts Nova's XML; the lab's legacy guests have none, and the
    # plan says Nova's live migration is refused for them until a first rebuild
    # (checked in test_apply_survives_kill_9_and_adopts_without_disturbing).
    for dest in (lab["LAB_NOVA_HOST_B"], lab["LAB_NOVA_HOST_A"]):
        started = time.monotonic()
        _nova_live_migrate(ctx, uuid, dest)
        print(f"Nova live migration of the adopted guest to {dest}: "
              f"{time.monotonic() - started:.1f} s until ACTIVE there")

    _openstack(ctx, "server", "stop", uuid)
    _wait_status(ctx, uuid, "SHUTOFF")
    _openstack(ctx, "server", "start", uuid)
    _wait_status(ctx, uuid, "ACTIVE")
    uri, _name = _where(ctx, uuid)
    xml = virsh(uri, "--readonly", "dumpxml", uuid)
    instance_dir = Path(lab["LAB_NOVA_INSTANCES_PATH"]) / uuid
    # Nova's own XML, with the guest's own disks and MAC: both disks are the
    # Cinder volumes (boot from volume), kernel/initrd come from Glance.
    volumes = {v["Name"]: v["ID"] for v in _openstack(ctx, "volume", "list",
                                                      "--all-projects")}
    for target in ("vda", "vdb"):
        assert f"name='{lab['LAB_CEPH_POOL_LEGACY']}/volume-{volumes[f'{SCRATCH}-{target}']}'" \
            in xml, xml
    assert f"<kernel>{instance_dir}/kernel</kernel>" in xml
    assert f"<mac address='{SCRATCH_MAC}'/>" in xml
    with HeartbeatMonitor(instance_dir / "console.log") as beats:
        beats.wait_for_beats(3, 90)  # the same guest boots again and gets its lease
    _wait_lease(ctx, SCRATCH_MAC)

    # Soft reboot: the guest answers the ACPI power button, Nova starts it again
    # from its records.
    # (Nova's soft reboot recreates the domain: a new domain id, same UUID.)
    uri, _name = _where(ctx, uuid)
    before = virsh(uri, "--readonly", "domid", uuid).strip()
    _openstack(ctx, "server", "reboot", "--soft", uuid)
    deadline = time.monotonic() + 240
    while True:
        uri, _name = _where_any(ctx, uuid)
        now = virsh(uri, "--readonly", "domid", uuid).strip() if uri else ""
        if now not in ("", "-", before):
            break
        assert time.monotonic() < deadline, "the domain was not recreated by the soft reboot"
        time.sleep(1)
    _wait_status(ctx, uuid, "ACTIVE")
    with HeartbeatMonitor(instance_dir / "console.log") as beats:
        beats.wait_for_beats(2, 90)


def _nova_live_migrate(ctx: dict, uuid: str, dest: str) -> None:
    """Nova live-migrates the guest to ``dest``: ACTIVE there, QEMU there, no heartbeat gap."""
    lab = ctx["lab"]
    with HeartbeatMonitor(ctx["scratch_console"]) as beats:
        beats.wait_for_beats(2, 30)
        _openstack(ctx, "server", "migrate", "--live-migration", "--host", dest, uuid)
        deadline = time.monotonic() + 180
        while True:
            server = _server(ctx, uuid)
            if not server.get("OS-EXT-STS:task_state"):
                break
            assert time.monotonic() < deadline, f"live migration still running: {server}"
            time.sleep(2)
        beats.wait_for_beats(2, 30)
    beats.assert_no_gap(max_interval=5.0)
    assert server["status"] == "ACTIVE", server.get("fault")
    assert server["OS-EXT-SRV-ATTR:host"] == dest, server.get("fault")
    uri = {lab["LAB_NOVA_HOST_A"]: lab["LAB_HOST_A_URI"],
           lab["LAB_NOVA_HOST_B"]: lab["LAB_HOST_B_URI"]}[dest]
    assert _where(ctx, uuid)[0] == uri
    assert virsh(uri, "--readonly", "domstate", uuid).strip() == "running"


def test_placement_down_mid_apply_is_a_clear_error_and_resumable(ctx):
    lab, uuid = ctx["lab"], ctx["uuids"]["lab-vm1"]
    pidfile = Path(lab["LAB_STATE_DIR"]) / "openstack" / "run" / "placement.pid"
    with undisturbed([(_lab_host(ctx, "lab-vm1"), "lab-vm1")], _console(ctx)):
        _onboard(ctx, "unmanage", "lab-vm1")
        _discover(ctx)
        plan = _plan(ctx, "lab-vm1")
        assert [v["op"] for v in plan["vms"]] == ["+"]
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        try:
            outcomes = _apply(ctx, check=False)
            [vm1] = outcomes
            assert vm1["Status"] == "failed", vm1
            assert "allocation" in vm1["Detail"] and "rerun 'os-onboard apply'" in vm1["Detail"]
        finally:
            run(REPO / "lab" / "lab", "up")  # brings Placement back
        outcomes = _apply(ctx)
        assert [o["Status"] for o in outcomes] == ["adopted"]
    assert _server(ctx, uuid)["status"] == "ACTIVE"
    assert _openstack(ctx, "resource", "provider", "allocation", "show", uuid)


def test_unmanage_purges_and_readopt_works(ctx):
    lab = ctx["lab"]
    guests = [(_lab_host(ctx, n), n) for n in lab["LAB_RUNNING_GUESTS"].split()]
    with undisturbed(guests, _console(ctx)):
        uuids = [ctx["uuids"][n] for n in lab["LAB_GUESTS"].split()]
        result = _onboard(ctx, "unmanage", *lab["LAB_GUESTS"].split(), "-f", "json")
        assert {r["Status"] for r in json.loads(result.stdout)} == {"released"}
        quoted = ",".join(f"'{u}'" for u in uuids)
        # purged, not soft-deleted: nothing for running_deleted_instance_action=reap to find
        assert _sql(f"SELECT count(*) FROM nova.instances WHERE uuid IN ({quoted})") \
            == [["0"]]
        assert _sql(f"SELECT count(*) FROM nova_api.instance_mappings WHERE instance_uuid "
                    f"IN ({quoted})") == [["0"]]
        for uuid in uuids:
            assert _server_or_none(ctx, uuid) is None
            assert _openstack(ctx, "port", "list", "--device-id", uuid) == []
        assert not [v for v in _openstack(ctx, "volume", "list", "--all-projects")
                    if v["Name"] == "lab-vm2-vdb"]
        # lab-vm2's RBD image keeps the name Cinder gave it; the rename map says so
        # and the next plan manages it under that name.
        _discover(ctx)
        plan = _plan(ctx, "lab-vm2")
        assert [v["op"] for v in plan["vms"]] == ["+"]
        assert any("renamed to" in n for n in plan["vms"][0]["notes"]), plan["vms"][0]
        outcomes = _apply(ctx)
        assert [o["Status"] for o in outcomes] == ["adopted"]
        assert _server(ctx, ctx["uuids"]["lab-vm2"])["status"] == "ACTIVE"
        _onboard(ctx, "unmanage", "lab-vm2")
