"""The OpenStack half of ``lab/lab reset`` (run by lib/reset.sh with os-onboard's Python).

One process, one Keystone session: it reads the servers, the compute
services, the ports, volumes and allocations once, and writes only when
something is to be cleaned. It prints one line per thing it cleaned, as
``cleaned: ...`` (or ``kept: ...`` / ``failed: ...``), nothing otherwise.

1. os-onboard's records of the lab's guests are released with
   ``os-onboard unmanage`` (never a Nova delete: Nova would stop the guest,
   see os_onboard/apply/release.py): every server carrying os-onboard's
   marker whose marker names one of the lab's libvirt hosts, or which sits
   on a benchmark's fake-driver compute host.
2. os-onboard's orphans (ports, volume records, allocations of servers that
   are gone) are removed as ``os-onboard cleanup --older-than 0`` does: the
   lab runs no apply while it is reset.
3. The vCenter simulator's legacy VMs (``--vsphere-legacy``), released in 1,
   powered on and moved back to their home cluster if a test or a person left
   them off or elsewhere (a relocation, as vMotion: the VM keeps running).
4. Compute services a benchmark left (``bench/adopt``'s fake-driver
   nova-compute, disabled with reason ``os-onboard bench...``) are deleted
   with their resource provider once they are down; one that is up (a
   benchmark running now) is kept and named.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The os_onboard package of the checkout these lab scripts belong to, first:
# the Python given may be a venv installed from another checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from os_onboard.apply.orphans import find_orphans, remove_orphans
from os_onboard.cloud.openstack import OpenStackCloud
from os_onboard.exceptions import OnboardError
from os_onboard.plan.model import MARKER_KEY

#: How a benchmark (bench/adopt) or a test (test_nova_helper_race) disables the
#: fake-driver nova-compute it registers: "os-onboard <who>: fake driver...".
FAKE_REASON = ("os-onboard ", "fake driver")


def say(kind: str, text: str) -> None:
    print(f"{kind}: {text}", flush=True)


def marker_host(metadata: dict) -> str:
    """The hypervisor URI in os-onboard's marker (``host=<uri> node=... at=...``)."""
    for word in (metadata.get(MARKER_KEY) or "").split():
        if word.startswith("host="):
            return word.removeprefix("host=")
    return ""


def bench_services(conn) -> tuple[list, list]:
    """(down, up) fake-driver nova-compute services a benchmark or a test registered."""
    down, up = [], []
    for service in conn.compute.services(binary="nova-compute"):
        reason = service.disabled_reason or ""
        if reason.startswith(FAKE_REASON[0]) and FAKE_REASON[1] in reason:
            (up if service.state == "up" else down).append(service)
    return down, up


