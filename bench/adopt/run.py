#!/usr/bin/env python3
"""Adoption benchmark: records-level throughput of ``os-onboard plan`` + ``apply``.

    eval "$(lab/lab env --export)"       # optional: run.py reads the lab's env itself
    .venv/bin/python bench/adopt/run.py                # 200 VMs, naive baseline on 20
    .venv/bin/python bench/adopt/run.py --quick        # 40 VMs, naive on 5 (smoke run)

The lab has three real guests, so the estate is simulated honestly on both sides:

* OpenStack side: an extra nova-compute (``compute_driver = fake.FakeDriver``,
  host and node ``--host``, default ``bench-adopt-1``) started by this script
  from a copy of the lab's nova-compute-b.conf (same conductor/RabbitMQ,
  Placement, Neutron credentials), with its own state_path under a temporary
  directory. It registers a real compute service, compute node and Placement
  resource provider; it is disabled for the scheduler (nobody else's server
  lands on it) and stopped (by PID) and deleted at the end.
* Hypervisor side: a libvirt test-driver node file (``test:///abs/path.xml``,
  estate.py) per mode. The test driver reports the hostname of the process
  that opens it, so the script re-executes itself in its own UTS namespace
  (``unshare --uts``) whose hostname is ``--host``: discovery and apply's
  read-only recheck then see the same hypervisor name as the compute node.
* Network: onboard_bridge binds only flat ``physnet1`` here, and Neutron allows
  one flat network per physical network, which the lab's ``onboard-lab``
  already is: the VMs' ports go on ``onboard-lab``, with fixed IPs in a
  benchmark subnet (``--cidr``, DHCP off, *no allocation pool*, so nobody
  else's port gets an address from it), deleted at the end.
* Disks: each VM's root disk is a local file (the instance-dir step links it
  under a temporary ``--instances-path``); no Cinder volumes.

Each mode runs in its own process (modes.py) from an inventory snapshot made
by os-onboard's discovery of the node file, in a temporary state store:
``ours`` (plan + Applier, i.e. ``os-onboard plan`` + ``apply --parallel P``)
with each of ``--parallel``, and ``naive`` (the same plan and the same
executors, one VM after the other, one Nova-side helper process per VM and
command) on the first ``--naive-vms``. HTTP requests are counted in every
process of a mode, helpers included (reqcount/sitecustomize.py, through
PYTHONPATH). After each mode the records are checked (servers, ACTIVE bound
ports, Placement allocations) and removed in bulk (allocations, one release
helper run, ports, instance links).

Targets: >= 5 VMs/s for plan + apply, >= 3x the naive run's VMs/s. Printed as
PASS/MISS, never asserted. Exit status: 0 when every mode adopted every VM and
the records checked out, 1 otherwise, 2 when the lab is not usable.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "bench" / "discovery"))
sys.path.insert(0, str(HERE))

import estate  # noqa: E402  (bench/adopt)
from child import run_child  # noqa: E402  (bench/discovery)

TARGET_RATE = 5.0
TARGET_RATIO = 3.0
NS_ENV = "OS_ONBOARD_BENCH_ADOPT_UTS"
SUBNET = "bench-adopt-v4"
PROJECT = "bench-adopt"


def log(msg: str = "") -> None:
    print(msg, flush=True)


# -- environment ---------------------------------------------------------------------


def reexec_in_uts_namespace(host: str) -> int | None:
    """Run this script again in a new UTS namespace named ``host``; None when inside."""
    if os.environ.get(NS_ENV) == host:
        socket.sethostname(host)
        return None
    if os.geteuid() != 0:
        log("needs root: the test driver's hostname comes from a UTS namespace (unshare --uts)")
        return 2
    env = {**os.environ, NS_ENV: host}
    return subprocess.call(["unshare", "--uts", "--", sys.executable, *sys.argv], env=env)


def load_lab_env() -> None:
    if os.environ.get("OS_ONBOARD_NOVA_PYTHON") and os.environ.get("LAB_NOVA_COMPUTE_CONF_B"):
        return
    out = subprocess.run(["bash", "-c", f'eval "$({REPO}/lab/lab env --export)" && env -0'],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"lab/lab env failed: {out.stderr.strip()[-300:]}")
    for entry in out.stdout.split("\0"):
        key, sep, value = entry.partition("=")
        if sep and (key.startswith(("LAB_", "OS_"))):
            os.environ.setdefault(key, value)


# -- the benchmark's cloud-side fixtures ---------------------------------------------------


class Fixture:
    """The fake compute, project and subnet; the per-mode cleanup; the teardown."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from os_onboard.cloud.openstack import OpenStackCloud

        self.args, self.tmp, self.host = args, tmp, args.host
        self.cloud = OpenStackCloud(None)
        self.conn = self.cloud._conn  # the SDK connection, for set-up calls os-onboard lacks
        self.instances = tmp / "instances"
        self.instances.mkdir(parents=True, exist_ok=True)
        self.compute: subprocess.Popen | None = None
        self.compute_log = tmp / "nova-compute-bench.log"
        self.network_id = ""
        self.subnet_id = ""
        self.project_id = ""
        self.created_project = False
        self.had_placeholder = self.cloud.image_by_name("os-onboard-placeholder") is not None

    # -- set-up ---------------------------------------------------------------------
    def start_compute(self) -> None:
        src = configparser.ConfigParser(interpolation=None)
        src.read(os.environ["LAB_NOVA_COMPUTE_CONF_B"])
        state = self.tmp / "nova-state"
        (state / "lock").mkdir(parents=True, exist_ok=True)
        src.remove_section("libvirt")
        src["DEFAULT"].update({"host": self.host, "my_ip": "127.0.0.1", "debug": "true",
                               "state_path": str(state), "instances_path": str(self.instances),
                               "compute_driver": "fake.FakeDriver"})
        src["oslo_concurrency"]["lock_path"] = str(state / "lock")
        conf = self.tmp / "nova-compute-bench.conf"
        with open(conf, "w") as fh:
            fh.write("# nova-compute of bench/adopt: fake driver, host = node = "
                     f"{self.host}\n")
            src.write(fh)
        conf.chmod(0o600)
        venv = Path(os.environ["LAB_OPENSTACK_BIN"])
        env = {"PATH": f"{venv.parent.parent}/bin:{venv}:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        with open(self.compute_log, "ab") as out:
            self.compute = subprocess.Popen(
                [str(venv / "nova-compute"), "--config-file", str(conf)], env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        # Not hypervisors() until the compute consumes RPC: nova-api's hypervisor list
        # (microversion >= 2.88) asks every compute for its uptime over RPC, and a
        # compute whose service row is up before its RPC server exists makes that
        # call time out (HTTP 500 after 60 s). Its debug log says when it creates it.
        deadline = time.monotonic() + self.args.compute_timeout
        while True:
            up = any(s["host"] == self.host and s["state"] == "up"
                     for s in self.cloud.compute_services())
            if up and "Creating RPC server for service compute" in \
                    self.compute_log.read_text(errors="replace"):
                time.sleep(2)
                break
            if self.compute.poll() is not None:
                raise RuntimeError(f"nova-compute (fake) exited {self.compute.returncode}; "
                                   f"see {self.compute_log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nova-compute (fake) not up after "
                                   f"{self.args.compute_timeout} s; see {self.compute_log}")
            time.sleep(2)
        subprocess.run([*shlex.split(os.environ["LAB_NOVA_MANAGE"]), "cell_v2", "discover_hosts"],
                       capture_output=True, check=False)
        for service in self.conn.compute.services(host=self.host, binary="nova-compute"):
            self.conn.compute.disable_service(
                service, self.host, "nova-compute",
                "os-onboard bench/adopt: fake driver, not for scheduling")
        log(f"  nova-compute (fake driver) pid {self.compute.pid}: compute node {self.host} "
            f"up (provider {self.hypervisor()['uuid']}), disabled for the scheduler")

    def hypervisor(self) -> dict | None:
        return next((h for h in self.cloud.hypervisors() if h["node"] == self.host), None)

    def make_project_and_subnet(self) -> None:
        project = self.conn.identity.find_project(PROJECT)
        self.created_project = project is None or (project.description or "").startswith(
            "os-onboard bench/adopt")
        if project is None:
            project = self.conn.identity.create_project(
                name=PROJECT, domain_id="default",
                description="os-onboard bench/adopt (deleted at the end)")
        self.project_id = project.id
        net = self.conn.network.find_network(self.args.network)
        if net is None:
            raise RuntimeError(f"Neutron network {self.args.network} not found")
        self.network_id = net.id
        sub = self.conn.network.find_subnet(SUBNET, network_id=net.id)
        if sub is None:
            sub = self.conn.network.create_subnet(
                name=SUBNET, network_id=net.id, cidr=self.args.cidr, ip_version=4,
                is_dhcp_enabled=False, allocation_pools=[], gateway_ip=None,
                description="os-onboard bench/adopt: fixed IPs only (no pool); deleted at "
                            "the end")
        self.subnet_id = sub.id
        log(f"  project {PROJECT} {self.project_id}; subnet {SUBNET} {self.args.cidr} on "
            f"{self.args.network} (DHCP off, no allocation pool)")

    # -- per mode --------------------------------------------------------------------
    def verify(self, vms: list[dict]) -> dict:
        """What OpenStack holds for these VMs now."""
        uuids = {v["uuid"] for v in vms}
        servers = {u: s for u, s in self.cloud.servers().items() if u in uuids}
        marked = [s for s in servers.values() if "os-onboard:adopted" in s["metadata"]
                  and s["host"] == self.host]
        ports = [p for p in self.cloud.ports(network_id=self.network_id)
                 if p["device_id"] in uuids]
        bound = [p for p in ports if p["status"] == "ACTIVE" and p["vif_type"] == "bridge"
                 and p["host"] == self.host and p["fixed_ips"]
                 and p["fixed_ips"][0]["subnet_id"] == self.subnet_id]
        provider = (self.hypervisor() or {}).get("uuid")
        allocs = self.conn.placement.get(f"/resource_providers/{provider}/allocations",
                                         microversion="1.38").json()["allocations"]
        return {"servers": len(marked), "statuses": dict(Counter(s["status"] for s in marked)),
                "ports": len(ports), "ports_bound": len(bound),
                "allocations": len([c for c in allocs if c in uuids])}

    def cleanup_vms(self, uuids: list[str]) -> float:
        """Bulk removal of what the benchmark adopted (os-onboard's unmanage order)."""
        from os_onboard.cloud.nova_helper import run_helper

        t0 = time.perf_counter()
        if not uuids:
            return 0.0
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self.cloud.delete_allocations, uuids))
        results = run_helper("release", [], None, [], timeout=120 + 2 * len(uuids),
                             stdin=[{"uuid": u, "host": self.host} for u in uuids])
        errors = [r for r in results if "error" in r]
        if errors:
            log(f"  cleanup: release failed for {len(errors)}: {errors[0]['error']}")
        self.delete_ports(set(uuids))
        for child in self.instances.iterdir():
            shutil.rmtree(child, ignore_errors=True)
        return time.perf_counter() - t0

    def delete_ports(self, device_ids: set[str] | None = None) -> None:
        """The benchmark's ports: these VMs', and any named and MAC'd like ours."""
        ports = [p["id"] for p in self.cloud.ports(network_id=self.network_id)
                 if p["device_id"] in (device_ids or set())
                 or (p["name"].startswith(estate.NAME_PREFIX)
                     and p["mac"].startswith(estate.MAC_PREFIX))]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self.cloud.delete_port, ports))

    def leftovers(self) -> list[str]:
        """Servers on the fake host (a crashed earlier run); refuses unmarked ones."""
        found = []
        for uuid, server in self.cloud.servers().items():
            if server["host"] == self.host:
                if "os-onboard:adopted" not in server["metadata"]:
                    raise RuntimeError(f"server {uuid} on {self.host} was not adopted by "
                                       "os-onboard; not touching it")
                found.append(uuid)
        return found

    # -- teardown --------------------------------------------------------------------
    def teardown(self) -> None:
        steps = []

        def attempt(what: str, fn) -> None:
            try:
                fn()
                steps.append(what)
            except Exception as exc:  # keep tearing down
                log(f"  teardown: {what} failed: {type(exc).__name__}: {exc}")

        attempt("adopted records", lambda: self.cleanup_vms(self.leftovers()))
        if self.network_id:
            attempt("ports", self.delete_ports)
        if self.compute is not None and self.compute.poll() is None:
            attempt("nova-compute stopped", self.stop_compute)
        attempt("compute service deleted", self.delete_service)
        attempt("flavors", self.delete_flavors)
        if not self.had_placeholder:
            attempt("placeholder image", lambda: [
                self.cloud.delete_image(i["id"]) for i in [self.cloud.image_by_name(
                    "os-onboard-placeholder")] if i])
        if self.subnet_id:
            attempt("subnet", lambda: self.conn.network.delete_subnet(self.subnet_id))
        if self.created_project and self.project_id:
            attempt("project", lambda: self.conn.identity.delete_project(self.project_id))
        log(f"  teardown: {', '.join(steps)}")

    def stop_compute(self) -> None:
        assert self.compute is not None
        self.compute.send_signal(signal.SIGTERM)
        try:
            self.compute.wait(30)
        except subprocess.TimeoutExpired:
            self.compute.kill()
            self.compute.wait(10)

    def delete_service(self) -> None:
        for service in self.conn.compute.services(host=self.host, binary="nova-compute"):
            self.conn.compute.delete_service(service)
        left = self.conn.placement.get("/resource_providers", params={"name": self.host},
                                       microversion="1.38").json()["resource_providers"]
        for rp in left:
            self.conn.placement.delete(f"/resource_providers/{rp['uuid']}",
                                       microversion="1.38")

    def delete_flavors(self) -> None:
        prefix = f"{estate.NAME_PREFIX}flavor-"
        for flavor in self.cloud.flavors():
            if flavor["name"].startswith(prefix):
                self.conn.compute.delete_flavor(flavor["id"])


