"""``os-onboard prepare-host`` on the lab's host A, which runs legacy guests.

Without it, nova-compute refuses to start there ("My hypervisor has existing
instances…"). After it, host A's nova-compute starts, registers its compute
node under the identity os-onboard wrote, and leaves the legacy guests alone:
same QEMU PIDs, same domain ids, heartbeats without a gap, through the start
and Nova's first periodic tasks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.functional.lab import REPO, undisturbed

CLI = Path(sys.executable).parent / "os-onboard"


def _prepare(lab) -> dict:
    result = subprocess.run(
        [CLI, "prepare-host", "--host", lab["LAB_NOVA_HOST_A"],
         "--state-path", lab["LAB_NOVA_STATE_PATH_A"],
         "--nova-python", str(Path(lab["LAB_OPENSTACK_BIN"]) / "python"),
         "--nova-config", lab["LAB_NOVA_CONF"], "-f", "json"],
        capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _openstack(lab, *args: str) -> list[dict]:
    out = subprocess.run([Path(lab["LAB_OPENSTACK_BIN"]) / "openstack", "--os-cloud",
                          "lab-admin", *args, "-f", "json"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


def _compute_up(lab, host: str) -> bool:
    services = _openstack(lab, "compute", "service", "list", "--service", "nova-compute")
    return any(s["Host"] == host and s["State"] == "up" for s in services)


def test_prepare_host_lets_nova_compute_start_beside_legacy_guests(lab, host_a, running_guests,
                                                                   console_log):
    host = lab["LAB_NOVA_HOST_A"]
    with undisturbed([(host_a, name) for name in running_guests], console_log):
        first = _prepare(lab)
        identity = Path(lab["LAB_NOVA_STATE_PATH_A"]) / "compute_id"
        assert identity.read_text().strip() == first["compute_id"]
        again = _prepare(lab)  # idempotent: nothing new is written
        assert (again["service_created"], again["compute_id_created"]) == (False, False)
        assert (again["compute_id"], again["service_id"]) == (first["compute_id"],
                                                              first["service_id"])
        started = subprocess.run([REPO / "lab" / "lab", "compute-start", "a"],
                                 capture_output=True, text=True, timeout=300, check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.monotonic() + 180
        while not _compute_up(lab, host):
            assert time.monotonic() < deadline, "nova-compute on host A did not report up"
            time.sleep(3)
        hypervisors = _openstack(lab, "hypervisor", "list")
        assert first["compute_id"] in [h["ID"] for h in hypervisors], hypervisors
        time.sleep(10)  # let nova-compute's start-up periodic tasks run over the guests
    log = Path(lab["LAB_OPENSTACK_LOG_DIR"]) / "nova-compute-a.log"
    assert "existing instances" not in log.read_text(errors="replace")
