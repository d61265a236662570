#!/usr/bin/env python3
"""Load on ``os-onboard serve`` over loopback: N concurrent clients for T seconds.

    .venv/bin/python bench/serve/load.py                  # 50 clients, 60 s
    .venv/bin/python bench/serve/load.py --quick          # 10 clients, 5 s

Starts one replica (gunicorn, one gthread worker) on 127.0.0.1 with a SQLite
store in a temporary directory and ``auth_strategy = noauth`` (the server
itself is measured, not the lab's Keystone: with Keystone, a token is
validated once and then cached in the process). It registers --hosts hosts,
runs one discovery job over a simulated estate (libvirt test driver node
files, --vms per host) through the API, then each client loops over a mix of
reads: /v1/hosts, a page of a snapshot's VMs, one filtered by name,
/v1/jobs, /v1/workers, /v1/openapi.json. Requests only go to 127.0.0.1 and
stop after --duration. Printed: requests, errors (non-2xx or failed), rate,
and latency p50/p90/p99/max per request kind and overall. Nothing is
asserted; exit code 1 when the server could not be started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from os_onboard.drivers.libvirt.testnode import write_estate  # noqa: E402

ADMIN = {"X-Roles": "admin,member,reader", "Content-Type": "application/json"}
READER = {"X-Roles": "reader"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, method: str = "GET", headers: dict | None = None,
            body: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or READER,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--vms", type=int, default=50, help="VMs per simulated host")
    parser.add_argument("--threads", type=int, default=16, help="the worker's threads")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.duration, args.hosts, args.vms = 10, 5.0, 5, 20

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    conf = tmp / "serve.conf"
    conf.write_text(f"[DEFAULT]\nstate_url = sqlite:///{tmp}/state.db\n"
                    f"[api]\nauth_strategy = noauth\nthreads = {args.threads}\n")
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([Path(sys.executable).parent / "os-onboard", "serve", "--config",
                             str(conf), "--bind", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(f"{base}/v1")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"serve did not start; see {tmp}/serve.log")
                return 1
            time.sleep(0.2)
        uris = [f"test://{p}" for p in write_estate(tmp / "estate", args.hosts, args.vms)]
        for uri in uris:
            request(f"{base}/v1/hosts", "POST", ADMIN, {"uri": uri,
                                                         "name": Path(uri).stem})
        t0 = time.monotonic()
        _, raw = request(f"{base}/v1/discoveries", "POST", ADMIN, {})
        job_url = f"{base}/v1/jobs/{json.loads(raw)['job']['id']}"
        while True:
            job = json.loads(request(job_url)[1])["job"]
            if job["state"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        print(f"setup: {args.hosts} hosts registered, discovery job {job['state']} "
              f"({job['result'].get('vms')} VMs) in {time.monotonic() - t0:.1f} s")
        _, raw = request(f"{base}/v1/snapshots/latest/vms?limit=1")
        a_name = json.loads(raw)["vms"][0]["name"]
        mix = [("hosts", "/v1/hosts?limit=50"),
               ("vms page", "/v1/snapshots/latest/vms?limit=50"),
               ("vms by name", f"/v1/snapshots/latest/vms?name={a_name}"),
               ("jobs", "/v1/jobs?limit=20"),
               ("workers", "/v1/workers"),
               ("openapi", "/v1/openapi.json")]
        results: dict[str, list[float]] = {k: [] for k, _ in mix}
        errors: dict[str, int] = {k: 0 for k, _ in mix}
        lock = threading.Lock()
        stop_at = time.monotonic() + args.duration

        def client(n: int) -> None:
            i = n
            while time.monotonic() < stop_at:
                kind, path = mix[i % len(mix)]
                i += 1
                start = time.perf_counter()
                try:
                    ok = 200 <= request(base + path)[0] < 300
                except OSError:
                    ok = False
                took = time.perf_counter() - start
                with lock:
                    results[kind].append(took)
                    errors[kind] += 0 if ok else 1

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        everything = [v for vs in results.values() for v in vs]
        print(f"load: {args.clients} clients for {wall:.1f} s on loopback, "
              f"{len(everything)} requests ({len(everything) / wall:.0f}/s), "
              f"{sum(errors.values())} errors")
        print(f"{'request':<14}{'count':>7}{'errors':>7}{'p50 ms':>9}{'p90 ms':>9}"
              f"{'p99 ms':>9}{'max ms':>9}")
        for kind, values in [*results.items(), ("all", everything)]:
            if not values:
                continue
            errs = sum(errors.values()) if kind == "all" else errors[kind]
            print(f"{kind:<14}{len(values):>7}{errs:>7}{pct(values, 50) * 1e3:>9.1f}"
                  f"{pct(values, 90) * 1e3:>9.1f}{pct(values, 99) * 1e3:>9.1f}"
                  f"{max(values) * 1e3:>9.1f}")
        print(f"mean {statistics.fmean(everything) * 1e3:.1f} ms")
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
