"""One adoption mode, in its own process (peak RSS and request counts are its own).

    python modes.py ours  --state-url URL --mapping F --instances-path D [--parallel P]
    python modes.py naive --state-url URL --mapping F --instances-path D

Both start from the newest inventory snapshot of the state store and make the
plan the same way (``os-onboard plan``: CloudView.read + build_plan, saved in
the journal), then:

* ours: ``os_onboard.apply.runner.Applier`` - what ``os-onboard apply`` runs;
* naive: the same records through the same executors (so the same public API
  calls), one VM after the other, no journal, and the Nova-side helper run
  once per VM and command (adopt, then network_cache): what a script adopting
  one VM at a time does.

Prints one line ``RESULT {json}``: wall time of plan and apply, outcomes,
phase times, journal reads/writes (ours), peak RSS of the mode and of its
largest helper process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections import Counter


def _finish(result: dict) -> int:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["peak_rss_mib"] = me.ru_maxrss / 1024
    result["helper_peak_rss_mib"] = kids.ru_maxrss / 1024
    result["cpu_s"] = me.ru_utime + me.ru_stime
    result["helper_cpu_s"] = kids.ru_utime + kids.ru_stime
    print("RESULT " + json.dumps(result), flush=True)
    return 0


class Timers:
    """Wall time per label (phases) and thread time per label (journal calls)."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self.lock = threading.Lock()

    def wrap(self, owner: object, name: str, label=None) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            what = label(*args, **kwargs) if label else name
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds[what] += time.perf_counter() - t0
                    self.calls[what] += 1

        setattr(owner, name, timed)


def make_plan(args: argparse.Namespace, cloud, store):
    from os_onboard.mapping.model import load_mapping
    from os_onboard.plan.builder import build_plan
    from os_onboard.plan.cloudview import CloudView
    from os_onboard.state.journal import Journal

    snapshot_id, inventory = store.load_snapshot()
    mapping = load_mapping(args.mapping)
    view = CloudView.read(cloud, {o.project for o in mapping.owners},
                          {o.user for o in mapping.owners if o.user})
    plan = build_plan(inventory, snapshot_id, view, mapping, mapping_file=args.mapping)
    return Journal(store).save_plan(plan), plan


def run_ours(args: argparse.Namespace) -> int:
    from os_onboard.apply import steps as ex
    from os_onboard.apply.runner import Applier, ApplyOptions, StalePlanError, apply_lock
    from os_onboard.cloud.openstack import OpenStackCloud
    from os_onboard.state import StateStore
    from os_onboard.state.journal import Journal

    timers = Timers()
    # Thread time inside the journal (reads: steps(); writes: record()).
    timers.wrap(Journal, "steps", lambda self, plan_id: "journal.steps (reads)")
    timers.wrap(Journal, "record", lambda self, *a, **k: "journal.record (writes)")
    timers.wrap(Applier, "_recheck_hypervisors", lambda *a: "phase: recheck hypervisors")
    timers.wrap(Applier, "_run_shared", lambda *a: "phase: shared records")
    timers.wrap(Applier, "_parallel", lambda self, vms, fn: f"phase: {fn.__name__.lstrip('_')}")
    timers.wrap(Applier, "_batch",
                lambda self, vms, kind, command, items: f"helper {command} (main thread)")
    timers.wrap(Applier, "_pipeline", lambda *a: "phase: pipeline (ports .. allocations)")
    timers.wrap(Applier, "_prepare_chunk", lambda *a: "chunk: ports + disks (thread time)")
    timers.wrap(Applier, "_bulk_allocations", lambda *a: "chunk: allocations (thread time)")
    for name in ("ensure_port", "ensure_host_step", "ensure_allocation", "create_ports",
                 "create_allocations"):
        timers.wrap(ex, name, lambda *a, name=name: f"executor: {name} (thread time)")
    t_start = time.perf_counter()
    cloud = OpenStackCloud(None)
    store = StateStore(args.state_url)
    journal = Journal(store)
    retries = 0
    while True:
        t0 = time.perf_counter()
        plan_id, plan = make_plan(args, cloud, store)
        plan_s = time.perf_counter() - t0
        options = ApplyOptions(parallel=args.parallel)
        env = ex.ApplyEnv(cloud=cloud, host_options={"instances_path": args.instances_path})
        t1 = time.perf_counter()
        try:
            with apply_lock(store.url):
                outcomes = Applier(plan_id, plan, journal, env, options).run()
        except StalePlanError:
            # Someone else changed the shared lab between our plan and apply.
            retries += 1
            if retries > 3:
                raise
            continue
        apply_s = time.perf_counter() - t1
        break
    total_s = time.perf_counter() - t_start
    statuses = Counter(o.status for o in outcomes)
    failed = [f"{o.name}: {o.detail}" for o in outcomes if o.status not in ("adopted",)][:5]
    return _finish({
        "mode": "ours", "parallel": args.parallel, "vms": len(plan.vms),
        "blocked": [f"{v.name}: {'; '.join(v.blocked)}" for v in plan.vms if v.blocked][:3],
        "statuses": dict(statuses), "examples": failed, "plan_s": plan_s,
        "apply_s": apply_s, "wall_s": plan_s + apply_s, "total_s": total_s,
        "stale_retries": retries, "helper_runs": 2,
        "timers": {k: [timers.calls[k], round(v, 4)] for k, v in timers.seconds.items()}})


