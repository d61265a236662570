"""Plans and applies as jobs of the service (the same code as ``os-onboard plan``
and ``apply``, run by whichever replica claims the job).

A plan job builds the plan from a snapshot, a mapping document given in the
request and OpenStack's state, and saves it in the journal (its id is the
job's result; ``GET /v1/plans/{id}`` shows each VM's steps and blocked
reasons). An apply job runs :class:`~os_onboard.apply.runner.Applier` on a
saved plan under a lock - a tooz lock ``apply/plan-<id>`` when replicas
coordinate (so a plan is never applied twice at once, whichever replicas
are asked), else the store's file lock - writing per-VM progress. The apply
is journaled step by step: a job resumed by another replica after a crash
runs the Applier again, which skips what is done and finishes the rest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from os_onboard.apply.lock import apply_lock
from os_onboard.apply.outcome import ApplyOptions
from os_onboard.apply.runner import Applier
from os_onboard.apply.steps import ApplyEnv
from os_onboard.drivers.registry import available_drivers
from os_onboard.exceptions import StateStoreError
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan, read_cloud_view
from os_onboard.serve.jobs import JobContext
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
def _locked(store: StateStore, settings: AdoptionSettings, plan_id: int) -> Iterator[None]:
    if settings.lock is None:
        with apply_lock(store.url):
            yield
        return
    with settings.lock(f"apply/plan-{plan_id}") as taken:
        if not taken:
            raise StateStoreError(f"plan {plan_id} is being applied by another replica")
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

    with _locked(store, settings, plan_id):
        outcomes = Applier(plan_id, plan, journal, env, options, progress).run()
    vms = [{"name": o.name, "uuid": o.uuid, "status": str(o.status), "steps": o.steps_done,
            "detail": o.detail} for o in outcomes]
    if lost or not ctx.beat({"done": len(vms), "total": len(vms), "vms": per_vm()}):
        return None, {}  # another replica took the job over meanwhile: it reports, not us
    failed = [v for v in vms if v["status"] == "failed"]
    return (JobState.FAILED if failed else JobState.SUCCEEDED), {"plan": plan_id, "vms": vms}
