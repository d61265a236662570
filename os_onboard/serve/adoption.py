"""Plans and applies as jobs of the service (the same code as ``os-onboard plan``
and ``apply``, run by whichever replica claims the job).

A plan job builds the plan from a snapshot, a mapping document given in the
request and OpenStack's state, and saves it in the journal (its id is the
job's result; ``GET /v1/plans/{id}`` shows each VM's steps and blocked
reasons). An apply job runs :class:`~os_onboard.apply.runner.Applier` on a
saved plan under locks - tooz locks ``apply/plan-<id>`` and ``vm/<uuid>`` of
each of its VMs when replicas coordinate (so a plan is never applied twice at
once, nor a VM applied and released at once, whichever replicas are asked),
else the store's file lock - writing per-VM progress. An unmanage job
releases VMs under their ``vm/<uuid>`` locks. The apply
is journaled step by step: a job resumed by another replica after a crash
runs the Applier again, which skips what is done and finishes the rest.

Cancel (``POST /v1/jobs/{id}/cancel``) stops an apply between VMs: the VMs
started finish, the others end ``cancelled`` with nothing written, and the
job ends ``cancelled`` with each VM's progress; applying the plan again goes
on from the journal. An unmanage job stops between two VMs' releases.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from os_onboard.apply.lock import apply_lock
from os_onboard.apply.outcome import ApplyOptions
from os_onboard.apply.release import unmanage
from os_onboard.apply.runner import Applier
from os_onboard.apply.steps import ApplyEnv
from os_onboard.discovery.runner import discover_hosts
from os_onboard.drivers.registry import available_drivers
from os_onboard.exceptions import StateStoreError
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan, read_cloud_view
from os_onboard.serve.jobs import JobContext
from os_onboard.state.credentials import export_registered
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.jobs import JobState
from os_onboard.state.journal import Journal
from os_onboard.state.store import StateStore

LockFactory = Callable[[str], contextlib.AbstractContextManager[bool]]


@dataclass
class AdoptionSettings:
    """What plan and apply jobs need besides the request ([openstack] options)."""

    cloud: Callable[[], Any]  # -> a Cloud (OpenStackCloud of [openstack] cloud)
    nova_python: str | None = None
    nova_config: list[str] = field(default_factory=list)
    host_options: dict[str, Any] = field(default_factory=dict)
    #: a tooz lock by name (Membership.lock) when replicas coordinate
    lock: LockFactory | None = None


def _renames(options: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for driver in available_drivers().values():
        if driver.adoption is not None:
            names.update(driver.adoption.current_names(options))
    return names


def run_plan(store: StateStore, ctx: JobContext, settings: AdoptionSettings
             ) -> tuple[JobState | None, dict[str, Any]]:
    params = ctx.job.params
    snapshot_id, inventory = store.load_snapshot(params.get("snapshot"))
    mapping = Mapping.model_validate(params["mapping"])
    if not ctx.beat({"step": "reading OpenStack"}):
        return None, {}
    view = read_cloud_view(settings.cloud(), mapping)
    plan = build_plan(inventory, snapshot_id, view, mapping,
                      only=set(params.get("vms") or []) or None, mapping_file="(api)",
                      renames=_renames(settings.host_options))
    if not ctx.beat({"step": "saving"}):
        return None, {}
    plan_id = Journal(store).save_plan(plan)
    return JobState.SUCCEEDED, {"plan": plan_id, "snapshot": snapshot_id,
                                "counts": plan.counts()}


@contextlib.contextmanager
def _locked(store: StateStore, settings: AdoptionSettings, names: list[str]) -> Iterator[None]:
    """The tooz locks ``names`` (all or fail) when replicas coordinate, else the
    store's file lock (one apply or unmanage at a time).

    :raises StateStoreError: a lock is held by another replica.
    """
    if settings.lock is None:
        with apply_lock(store.url):
            yield
        return
    with contextlib.ExitStack() as stack:
        for name in names:
            if not stack.enter_context(settings.lock(name)):
                raise StateStoreError(f"{name} is held by another replica (an apply or "
                                      "unmanage of it is running)")
        yield


def run_apply(store: StateStore, ctx: JobContext, settings: AdoptionSettings
              ) -> tuple[JobState | None, dict[str, Any]]:
    params = ctx.job.params
    journal = Journal(store)
    plan_id, plan = journal.load_plan(params["plan"])
    options = ApplyOptions(parallel=int(params.get("parallel", 4)),
                           nova_python=settings.nova_python,
                           nova_config=list(settings.nova_config))
    env = ApplyEnv(cloud=settings.cloud(), host_options=dict(settings.host_options))
    lost: list[bool] = []
    last = [0.0]
    per_vm_total = {vm.uuid: (vm.name, len(vm.steps)) for vm in plan.vms}

    def per_vm() -> dict[str, str]:
        """Each VM's journaled steps done, from the journal (what a resume sees too)."""
        done: dict[str, int] = {}
        for (uuid, _key), step in journal.steps(plan_id).items():
            if uuid and step.status == "done":
                done[uuid] = done.get(uuid, 0) + 1
        return {name: f"{done.get(uuid, 0)}/{total} steps"
                for uuid, (name, total) in per_vm_total.items()}

    def progress(done: int, total: int, note: str) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0 and done < total:  # at most once a second
            return
        last[0] = now
        if not ctx.beat({"done": done, "total": total, "last": note, "vms": per_vm()}):
            lost.append(True)

    locks = [f"apply/plan-{plan_id}", *(f"vm/{vm.uuid}" for vm in plan.vms)]
    # the Applier reads each VM's host again: with its credentials reference, resolved now
    export_registered(HostRegistry(store), sorted({vm.host_uri for vm in plan.vms}))
    with _locked(store, settings, locks):
        outcomes = Applier(plan_id, plan, journal, env, options, progress,
                           cancelled=ctx.cancel_requested).run()
    vms = [{"name": o.name, "uuid": o.uuid, "status": str(o.status), "steps": o.steps_done,
            "detail": o.detail} for o in outcomes]
    finished = sum(1 for v in vms if v["status"] not in ("cancelled", "pending"))
    if lost or not ctx.beat({"done": finished, "total": len(vms), "vms": per_vm()}):
        return None, {}  # another replica took the job over meanwhile: it reports, not us
    failed = [v for v in vms if v["status"] == "failed"]
    cancelled = [v for v in vms if v["status"] == "cancelled"]
    result = {"plan": plan_id, "vms": vms}
    if cancelled:  # what did start finished; the rest waits for the plan to be applied again
        return JobState.CANCELLED, {**result, "cancelled": len(cancelled),
                                    "failed": len(failed)}
    return (JobState.FAILED if failed else JobState.SUCCEEDED), result