# -- the lab's services: workers and CPU ------------------------------------------------

#: The services an adoption keeps busy (pid files of lab/lib/openstack.sh).
SERVICES = ("neutron-server", "nova-api", "nova-conductor", "placement", "keystone",
            "mariadb", "rabbitmq-beam")


def _run_dir() -> Path:
    return Path(os.environ.get("LAB_STATE_DIR", "/var/lib/os-onboard-lab")) / "openstack" / "run"


def _service_pids() -> dict[str, int]:
    pids = {}
    for name in SERVICES:
        try:
            pids[name] = int((_run_dir() / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of each service, its worker processes included."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    out = {}
    for name, pid in _service_pids().items():
        if pid in stats:
            out[name] = stats[pid][1] + sum(cpu for ppid, cpu in stats.values() if ppid == pid)
    return out


def service_workers() -> str:
    """The API worker processes each service runs now (a real cloud runs several)."""
    parts = []
    children: Counter = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if "worker" in title and (st := _stat(int(entry.name))) is not None:
            children[st[0]] += 1
    for name, pid in _service_pids().items():
        if name in ("neutron-server", "nova-api", "placement", "keystone"):
            parts.append(f"{name} {children.get(pid, 0)}")
    return ", ".join(parts)


# -- one mode -----------------------------------------------------------------------


def snapshot(tmp: Path, label: str, tag: int, count: int, cidr: str) -> tuple[str, list[dict]]:
    """Node file -> os-onboard discovery -> a fresh state store with that snapshot."""
    from os_onboard.discovery.runner import discover_hosts
    from os_onboard.state import StateStore

    node = tmp / f"node-{label}.xml"
    vms = estate.write_node(node, label, tag, count, cidr)
    inventory = discover_hosts([f"test://{node}"])
    found = [vm for h in inventory.hosts for vm in h.vms]
    hostnames = {h.host.hostname for h in inventory.hosts}
    if len(found) != count or hostnames != {socket.gethostname()}:
        raise RuntimeError(f"discovery of {node}: {len(found)} VMs, hostnames {hostnames}, "
                           f"problems {[p.message for p in inventory.problems][:3]}")
    url = f"sqlite:///{tmp}/state-{label}.db"
    StateStore(url).save_snapshot(inventory)
    return url, vms


def read_reqlog(path: Path) -> dict:
    mode, helpers = Counter(), Counter()
    processes = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            helper = "os_onboard_nova" in " ".join(entry["argv"])
            processes["helper" if helper else "mode"] += 1
            (helpers if helper else mode).update(entry["counts"])
    return {"mode": dict(mode), "helpers": dict(helpers), "processes": dict(processes)}


def run_one(fx: Fixture, args: argparse.Namespace, tmp: Path, label: str, tag: int,
            count: int, mode_args: list[str], timeout: float) -> dict:
    url, vms = snapshot(tmp, label, tag, count, args.cidr)
    mapping = tmp / f"mapping-{label}.yaml"
    mapping.write_text(estate.mapping_yaml(PROJECT, args.network, SUBNET))
    reqlog = tmp / f"requests-{label}.jsonl"
    env = {**os.environ, "OS_ONBOARD_BENCH_REQLOG": str(reqlog),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE / "reqcount"),
                                                       os.environ.get("PYTHONPATH")]))}
    cpu0 = service_cpu()
    result = run_child([sys.executable, str(HERE / "modes.py"), *mode_args,
                        "--state-url", url, "--mapping", str(mapping),
                        "--instances-path", str(fx.instances)], timeout, env=env)
    cpu1 = service_cpu()
    result["service_cpu_s"] = {k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0}
    result["requests"] = read_reqlog(reqlog)
    result["check"] = fx.verify(vms)
    result["cleanup_s"] = fx.cleanup_vms([v["uuid"] for v in vms])
    result["expected"] = count
    return result