def release(args, servers: dict[str, dict], bench_hosts: set[str]) -> tuple[bool, bool]:
    """Unmanage os-onboard's lab servers: (any to release, all released)."""
    lab_uris = set(args.lab_uri)
    mine: dict[str, list[str]] = {}  # fallback nova host -> uuids
    for uuid, server in servers.items():
        meta = server["metadata"]
        if MARKER_KEY not in meta:
            continue
        if marker_host(meta) in lab_uris or server["name"] in args.guest:
            mine.setdefault(server["host"] or args.nova_host, []).append(uuid)
        elif server["host"] in bench_hosts:
            mine.setdefault(server["host"], []).append(uuid)
    ok = True
    for host, uuids in mine.items():
        names = {u: servers[u]["name"] for u in uuids}
        cmd = [args.onboard, "unmanage", *uuids, "--host", host, "-f", "json"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        try:
            rows = json.loads(out.stdout or "[]")
        except json.JSONDecodeError:
            rows = []
        if not rows:
            say("failed", f"os-onboard unmanage {' '.join(uuids)}: rc {out.returncode}: "
                          f"{(out.stderr or out.stdout).strip()[-400:]}")
            ok = False
        for row in rows:
            name = names.get(row["UUID"], row["VM"])
            if row["Status"] == "released":
                say("cleaned", f"released {name} ({row['UUID']}) from OpenStack with "
                               f"'os-onboard unmanage': "
                               + "; ".join(row["Removed"].splitlines()))
            else:
                say("failed", f"os-onboard unmanage {name} ({row['UUID']}): {row['Error']}")
                ok = False
    return bool(mine), ok


def reset_vsphere(args, uri: str) -> bool:
    """Legacy VMs of the simulator powered on in their home clusters (after the releases:
    no Nova record follows them). Their home: legacy.go spreads them over the clusters."""
    from urllib.parse import urlsplit

    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    parts = urlsplit(uri)
    si = SmartConnect(host=parts.hostname, port=parts.port, user=parts.username,
                      pwd=os.environ["VSPHERE_PASSWORD"], protocol="http")
    ok = True
    try:
        content = si.content

        def every(kind):
            view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
            try:
                return {o.name: o for o in view.view}
            finally:
                view.Destroy()

        vms, clusters = every(vim.VirtualMachine), every(vim.ClusterComputeResource)
        homes = args.vsphere_clusters.split()
        for n, name in enumerate(args.vsphere_legacy):
            vm, home = vms.get(name), clusters.get(homes[n % len(homes)])
            if vm is None or home is None:
                say("failed", f"vSphere legacy VM {name} or its cluster is missing "
                              "(lab/lab down --purge, then up, makes them again)")
                ok = False
                continue
            where = vm.runtime.host.parent
            if where != home:
                WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(
                    host=home.host[0], pool=home.resourcePool)))
                say("cleaned", f"{name}: was in cluster {where.name}; relocated back to "
                               f"{home.name}")
            if vm.runtime.powerState != "poweredOn":
                state = vm.runtime.powerState
                WaitForTask(vm.PowerOnVM_Task())
                say("cleaned", f"{name}: was {state}; powered it on")
    finally:
        Disconnect(si)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab-uri", action="append", default=[],
                        help="a lab libvirt host URI (repeat)")
    parser.add_argument("--guest", action="append", default=[], help="a lab guest name")
    parser.add_argument("--vsphere-legacy", action="append", default=[],
                        help="a legacy VM of the vCenter simulator (repeat; in order)")
    parser.add_argument("--vsphere-clusters", default="",
                        help="the simulator's clusters the legacy VMs are spread over")
    parser.add_argument("--nova-host", required=True, help="host A's nova-compute host")
    parser.add_argument("--onboard", required=True, help="the os-onboard command")
    parser.add_argument("--servers-out", required=True, metavar="FILE",
                        help="written last: the UUIDs of the Nova servers left, one a line")
    args = parser.parse_args()

    cloud = OpenStackCloud(os.environ.get("OS_CLOUD"))
    conn = cloud._conn  # the SDK connection, for what os-onboard's contract lacks
    # One round of parallel reads when there is nothing to release (the usual case).
    with ThreadPoolExecutor(max_workers=3) as pool:
        services = pool.submit(bench_services, conn)
        listed = pool.submit(cloud.servers)
        early = pool.submit(find_orphans, cloud, older_than=0)
        (down, up), servers = services.result(), listed.result()
        bench_hosts = {s.host for s in down + up}
        released, ok = release(args, servers, bench_hosts)
        orphans = early.result()
    if released:
        # again: what the releases could not take (their server already gone), and
        # nothing they released (then in use) is taken for an orphan
        orphans = find_orphans(cloud, older_than=0)
    for orphan in remove_orphans(cloud, orphans):
        if orphan.status == "removed":
            say("cleaned", f"removed os-onboard's orphan {orphan.line}")
        else:
            say("failed", f"orphan {orphan.line}: {orphan.error}")
            ok = False
    vsphere = [u for u in args.lab_uri if u.startswith("vsphere://")]
    if vsphere and args.vsphere_legacy:
        ok = reset_vsphere(args, vsphere[0]) and ok
    for service in down:
        conn.compute.delete_service(service)
        providers = conn.placement.get("/resource_providers", params={"name": service.host},
                                       microversion="1.38").json()["resource_providers"]
        for rp in providers:
            conn.placement.delete(f"/resource_providers/{rp['uuid']}", microversion="1.38")
        say("cleaned", f"deleted the fake-driver compute service {service.host} a benchmark "
                       f"or test left (down) and its {len(providers)} resource provider(s)")
    for service in up:
        say("kept", f"fake-driver compute service {service.host} of a benchmark or test is up "
                    "(running now?): left alone")
    if released:
        servers = cloud.servers()
    with open(args.servers_out, "w") as out:
        out.write("# the Nova servers after lab/lab reset's releases\n")
        out.writelines(f"{uuid}\n" for uuid in servers)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OnboardError as exc:
        say("failed", f"OpenStack side: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
