"""Out-of-band changes to an adopted VM: drift reported, then tolerated.

lab-vm1 is adopted, then live-migrated with plain virsh (``lab/lab migrate``)
behind OpenStack's back. Under ``report`` nothing is written and the drift is
listed; under ``tolerate`` Nova's instance record, the Placement allocation
and the port binding follow the VM to host B - and Nova, at its defaults
apart from a 20 s power-sync interval (the lab's), never stops or restarts
the guest: its heartbeat runs without a gap through the migration, the
reconcile and two of Nova's power-sync periods. Then back to A, and an
out-of-band pause/resume. lab-vm1 is released at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.lab import (
    REPO,
    HeartbeatMonitor,
    ensure_nova_compute_on_a,
    qemu_pid,
    run,
    virsh,
)

CLI = Path(sys.executable).parent / "os-onboard"
VM = "lab-vm1"


@pytest.fixture(scope="module")
def ctx(lab, tmp_path_factory) -> Iterator[dict]:
    state = tmp_path_factory.mktemp("reconcile")
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db",
           "OS_ONBOARD_INSTANCES_PATH": lab["LAB_NOVA_INSTANCES_PATH"], "OS_CLOUD": "lab-admin"}
    context = {"lab": lab, "env": env, "state": state}
    ensure_nova_compute_on_a(lab)  # on a fresh lab, host A's nova-compute waits for this
    _where_is(context)  # lab-vm1 must be running somewhere
    uuid = virsh(context["uri"], "--readonly", "domuuid", VM).strip()
    context["uuid"] = uuid
    _onboard(context, "unmanage", uuid, "--host", lab["LAB_NOVA_HOST_A"])
    if context["uri"] != lab["LAB_HOST_A_URI"]:
        _migrate(context, "a")
    _onboard(context, "discover", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"])
    _onboard(context, "plan", "--mapping", str(REPO / "lab" / "mapping.yaml"), "--vm", VM)
    outcomes = json.loads(_onboard(context, "apply", "-f", "json").stdout)
    assert [o["Status"] for o in outcomes] == ["adopted"], outcomes
    yield context
    _where_is(context)
    if context["uri"] != lab["LAB_HOST_A_URI"]:
        _migrate(context, "a")
    _onboard(context, "unmanage", VM)


def _onboard(ctx, *args) -> subprocess.CompletedProcess[str]:
    return run(CLI, *args, env=ctx["env"])


def _openstack(ctx, *args):
    out = run(Path(ctx["lab"]["LAB_OPENSTACK_BIN"]) / "openstack", *args, "-f", "json",
               env=ctx["env"]).stdout
    return json.loads(out)


def _where_is(ctx) -> str:
    for key in ("LAB_HOST_A_URI", "LAB_HOST_B_URI"):
        result = run("virsh", "-c", ctx["lab"][key], "--readonly", "domstate", VM,
                      check=False)
        if result.returncode == 0 and result.stdout.strip() == "running":
            ctx["uri"] = ctx["lab"][key]
            return key
    raise AssertionError(f"{VM} runs on no lab host")


def _migrate(ctx, to: str) -> None:
    run(REPO / "lab" / "lab", "migrate", VM, "--to", to)
    _where_is(ctx)


def _reconcile(ctx, policy: str, *options: str) -> list[dict]:
    out = _onboard(ctx, "reconcile", ctx["lab"]["LAB_HOST_A_URI"], ctx["lab"]["LAB_HOST_B_URI"],
                   "--policy", policy, *options, "-f", "json").stdout
    return [row for row in json.loads(out) if row["UUID"] == ctx["uuid"]]


def _console(ctx) -> Path:
    return Path(ctx["lab"]["LAB_CONSOLE_DIR"]) / f"{VM}-console.log"


def _record(ctx) -> tuple[str, str, str, list[str]]:
    """(server host, status, allocation provider, port binding hosts)."""
    server = _openstack(ctx, "server", "show", ctx["uuid"])
    allocations = _openstack(ctx, "resource", "provider", "allocation", "show", ctx["uuid"])
    ports = _openstack(ctx, "port", "list", "--device-id", ctx["uuid"])
    bindings = [_openstack(ctx, "port", "show", p["ID"])["binding_host_id"] for p in ports]
    return (server["OS-EXT-SRV-ATTR:host"], server["status"],
            allocations[0]["resource_provider"], bindings)


def _provider(ctx, node: str) -> str:
    [hyp] = [h for h in _openstack(ctx, "hypervisor", "list")
             if h["Hypervisor Hostname"] == node]
    return hyp["ID"]


def test_out_of_band_migration_reported_then_tolerated(ctx):
    lab = ctx["lab"]
    host_a, host_b = lab["LAB_NOVA_HOST_A"], lab["LAB_NOVA_HOST_B"]
    with HeartbeatMonitor(_console(ctx)) as beats:
        beats.wait_for_beats(2, 30)
        _migrate(ctx, "b")
        assert ctx["uri"] == lab["LAB_HOST_B_URI"]

        [drift] = _reconcile(ctx, "report")
        assert (drift["Kind"], drift["Action"]) == ("host-changed", "reported"), drift
        assert drift["Actual"] == f"{host_b}/{lab['LAB_HOST_B_HOSTNAME']}"
        assert _record(ctx)[0] == host_a  # report wrote nothing

        # A policy group of the mapping names host B (by URI) as report-only:
        # it outranks --policy tolerate for the VM that now runs there.
        grouped = ctx["state"] / "mapping-groups.yaml"
        grouped.write_text((REPO / "lab" / "mapping.yaml").read_text() + (
            f"policies:\n  - hosts: {json.dumps(lab['LAB_HOST_B_URI'])}\n"
            "    policy: report\n"))
        [drift] = _reconcile(ctx, "tolerate", "--mapping", str(grouped))
        assert (drift["Kind"], drift["Action"]) == ("host-changed", "reported"), drift
        assert _record(ctx)[0] == host_a

        [drift] = _reconcile(ctx, "tolerate")
        assert (drift["Kind"], drift["Action"]) == ("host-changed", "tolerated"), drift
        host, status, provider, bindings = _record(ctx)
        assert (host, status) == (host_b, "ACTIVE")
        assert provider == _provider(ctx, lab["LAB_HOST_B_HOSTNAME"])
        assert bindings == [host_b]
        assert _reconcile(ctx, "tolerate") == []  # in sync now
        # Nova's delayed STOPPED event on A (15 s) and two power-sync periods
        # (lab: 20 s) pass: the guest keeps running on B and Nova keeps ACTIVE.
        time.sleep(50)
        assert virsh(lab["LAB_HOST_B_URI"], "--readonly", "domstate", VM).strip() == "running"
        assert _record(ctx)[:2] == (host_b, "ACTIVE")
        _migrate(ctx, "a")
        [drift] = _reconcile(ctx, "tolerate")
        assert drift["Action"] == "tolerated"
        assert _record(ctx)[0] == host_a
        time.sleep(5)
    beats.assert_no_gap(max_interval=5.0)


def test_out_of_band_pause_and_resume_are_tolerated(ctx):
    """A pause stops the heartbeat on purpose; the guest must still be the same
    process and domain afterwards."""
    uri = ctx["uri"]
    pid, domid = qemu_pid(VM), virsh(uri, "--readonly", "domid", VM).strip()
    virsh(uri, "suspend", VM)
    try:
        [drift] = _reconcile(ctx, "tolerate")
        assert (drift["Kind"], drift["Action"]) == ("power-changed", "tolerated"), drift
        assert _record(ctx)[1] == "PAUSED"
    finally:
        virsh(uri, "resume", VM)
    [drift] = _reconcile(ctx, "tolerate")
    assert (drift["Kind"], drift["Action"]) == ("power-changed", "tolerated"), drift
    assert _record(ctx)[1] == "ACTIVE"
    assert (qemu_pid(VM), virsh(uri, "--readonly", "domid", VM).strip()) == (pid, domid)


def test_history_lists_what_was_seen_and_done(ctx):
    rows = json.loads(_onboard(ctx, "history", VM, "-f", "json").stdout)
    actions = {(r["Kind"], r["Action"]) for r in rows}
    assert {("host-changed", "reported"), ("host-changed", "tolerated"),
            ("power-changed", "tolerated")} <= actions, rows


def _server_host(ctx) -> str:
    return _openstack(ctx, "server", "show", ctx["uuid"])["OS-EXT-SRV-ATTR:host"]


def test_watch_follows_a_migration_from_the_event_and_survives_kill_9(ctx):
    """The periodic pass is set to 10 min: following within it means the libvirt
    event woke the watcher. Killed with -9 while the VM is away, a new watcher
    brings the records back in line on its first pass."""
    lab = ctx["lab"]
    cmd = [str(CLI), "watch", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"], "--policy",
           "tolerate", "--interval", "600"]
    watcher = subprocess.Popen(cmd, env=ctx["env"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # its first pass (nothing to do) and its event connections
        with HeartbeatMonitor(_console(ctx)) as beats:
            beats.wait_for_beats(2, 30)
            _migrate(ctx, "b")
            deadline = time.monotonic() + 120
            while _server_host(ctx) != lab["LAB_NOVA_HOST_B"]:
                assert watcher.poll() is None, watcher.communicate()
                assert time.monotonic() < deadline, "watch did not follow the migration"
                time.sleep(0.5)
            watcher.kill()  # kill -9 while nothing is pending
            watcher.wait()
            _migrate(ctx, "a")  # nobody watches this one
            watcher = subprocess.Popen(cmd, env=ctx["env"], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 120
            while _server_host(ctx) != lab["LAB_NOVA_HOST_A"]:
                assert watcher.poll() is None, watcher.communicate()
                assert time.monotonic() < deadline, "restarted watch did not catch up"
                time.sleep(0.5)
            time.sleep(3)
        beats.assert_no_gap(max_interval=5.0)
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def test_a_vm_on_a_managed_host_is_adopted_by_the_adopt_policy(ctx):
    """not-adopted=adopt, owners limited to lab-vm1 by the mapping: a watcher's
    state store that released the VM leaves it alone; one that never saw it
    adopts it with the same UUID, MACs and IPs, and the guest never notices."""
    lab = ctx["lab"]
    key = _where_is(ctx)
    uri, node = ctx["uri"], lab["LAB_NOVA_HOST_A" if key == "LAB_HOST_A_URI" else
                                "LAB_NOVA_HOST_B"]
    ports_before = sorted((p["MAC Address"], json.dumps(p["Fixed IP Addresses"]))
                          for p in _openstack(ctx, "port", "list", "--device-id", ctx["uuid"]))
    mapping = ctx["state"] / "mapping-adopt.yaml"
    mapping.write_text((REPO / "lab" / "mapping.yaml").read_text().replace(
        'match: {name: "lab-*"}', f'match: {{name: "{VM}"}}'))
    adopt = ("--kind-policy", "not-adopted=adopt", "--mapping", str(mapping))
    pid, domid = qemu_pid(VM), virsh(uri, "--readonly", "domid", VM).strip()
    with HeartbeatMonitor(_console(ctx)) as beats:
        beats.wait_for_beats(2, 30)
        _onboard(ctx, "unmanage", VM)
        [row] = _reconcile(ctx, "report", *adopt)
        assert (row["Kind"], row["Action"]) == ("not-adopted", "reported"), row
        assert row["Detail"].startswith("released with 'os-onboard unmanage'")
        assert run(Path(lab["LAB_OPENSTACK_BIN"]) / "openstack", "server", "show",
                   ctx["uuid"], env=ctx["env"], check=False).returncode != 0

        fresh = {**ctx["env"], "OS_ONBOARD_STATE_URL": f"sqlite:///{ctx['state']}/fresh.db"}
        out = run(CLI, "reconcile", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"],
                  "--policy", "report", *adopt, "-f", "json", env=fresh).stdout
        rows = {r["VM"]: r for r in json.loads(out) if r["Kind"] == "not-adopted"}
        assert (rows[VM]["Action"], rows[VM]["UUID"]) == ("tolerated", ctx["uuid"]), rows
        assert rows[VM]["Detail"].startswith("adopted by plan"), rows[VM]
        # lab-vm2 runs on a managed host too, but no owner rule names it
        assert rows["lab-vm2"]["Action"] == "reported", rows["lab-vm2"]
        assert "the plan blocks it" in rows["lab-vm2"]["Detail"], rows["lab-vm2"]

        server = _openstack(ctx, "server", "show", ctx["uuid"])
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", node)
        ports = sorted((p["MAC Address"], json.dumps(p["Fixed IP Addresses"]))
                       for p in _openstack(ctx, "port", "list", "--device-id", ctx["uuid"]))
        assert ports == ports_before
        again = run(CLI, "reconcile", lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"],
                    "--policy", "report", *adopt, "-f", "json", env=fresh).stdout
        assert [r for r in json.loads(again) if r["UUID"] == ctx["uuid"]] == []
        time.sleep(3)
    beats.assert_no_gap(max_interval=5.0)
    assert (qemu_pid(VM), virsh(uri, "--readonly", "domid", VM).strip()) == (pid, domid)