# -- report -------------------------------------------------------------------------


def total_requests(result: dict) -> int:
    r = result.get("requests", {})
    return sum(r.get("mode", {}).values()) + sum(r.get("helpers", {}).values())


def complete(result: dict) -> bool:
    c = result.get("check", {})
    n = result.get("expected", -1)
    return ("error" not in result and result.get("statuses", {}).get("adopted") == n
            and c.get("servers") == n and c.get("ports_bound") == n
            and c.get("allocations") == n)


def rate(result: dict) -> float:
    return result["expected"] / result["wall_s"] if result.get("wall_s") else 0.0


def by_service(counts: dict) -> str:
    services = Counter()
    for key, n in counts.items():
        services[key.split()[0]] += n
    return ", ".join(f"{s} {n}" for s, n in services.most_common())


def report(rows: list[tuple[str, dict]]) -> int:
    log()
    log(f"{'mode':<22} {'VMs':>5} {'plan s':>7} {'apply s':>8} {'wall s':>7} {'VMs/s':>7} "
        f"{'API/VM':>7} {'helpers':>7} {'RSS MiB':>8} {'helper RSS':>10}  check")
    ok = True
    for label, r in rows:
        if "error" in r:
            log(f"{label:<22} ERROR {r['error']}")
            ok = False
            continue
        good = complete(r)
        ok &= good
        log(f"{label:<22} {r['expected']:>5} {r['plan_s']:>7.2f} {r['apply_s']:>8.2f} "
            f"{r['wall_s']:>7.2f} {rate(r):>7.2f} {total_requests(r) / r['expected']:>7.1f} "
            f"{r['helper_runs']:>7} {r['peak_rss_mib']:>8.0f} {r['helper_peak_rss_mib']:>10.0f}"
            f"  {'ok' if good else 'INCOMPLETE'}")
        if not good:
            log(f"    statuses {r.get('statuses')}, check {r.get('check')}, "
                f"examples {r.get('examples')}")
    log()
    for label, r in rows:
        if "error" in r:
            continue
        req = r["requests"]
        log(f"{label}: {total_requests(r)} HTTP requests ({by_service(req['mode'])}; "
            f"helpers: {by_service(req['helpers']) or 'none'}), "
            f"{r['helper_runs']} helper run(s); "
            f"servers {r['check']['statuses']}; stale-plan retries "
            f"{r.get('stale_retries', 0)}; cleanup {r['cleanup_s']:.1f} s")
        if r.get("timers"):
            for key, (calls, secs) in sorted(r["timers"].items()):
                log(f"    {key:<40} {calls:>6} call(s) {secs:>8.2f} s")
        cpu = {"mode": r.get("cpu_s", 0.0), "helpers": r.get("helper_cpu_s", 0.0),
               **r.get("service_cpu_s", {})}
        log(f"    CPU s while it ran (total {sum(cpu.values()):.1f} of "
            f"{os.cpu_count()} x {r.get('total_s', 0):.1f} s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])
                        if v >= 0.05))
    ours = [(label, r) for label, r in rows if r.get("mode") == "ours" and complete(r)]
    naive = next((r for _label, r in rows if r.get("mode") == "naive" and complete(r)), None)
    if ours:
        best_label, best = max(ours, key=lambda lr: rate(lr[1]))
        log()
        verdict = "PASS" if rate(best) >= TARGET_RATE else "MISS"
        log(f"target >= {TARGET_RATE:g} VMs/s (plan + apply): {best_label} {rate(best):.2f} "
            f"VMs/s  {verdict}")
        if naive:
            ratio = rate(best) / rate(naive)
            log(f"target >= {TARGET_RATIO:g}x the naive run: {ratio:.1f}x "
                f"({rate(best):.2f} / {rate(naive):.2f} VMs/s)  "
                f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}")
    return 0 if ok else 1