def run_naive(args: argparse.Namespace) -> int:
    from os_onboard.apply import steps as ex
    from os_onboard.apply.runner import Applier, ApplyOptions
    from os_onboard.cloud.nova_helper import run_helper
    from os_onboard.cloud.openstack import OpenStackCloud
    from os_onboard.discovery.runner import discover_hosts
    from os_onboard.exceptions import OnboardError
    from os_onboard.plan.model import Op, StepKind
    from os_onboard.state import StateStore
    from os_onboard.state.journal import Journal

    t_start = time.perf_counter()
    cloud = OpenStackCloud(None)
    store = StateStore(args.state_url)
    t0 = time.perf_counter()
    plan_id, plan = make_plan(args, cloud, store)
    plan_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    env = ex.ApplyEnv(cloud=cloud, host_options={"instances_path": args.instances_path})
    env.hypervisors = {h["node"]: h for h in cloud.hypervisors()}
    env.default_user_id = cloud.current_ids()[1]
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # The shared records (flavors, image) once, with the same code as ours.
    shared = Applier(plan_id, plan, Journal(store), env, ApplyOptions())
    for step in plan.shared:
        env.shared[step.key] = shared._shared(step)
    todo = [v for v in plan.vms if v.op is Op.CREATE]
    # The same read-only recheck as ours (not an OpenStack call).
    now = discover_hosts(sorted({v.host_uri for v in todo}))
    live = {vm.uuid: vm.power_state for h in now.hosts for vm in h.vms}
    statuses: Counter = Counter()
    errors = []
    helper_runs = 0
    for vm in todo:
        if live.get(vm.uuid) != vm.power_state:
            statuses["skipped"] += 1
            continue
        results: dict[str, dict] = {}
        try:
            for step in vm.steps:
                if step.kind is StepKind.PORT:
                    results[step.key] = ex.ensure_port(env, vm, step)
                elif step.kind is StepKind.HOST:
                    results[step.key] = ex.ensure_host_step(env, vm, step, results)
            server = next(s for s in vm.steps if s.kind is StepKind.SERVER)
            item = ex.server_item(env, vm, server, results, when)
            helper_runs += 1
            [res] = run_helper("adopt", [], None, [], stdin=[item])
            if "error" in res:
                raise RuntimeError(res["error"])
            alloc = next(s for s in vm.steps if s.kind is StepKind.ALLOCATION)
            flavor = env.shared[server.params["flavor"]]
            ex.ensure_allocation(env, vm, flavor, alloc.params["project_id"],
                                 alloc.params["user_id"] or env.default_user_id)
            helper_runs += 1
            [res] = run_helper("network_cache", [], None, [],
                               stdin=[{"uuid": vm.uuid, "host": vm.host}])
            if "error" in res:
                raise RuntimeError(res["error"])
            statuses["adopted"] += 1
        except (OnboardError, RuntimeError) as exc:
            statuses["failed"] += 1
            errors.append(f"{vm.name}: {exc}")
    apply_s = time.perf_counter() - t1
    return _finish({
        "mode": "naive", "vms": len(plan.vms), "statuses": dict(statuses),
        "examples": errors[:5], "plan_s": plan_s, "apply_s": apply_s,
        "wall_s": plan_s + apply_s, "total_s": time.perf_counter() - t_start,
        "helper_runs": helper_runs, "timers": {}})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["ours", "naive"])
    p.add_argument("--state-url", required=True)
    p.add_argument("--mapping", required=True)
    p.add_argument("--instances-path", required=True)
    p.add_argument("--parallel", type=int, default=4)
    args = p.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run_ours(args) if args.mode == "ours" else run_naive(args)


if __name__ == "__main__":
    sys.exit(main())
