"""Out-of-band live migration between the lab's two libvirt hosts.

``lab/lab migrate`` moves a running guest from host A to host B and back with
plain virsh, as an operator would behind OpenStack's back. A live migration
legitimately starts a new QEMU on the destination (new PID, new domain id);
what must not change is the guest itself: its heartbeat counter goes on with
no gap longer than 3 s, and it keeps its IP addresses.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.functional.lab import REPO, HeartbeatMonitor, qemu_pid

LAB = REPO / "lab" / "lab"
_IPS = re.compile(r" ip=(\S+)")


def _lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=180,
                          check=False)


def _state(uri: str, name: str) -> str:
    """``virsh domstate`` on one host; "undefined" when that host does not know it."""
    result = subprocess.run(["virsh", "-c", uri, "--readonly", "domstate", name],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else "undefined"


def _last_heartbeat_ips(log: Path) -> list[str]:
    """The ``ip=eth0=...`` fields of the newest heartbeat on the console."""
    lines = [line for line in log.read_text(errors="replace").splitlines()[-50:]
             if "HEARTBEAT " in line]
    assert lines, f"{log}: no heartbeat"
    return _IPS.findall(lines[-1])


def _status_line(name: str) -> str:
    result = _lab("status")
    assert result.returncode == 0, f"lab status exit {result.returncode}:\n{result.stdout}"
    (line,) = [ln for ln in result.stdout.splitlines() if ln.split()[:1] == [name]]
    return line


def _migrate(name: str, to: str) -> str:
    result = _lab("migrate", name, "--to", to)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"now runs on host {to.upper()}" in result.stdout, result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def hosts(lab):
    assert lab["LAB_HOST_A_HOSTNAME"] != lab["LAB_HOST_B_HOSTNAME"], (
        "both lab hosts report one hostname: Nova would give them one node name")
    return lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"]


@pytest.fixture
def guest(running_guests, hosts):
    """lab-vm2 (two NICs), else any running guest; on host A."""
    name = "lab-vm2" if "lab-vm2" in running_guests else running_guests[0]
    host_a, host_b = hosts
    if _state(host_b, name) == "running":  # left on B by an interrupted run
        _migrate(name, "a")
    assert _state(host_a, name) == "running"
    yield name
    if _state(host_b, name) == "running":  # a failed assertion must not strand it on B
        _lab("migrate", name, "--to", "a")


def test_live_migration_a_to_b_and_back(guest, hosts, lab, console_log):
    host_a, host_b = hosts
    log = console_log(guest)
    ips = _last_heartbeat_ips(log)
    assert ips and all(not ip.endswith("=-") for ip in ips), ips
    pid_on_a = qemu_pid(guest)

    with HeartbeatMonitor(log) as monitor:
        _migrate(guest, "b")
        assert _state(host_b, guest) == "running"
        # --undefinesource: host A no longer knows the guest at all.
        assert _state(host_a, guest) == "undefined"
        pid_on_b = qemu_pid(guest)
        assert pid_on_b is not None and pid_on_b != pid_on_a
        line = _status_line(guest)
        assert " host=B " in line and " state=running " in line, line
        # The leases stay with host A's dnsmasq; the status finds them by MAC.
        for ip in ips:
            assert ip.split("=", 1)[1] in line, (ip, line)
        # The guest lives on B for a few heartbeats, with the same addresses.
        monitor.wait_for_beats(len(monitor.beats) + 3, timeout=15)
        assert _last_heartbeat_ips(log) == ips

        _migrate(guest, "a")
        assert _state(host_a, guest) == "running"
        assert _state(host_b, guest) == "undefined"
        assert qemu_pid(guest) not in (None, pid_on_b)
        line = _status_line(guest)
        assert " host=A " in line and " state=running " in line, line

    # One guest, one boot: the counter never restarted and never paused > 3 s.
    monitor.assert_no_gap(max_interval=3.0)
    assert _last_heartbeat_ips(log) == ips


def test_discovery_follows_a_migrated_guest_to_host_b(guest, hosts, console_log, tmp_path):
    """Discovery of both hosts after an out-of-band migration: the guest is on B,
    with the addresses that only host A's DHCP server knows."""
    import json
    import sys

    host_a, host_b = hosts
    cli = Path(sys.executable).parent / "os-onboard"
    with HeartbeatMonitor(console_log(guest)) as monitor:
        _migrate(guest, "b")
        pid_on_b = qemu_pid(guest)
        out = tmp_path / "inventory.json"
        result = subprocess.run(
            [cli, "discover", host_a, host_b, "--no-save", "--output-file", str(out)],
            capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert qemu_pid(guest) == pid_on_b  # discovery did not disturb it on B
        _migrate(guest, "a")
    monitor.assert_no_gap(max_interval=3.0)
    doc = json.loads(out.read_text())
    on_a, on_b = ({vm["name"]: vm for vm in h["vms"]} for h in doc["hosts"])
    assert guest not in on_a
    vm = on_b[guest]
    assert vm["power_state"] == "running"
    assert doc["hosts"][1]["host"]["hostname"] != doc["hosts"][0]["host"]["hostname"]
    for nic in vm["nics"]:
        assert [a["source"] for a in nic["addresses"]] == ["dhcp-lease"], nic
    assert not [c for c in doc["conflicts"] if guest in " ".join(c["members"])]
