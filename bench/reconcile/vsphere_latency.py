#!/usr/bin/env python3
"""Drift latency on the lab's vCenter: a change in vCenter -> Nova's record follows.

    .venv/bin/python bench/reconcile/vsphere_latency.py [--changes N] [--vm legacy-vc-03]

A legacy vSphere VM of the lab (``LAB_VSPHERE_LEGACY_VMS``) is adopted (plan +
apply into a private state store, released again at the end) and
``os-onboard watch --policy tolerate`` follows the vCenter. Then N changes
are made in vCenter, alternating power-off/power-on and relocations to the
other cluster and back, each at least --gap seconds apart.

Latency = from the end of the vCenter task (``info.completeTime`` as the
simulator stamps it, read back through the API) to the first moment a tight
loop of ``GET /servers/{id}`` (openstacksdk, admin) shows the new status or
host. Printed: one line per change, and ``RESULT`` lines for p50 and p95
against the issue's targets (p50 <= 2 s, p95 <= 5 s) with PASS/MISS. Needs
the lab (``lab/lab status``); run under the lab lock (``flock
/tmp/os-onboard-lab.lock``) so no test moves the VM meanwhile.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
import openstack  # noqa: E402
from pyVim.connect import Disconnect, SmartConnect  # noqa: E402
from pyVim.task import WaitForTask  # noqa: E402
from pyVmomi import vim  # noqa: E402

from tests.functional.lab import lab_env  # noqa: E402

CLI = Path(sys.executable).parent / "os-onboard"
TARGETS = {"p50": 2.0, "p95": 5.0}


def log(msg: str = "") -> None:
    print(msg, flush=True)


def every(si, kind) -> dict:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return {o.name: o for o in view.view}
    finally:
        view.Destroy()


def onboard(env: dict, *args: str) -> str:
    proc = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    if proc.returncode:
        raise SystemExit(f"os-onboard {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def until(conn, server_id: str, field: str, want: str, since: float, timeout: float) -> float:
    """Seconds from ``since`` (wall clock) until the server's field is ``want``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        value = server.status if field == "status" else server.compute_host
        if value == want:
            return time.time() - since
        time.sleep(0.05)
    return math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=12)
    parser.add_argument("--vm", default=None, help="a legacy VM (default: the last one)")
    parser.add_argument("--gap", type=float, default=3.0)
    args = parser.parse_args()
    lab = lab_env()
    if not lab.get("LAB_VSPHERE_LEGACY_VMS"):
        raise SystemExit("the lab has no legacy vSphere VMs (lab/lab env)")
    name = args.vm or lab["LAB_VSPHERE_LEGACY_VMS"].split()[-1]
    state = Path(tempfile.mkdtemp(prefix="bench-vc-latency-"))
    env = {**os.environ, **lab, "OS_ONBOARD_STATE_URL": f"sqlite:///{state}/state.db"}
    parts = urlsplit(lab["LAB_VSPHERE_URI"])
    si = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username,
                      pwd=lab["VSPHERE_PASSWORD"], protocol="http")
    conn = openstack.connect(cloud=lab.get("OS_CLOUD", "lab-admin"))
    vm = every(si, vim.VirtualMachine)[name]
    clusters = every(si, vim.ClusterComputeResource)
    hosts = {"DC0_C0": "vc-c0", "DC0_C1": "vc-c1"}
    server_id = vm.config.instanceUuid
    mapping = str(REPO / "lab/mapping.yaml")
    onboard(env, "discover", lab["LAB_VSPHERE_URI"])
    onboard(env, "plan", "--mapping", mapping, "--vm", name)
    onboard(env, "apply")
    watch_log = state / "watch.log"
    with open(watch_log, "w") as out:
        watcher = subprocess.Popen([str(CLI), "watch", "--policy", "tolerate", "--mapping",
                                    mapping, lab["LAB_VSPHERE_URI"]], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    results: dict[str, list[float]] = {"power": [], "relocation": []}
    try:
        while "pass (start)" not in watch_log.read_text():
            time.sleep(0.2)
        home = vm.runtime.host.parent.name
        for n in range(args.changes):
            time.sleep(args.gap)
            if n % 2 == 0:  # power: off, then on
                off = vm.runtime.powerState == "poweredOn"
                task = vm.PowerOffVM_Task() if off else vm.PowerOnVM_Task()
                kind, field, want = "power", "status", "SHUTOFF" if off else "ACTIVE"
            else:
                where = vm.runtime.host.parent.name
                target = clusters[next(c for c in hosts if c != where)]
                task = vm.RelocateVM_Task(vim.vm.RelocateSpec(host=target.host[0],
                                                              pool=target.resourcePool))
                kind, field, want = "relocation", "host", hosts[target.name]
            WaitForTask(task)
            done = task.info.completeTime.timestamp()
            took = until(conn, server_id, field, want, done, timeout=60)
            results[kind].append(took)
            log(f"change {n + 1:2}: {kind:10} -> {field} {want:8} {took:6.2f} s")
        if vm.runtime.host.parent.name != home:
            target = clusters[home]
            WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=target.host[0],
                                                               pool=target.resourcePool)))
        if vm.runtime.powerState != "poweredOn":
            WaitForTask(vm.PowerOnVM_Task())
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=60)
        onboard(env, "unmanage", server_id)
        Disconnect(si)
    values = sorted(v for vs in results.values() for v in vs)
    figures = {"p50": statistics.median(values),
               "p95": values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]}
    for key, value in figures.items():
        verdict = "PASS" if value <= TARGETS[key] else "MISS"
        log(f"RESULT vsphere-latency {key} = {value:.2f} s (target <= {TARGETS[key]:g} s; "
            f"n={len(values)}: power {len(results['power'])}, relocation "
            f"{len(results['relocation'])}) {verdict}")
    log(json.dumps({"vsphere_latency_s": {k: [round(v, 3) for v in vs]
                                          for k, vs in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