# -- main ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vms", type=int, default=200, help="VMs adopted by ours (200)")
    p.add_argument("--naive-vms", type=int, default=20,
                   help="VMs adopted by the naive run (20; it takes ~5 s per VM)")
    p.add_argument("--parallel", default="4",
                   help="comma-separated apply --parallel values for ours (4)")
    p.add_argument("--quick", action="store_true", help="40 VMs, naive on 5")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--host", default="bench-adopt-1",
                   help="the fake nova-compute's host and node name (bench-adopt-1)")
    p.add_argument("--network", default=os.environ.get("LAB_OPENSTACK_PROVIDER_NETWORK",
                                                       "onboard-lab"),
                   help="Neutron network the ports go on (the lab's flat physnet1 network)")
    p.add_argument("--cidr", default="10.99.0.0/16", help="the benchmark subnet (10.99.0.0/16)")
    p.add_argument("--compute-timeout", type=float, default=180)
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.quick:
        args.vms, args.naive_vms = 40, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rc = reexec_in_uts_namespace(args.host)
    if rc is not None:
        return rc
    load_lab_env()
    tmp = Path(tempfile.mkdtemp(prefix="os-onboard-bench-adopt-"))
    os.chmod(tmp, 0o755)
    log(f"bench/adopt: {args.vms} VMs (ours), {args.naive_vms} (naive); host {args.host} "
        f"(UTS namespace); temporary dir {tmp}")
    t0 = time.perf_counter()
    try:
        fx = Fixture(args, tmp)
    except Exception as exc:
        log(f"the lab's OpenStack is not usable: {type(exc).__name__}: {exc}")
        return 2
    rows: list[tuple[str, dict]] = []
    try:
        left = fx.leftovers()
        if left:
            log(f"  removing {len(left)} server(s) left on {args.host} by an earlier run")
        fx.make_project_and_subnet()
        fx.cleanup_vms(left)
        fx.delete_service()  # an earlier run's: nova-compute refuses a "lost" node identity
        fx.start_compute()
        log(f"  set-up done in {time.perf_counter() - t0:.1f} s")
        log(f"  the lab's API workers: {service_workers()} (a real deployment runs several "
            "per service, on more than this machine's "
            f"{os.cpu_count()} CPUs)")
        for tag, parallel in enumerate(args.parallel.split(","), start=1):
            label = f"ours --parallel {parallel}"
            log(f"running {label} ({args.vms} VMs) ...")
            rows.append((label, run_one(fx, args, tmp, f"o{parallel}", tag, args.vms,
                                        ["ours", "--parallel", parallel],
                                        timeout=120 + 3 * args.vms)))
        if not args.skip_naive:
            log(f"running naive ({args.naive_vms} VMs) ...")
            rows.append(("naive (1 VM at a time)", run_one(
                fx, args, tmp, "n", 15, args.naive_vms, ["naive"],
                timeout=120 + 15 * args.naive_vms)))
    except Exception as exc:
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        rows.append(("(set-up)", {"error": str(exc)}))
    finally:
        fx.teardown()
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    rc = report(rows)
    log(f"\ntotal {time.perf_counter() - t0:.0f} s (set-up, modes, checks, clean-ups, teardown)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
