"""One mode of the reconcile-pass benchmark, in its own interpreter.

    python modes.py ours  --uris-file F [--profile OUT]
    python modes.py naive --uris-file F --sample N

Both read the simulated cloud named by ``OS_CLOUD`` (clouds.yaml in
``OS_CLIENT_CONFIG_FILE``) and write their audit log to
``OS_ONBOARD_STATE_URL``; the parent sets all three. Prints one line
``RESULT {json}`` at the end.

*ours* is ``os-onboard drift URI...`` run in-process through the CLI's own
entry point (``os_onboard.cli.main.main``): its pass code runs unchanged. The
phase times come from wrapping the functions the pass calls (in the CLI
module's namespace) with a timer; wall time covers the whole command (cloud
connection, discovery, records, comparison, audit log, output), not the
interpreter's start-up or imports.

*naive* is the loop people write first: discover the hosts the same way, then
for each VM ask OpenStack about it alone - ``GET /servers/{id}`` and
``GET /ports?device_id=`` through the same :class:`OpenStackCloud` - on the
first ``--sample`` VMs; the parent extrapolates the time of the VMs that have
a server to the whole estate (a VM without one costs openstacksdk's
find-by-name fallback, a full server listing: timed apart, left out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import time
from pathlib import Path


def _finish(result: dict) -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _timed(phases: dict[str, float], name: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0
    return wrapper


def _wrap(phases: dict[str, float], owner: object, attr: str, label: str) -> None:
    """Time ``owner.attr`` under ``label`` when it exists (the pass code moves on)."""
    if hasattr(owner, attr):
        setattr(owner, attr, _timed(phases, label, getattr(owner, attr)))


def run_ours(args: argparse.Namespace) -> int:
    import os_onboard.cli.reconcile as cli_pass
    from os_onboard.cli.main import main as cli_main
    from os_onboard.cloud.openstack import OpenStackCloud
    from os_onboard.state.audit import AuditLog
    from os_onboard.state.records_cache import RecordsCache

    uris = Path(args.uris_file).read_text().split()
    phases: dict[str, float] = {}
    # Timers around what the pass calls; the pass itself is untouched.
    _wrap(phases, cli_pass, "discover_hosts", "discover hosts (libvirt)")
    _wrap(phases, cli_pass, "adopted_servers", "adopted servers (Nova+Neutron+Cinder)")
    for method, label in (("hypervisors", "  nova hypervisors"), ("servers", "  nova servers"),
                          ("ports", "  neutron ports"), ("volumes", "  cinder volumes")):
        _wrap(phases, OpenStackCloud, method, label)
    for module in ("os_onboard.reconcile.passes", "os_onboard.cli.reconcile"):
        if module in sys.modules:
            _wrap(phases, sys.modules[module], "find_drift", "find drift (compare)")
    _wrap(phases, RecordsCache, "save", "records cache save")
    _wrap(phases, AuditLog, "add", "audit log writes")

    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
    out = io.StringIO()
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    with contextlib.redirect_stdout(out):
        rc = cli_main(["drift", *uris, "-f", "json"])
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - t0
    if profiler:
        import pstats
        profiler.dump_stats(args.profile)
        with contextlib.redirect_stdout(sys.stderr):
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    try:
        rows = json.loads(out.getvalue() or "[]")
    except ValueError:
        rows = []
    return _finish({"mode": "ours", "rc": rc, "wall_s": wall, "phases": phases,
                    "found": sorted([r["Kind"], r["UUID"]] for r in rows),
                    "output_head": out.getvalue()[:300] if not rows else ""})


def run_naive(args: argparse.Namespace) -> int:
    from os_onboard.cloud.openstack import OpenStackCloud
    from os_onboard.discovery.runner import discover_hosts

    uris = Path(args.uris_file).read_text().split()
    t0 = time.perf_counter()
    cloud = OpenStackCloud()
    inventory = discover_hosts(uris)
    discover_s = time.perf_counter() - t0
    vms = [vm for host in inventory.hosts for vm in host.vms]
    hit_s = miss_s = 0.0
    found = missed = 0
    for vm in vms[: args.sample]:
        t1 = time.perf_counter()
        server = cloud.server(vm.uuid)
        if server is not None:
            cloud.ports(device_id=vm.uuid)
            hit_s += time.perf_counter() - t1
            found += 1
        else:
            # A miss (a 404, no port read) is timed apart, so that the
            # extrapolation from hits stays a lower bound for the loop.
            miss_s += time.perf_counter() - t1
            missed += 1
    return _finish({"mode": "naive", "vms": len(vms), "discover_s": discover_s,
                    "found": found, "found_s": hit_s, "missed": missed, "missed_s": miss_s})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["ours", "naive"])
    parser.add_argument("--uris-file", required=True)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--profile", metavar="OUT", help="cProfile the pass into OUT")
    args = parser.parse_args()
    return run_ours(args) if args.mode == "ours" else run_naive(args)


if __name__ == "__main__":
    sys.exit(main())
