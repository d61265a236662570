#!/usr/bin/env python3
"""A 10,000-VM simulated estate shared by 1, 2 and 3 replicas (tooz on etcd).

    .venv/bin/python bench/serve/replicas.py            # 100 hosts x 100 VMs
    .venv/bin/python bench/serve/replicas.py --quick    # 20 hosts x 50 VMs

Needs the lab's etcd (``lab/lab up``; ``$LAB_ETCD_URL``, default
http://127.0.0.1:2379). The estate is libvirt test-driver node files
(``test:///path``) registered as managed hosts in a temporary SQLite store.
For each replica count N, N replica processes join a tooz group of their
own (lease --lease-ttl s, heartbeat 1 s) through
:class:`os_onboard.coordination.service.Membership`, each takes the hosts the
ring gives it, and each makes one full pass over its hosts: a discovery of
all of them (the read half of a watch pass: every VM's domain XML, stats,
networks, storage). Printed: hosts, VMs and pass time per replica. With N > 1
one replica is then killed with -9 and the takeover time is printed (kill to
the survivors holding every host), then a survivor's pass over its larger
share. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, sys, time
from os_onboard.coordination.service import Membership
from os_onboard.discovery.runner import RunOptions, discover_hosts
from os_onboard.state import StateStore
from os_onboard.state.hosts import HostRegistry
url, member, group, state_url, ttl = sys.argv[1:6]
registry = HostRegistry(StateStore(state_url))
m = Membership(url, member, group, registry, heartbeat=1.0, lease_ttl=int(ttl)).start()
print(json.dumps({"event": "joined", "member": member}), flush=True)
for line in sys.stdin:  # "pass" -> one full pass over what this member holds now
    m.refresh()
    hosts = list(m.hosts)
    t0 = time.perf_counter()
    inv = discover_hosts(hosts, RunOptions(workers=8))
    print(json.dumps({"event": "pass", "member": member, "hosts": len(hosts),
                      "vms": sum(len(h.vms) for h in inv.hosts),
                      "seconds": time.perf_counter() - t0}), flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms", type=int, default=100, help="VMs per host")
    parser.add_argument("--lease-ttl", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.hosts, args.vms = 20, 50
    from os_onboard.coordination.service import workers_of
    from os_onboard.drivers.libvirt.testnode import write_estate
    from os_onboard.state import StateStore
    from os_onboard.state.hosts import HostRegistry

    etcd = "etcd3+" + os.environ.get("LAB_ETCD_URL", "http://127.0.0.1:2379")
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    state_url = f"sqlite:///{tmp}/state.db"
    store = StateStore(state_url)
    registry = HostRegistry(store)
    uris = [f"test://{p}" for p in write_estate(tmp / "estate", args.hosts, args.vms)]
    for i, uri in enumerate(uris):
        registry.add(uri, name=f"h{i:05d}")
    hosts = set(uris)
    print(f"estate: {args.hosts} hosts x {args.vms} VMs = {args.hosts * args.vms} VMs; "
          f"lease {args.lease_ttl} s, heartbeat 1 s; etcd {etcd}")

    for count in (1, 2, 3):
        group = f"bench-{uuid.uuid4().hex[:8]}"
        procs = {}
        for i in range(count):
            member = f"r{i}"
            procs[member] = subprocess.Popen(
                [sys.executable, "-c", CHILD, etcd, member, group, state_url,
                 str(args.lease_ttl)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True, start_new_session=True)
            json.loads(procs[member].stdout.readline())
        try:
            _settle(workers_of, etcd, group, store, sorted(procs), hosts, 30)
            for p in procs.values():
                p.stdin.write("pass\n")
                p.stdin.flush()
            passes = [json.loads(p.stdout.readline()) for p in procs.values()]
            for r in passes:
                print(f"{count} replica(s): {r['member']} holds {r['hosts']:>4} hosts, "
                      f"{r['vms']:>6} VMs; full pass {r['seconds']:.2f} s")
            print(f"{count} replica(s): slowest pass {max(r['seconds'] for r in passes):.2f} s")
            if count > 1:
                victim = sorted(procs)[-1]
                os.killpg(procs[victim].pid, signal.SIGKILL)
                procs.pop(victim).wait()
                took = _settle(workers_of, etcd, group, store, sorted(procs), hosts, 60)
                print(f"{count} replica(s): {victim} killed -9, its hosts held by the "
                      f"survivors after {took:.1f} s")
                survivor = procs[sorted(procs)[0]]
                survivor.stdin.write("pass\n")
                survivor.stdin.flush()
                r = json.loads(survivor.stdout.readline())
                print(f"{count} replica(s): after the takeover {r['member']} holds "
                      f"{r['hosts']} hosts, {r['vms']} VMs; full pass {r['seconds']:.2f} s")
        finally:
            for p in procs.values():
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
    return 0


def _settle(workers_of, etcd, group, store, members, hosts, timeout) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        view = workers_of(etcd, group, store)
        held = [h for m in view["members"] for h in m["held"]]
        if (sorted(m["member"] for m in view["members"]) == members and set(held) == hosts
                and len(held) == len(hosts)):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise SystemExit(f"not settled on {members} after {timeout} s")


if __name__ == "__main__":
    sys.exit(main())
