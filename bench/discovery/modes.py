"""One benchmark mode, run in its own process so that its peak RSS is its own.

    python modes.py ours  --uris-file F [--hosts N] [--workers W] [--repeat R] [--digest-hosts D]
    python modes.py naive --uris-file F [--hosts N] [--repeat R] [--digest-hosts D]
    python modes.py rtt   --uri URI [--calls N | --until-eof --interval-ms MS]
    python modes.py hostcalls --uri URI

Prints one line ``RESULT {json}`` at the end. Timing covers the discovery
work only (every connect, read and close), not interpreter start-up or
imports (``walls``; ``work_cpus`` is the process's CPU time over the same
span); ``rss_after_imports_mib`` shows what the imports alone cost.
The digests hash (host index, VM name, power state, disk count) and, apart,
the same with the address count, over the first ``--digest-hosts`` hosts, so
that the parent can check that ours and the baseline saw the same thing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path


def _rss_now_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()[:16]


def _digests(rows: list[tuple]) -> dict[str, str]:
    """rows: (host index, VM name, power state, disk count, address count)."""
    return {"digest": _digest([r[:4] for r in rows]), "digest_addresses": _digest(rows)}


def _finish(result: dict) -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _uris(args: argparse.Namespace) -> list[str]:
    uris = Path(args.uris_file).read_text().split()
    return uris[: args.hosts] if args.hosts else uris


def run_ours(args: argparse.Namespace) -> int:
    from os_onboard.discovery.runner import RunOptions, discover_hosts
    from os_onboard.inventory.models import Severity

    uris = _uris(args)
    profiles = _start_profiling() if args.profile else None
    rss0 = _rss_now_mib()
    walls, cpus, inv = [], [], None
    budget_end = time.perf_counter() + args.budget_s if args.budget_s else None
    for _ in range(args.repeat):
        inv = None  # let the previous inventory go before the next run
        t0, c0 = time.perf_counter(), time.process_time()
        inv = discover_hosts(uris, RunOptions(workers=args.workers))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if budget_end is not None and time.perf_counter() > budget_end:
            break
    if profiles is not None:
        _save_profile(profiles, args.profile)
    vms = sum(len(h.vms) for h in inv.hosts)
    problems = [p for h in inv.hosts for p in h.problems]
    rows = [(i, vm.name, vm.power_state.value, len(vm.disks),
             sum(len(n.addresses) for n in vm.nics))
            for i, h in enumerate(inv.hosts[: args.digest_hosts]) for vm in h.vms]
    codes: dict[str, int] = {}
    for p in problems:
        codes[f"{p.severity.value}:{p.code}"] = codes.get(f"{p.severity.value}:{p.code}", 0) + 1
    return _finish({
        "mode": "ours", "workers": args.workers, "hosts": len(uris), "runs": len(walls),
        "vms": vms, "walls": walls, "work_cpus": cpus,
        "hosts_ok": sum(1 for h in inv.hosts if h.status.value == "ok"),
        "problems": len(problems),
        "errors": sum(1 for p in problems if p.severity == Severity.ERROR),
        "problem_codes": codes,
        "first_problems": [p.message for p in problems[:3]],
        "disks_sized": sum(1 for h in inv.hosts for vm in h.vms for d in vm.disks
                           if d.capacity_bytes is not None),
        "disks": sum(len(vm.disks) for h in inv.hosts for vm in h.vms),
        **_digests(rows), "digest_hosts": min(args.digest_hosts, len(inv.hosts)),
        "addresses_by_vm": [(r[0], r[1], r[4]) for r in rows] if args.digest_hosts <= 5 else None,
        "rss_after_imports_mib": rss0,
    })


def _start_profiling() -> list:
    """Profile every thread started from now on (the discovery workers) with cProfile."""
    import cProfile
    import threading

    profiles: list = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile()  # the calling thread: the runner's collection loop
    profiles.append(main)
    main.enable()
    return profiles


def _save_profile(profiles: list, path: str) -> None:
    import pstats
    import threading

    profiles[0].disable()  # the main thread's; each worker disabled its own on exit
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(timeout=5)
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    stats.dump_stats(path)
    stats.sort_stats("tottime").print_stats(25)  # to stdout, before the RESULT line


def run_naive(args: argparse.Namespace) -> int:
    import naive

    uris = _uris(args)
    rss0 = _rss_now_mib()
    walls, cpus, hosts = [], [], []
    budget_end = time.perf_counter() + args.budget_s if args.budget_s else None
    for _ in range(args.repeat):
        hosts = []
        t0, c0 = time.perf_counter(), time.process_time()
        for uri in uris:
            hosts.append(naive.read_host(uri))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if budget_end is not None and time.perf_counter() > budget_end:
            break
    rows = [(i, vm["name"], vm["power_state"], len(vm["disks"]), vm["addresses"])
            for i, vms in enumerate(hosts[: args.digest_hosts]) for vm in vms]
    return _finish({
        "mode": "naive", "workers": 1, "hosts": len(uris), "runs": len(walls),
        "vms": sum(len(v) for v in hosts), "walls": walls, "work_cpus": cpus,
        "hosts_ok": len(hosts), "problems": 0, "errors": 0, "problem_codes": {},
        "first_problems": [],
        "disks_sized": sum(1 for v in hosts for vm in v for d in vm["disks"] if d[1] is not None),
        "disks": sum(len(vm["disks"]) for v in hosts for vm in v),
        **_digests(rows), "digest_hosts": min(args.digest_hosts, len(hosts)),
        "addresses_by_vm": [(r[0], r[1], r[4]) for r in rows] if args.digest_hosts <= 5 else None,
        "rss_after_imports_mib": rss0,
    })


def run_rtt(args: argparse.Namespace) -> int:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    t0 = time.perf_counter()
    conn = libvirt.openReadOnly(args.uri)
    open_s = time.perf_counter() - t0
    samples = []
    try:
        for _ in range(20):  # warm-up
            conn.getHostname()
        if args.until_eof:
            # A probe beside a running mode: one call every --interval-ms until the
            # parent closes our stdin.
            import threading

            stop = threading.Event()
            threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
            print("READY", flush=True)
            while not stop.wait(args.interval_ms / 1e3):
                t0 = time.perf_counter()
                conn.getHostname()
                samples.append(time.perf_counter() - t0)
        else:
            for _ in range(args.calls):
                t0 = time.perf_counter()
                conn.getHostname()
                samples.append(time.perf_counter() - t0)
    finally:
        conn.close()
    if not samples:
        samples = [float("nan")]
    samples.sort()
    return _finish({
        "mode": "rtt", "uri": args.uri, "calls": len(samples), "open_ms": open_s * 1e3,
        "median_ms": statistics.median(samples) * 1e3,
        "mean_ms": statistics.fmean(samples) * 1e3,
        "p10_ms": samples[len(samples) // 10] * 1e3,
        "p90_ms": samples[len(samples) * 9 // 10] * 1e3,
    })


def run_hostcalls(args: argparse.Namespace) -> int:
    """How long each per-host call that os-onboard makes takes (one call each)."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.openReadOnly(args.uri)
    calls = {}
    try:
        for name in ("getInfo", "getType", "getVersion", "getCapabilities", "getHostname"):
            t0 = time.perf_counter()
            with contextlib.suppress(libvirt.libvirtError):
                getattr(conn, name)()
            calls[name] = (time.perf_counter() - t0) * 1e3
    finally:
        conn.close()
    return _finish({"mode": "hostcalls", "uri": args.uri, "ms": calls})


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("ours", "naive"):
        p = sub.add_parser(name)
        p.add_argument("--uris-file", required=True)
        p.add_argument("--hosts", type=int, default=0, help="only the first N URIs (0: all)")
        p.add_argument("--workers", type=int, default=16)
        p.add_argument("--repeat", type=int, default=1)
        p.add_argument("--budget-s", type=float, default=0,
                       help="stop repeating once this many seconds have passed (0: no limit)")
        p.add_argument("--digest-hosts", type=int, default=0)
        if name == "ours":
            p.add_argument("--profile", metavar="FILE",
                           help="cProfile every discovery thread; write merged pstats to FILE")
    p = sub.add_parser("rtt")
    p.add_argument("--uri", required=True)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--until-eof", action="store_true",
                   help="probe every --interval-ms until stdin is closed")
    p.add_argument("--interval-ms", type=float, default=20)
    p = sub.add_parser("hostcalls", help="time each host-level call of ours once")
    p.add_argument("--uri", required=True)
    args = parser.parse_args(argv)
    return {"ours": run_ours, "naive": run_naive, "rtt": run_rtt,
            "hostcalls": run_hostcalls}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