def run_unmanage(store: StateStore, ctx: JobContext, settings: AdoptionSettings
                 ) -> tuple[JobState | None, dict[str, Any]]:
    """Release VMs (names from the newest snapshot, or UUIDs), as ``os-onboard
    unmanage`` does: each VM's host read once (read-only), its records removed,
    the VM untouched. Idempotent, so a resumed job simply runs again."""
    names: list[str] = ctx.job.params["vms"]
    try:
        _sid, inventory = store.load_snapshot()
        known = {vm.name: (vm.uuid, h.host.uri) for h in inventory.hosts for vm in h.vms}
        known.update({uuid: (uuid, uri) for uuid, uri in known.values()})
    except StateStoreError:  # no snapshot: UUIDs only
        known = {}
    cloud = settings.cloud()
    hypervisors = {h["node"]: h["service_host"] for h in cloud.hypervisors()}
    targets = [known.get(name, (name, None)) for name in names]
    export_registered(HostRegistry(store), sorted({uri for _, uri in targets if uri}))
    now = discover_hosts(sorted({uri for _, uri in targets if uri}))
    live = {vm.uuid: (h.host.hostname, vm, h.host.uri) for h in now.hosts for vm in h.vms}
    hostnames = {h.host.uri: h.host.hostname for h in now.hosts}
    status: dict[str, str] = {}
    rows = []
    with _locked(store, settings, [f"vm/{uuid}" for uuid, _ in targets]):
        volumes = cloud.volumes()
        pairs = list(zip(names, targets, strict=True))
        for at, (name, (uuid, uri)) in enumerate(pairs):
            if ctx.cancel_requested():  # between VMs: a release is never cut in half
                for left, (left_uuid, _uri) in pairs[at:]:
                    status[left] = "cancelled"
                    rows.append({"name": left, "uuid": left_uuid, "status": "cancelled",
                                 "removed": [], "kept": [], "error": ""})
                ctx.beat({"done": at, "total": len(names), "vms": status})
                return JobState.CANCELLED, {"vms": rows}
            hostname, vm, uri = live.get(uuid, (hostnames.get(uri or ""), None, uri))
            host = ctx.job.params.get("host") or hypervisors.get(hostname or "")
            result = unmanage(cloud, uuid, host=host, host_uri=uri,
                              host_options=dict(settings.host_options),
                              nova_python=settings.nova_python,
                              nova_config=list(settings.nova_config), live_vm=vm,
                              volumes=volumes)
            if not result.error:
                Journal(store).forget_vm(uuid)
            status[name] = "failed" if result.error else "released"
            rows.append({"name": name, "uuid": uuid, "status": status[name],
                         "removed": result.removed, "kept": result.kept,
                         "error": result.error})
            if not ctx.beat({"done": len(rows), "total": len(names), "vms": status}):
                return None, {}
    failed = any(r["error"] for r in rows)
    return (JobState.FAILED if failed else JobState.SUCCEEDED), {"vms": rows}
