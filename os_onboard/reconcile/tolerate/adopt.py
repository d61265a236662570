"""not-adopted under the ``adopt`` policy: a VM found on a managed host is
adopted as ``os-onboard plan`` + ``apply`` would adopt it.

The same planner (the mapping decides owner, networks, backends, flavor; a
blocked plan writes nothing and is reported with its reasons) and the same
journaled apply, under apply's lock, so an operator's ``apply`` and the
watcher never interleave. Resumable as ``apply`` is: when the newest plan
holding this VM stopped halfway (a failure, a kill -9), that plan is run
again instead of a new one, which could not see the records already
written as its own. Two kinds of VM are never adopted this way:

* a UUID Nova already has (a server Nova booted) never reaches here
  (drift.find_drift does not call it not-adopted);
* a VM released with ``os-onboard unmanage`` (its journal steps reverted)
  is not taken back: the operator let it go; ``plan`` + ``apply`` adopt it
  again when wanted.

A VM seen running for the first time usually has a NIC without a lease yet
(seconds after its start): adopted then, its port would get no IP. Such a
VM waits ``ADDRESS_WAIT`` seconds from the first pass that saw it, then is
adopted with what there is (a static address never shows as a lease; the
plan notes the NIC, and ip-changed records an IP that shows up later).
"""

from __future__ import annotations

from datetime import datetime

from os_onboard.apply.runner import Applier, ApplyOptions, VmOutcome, apply_lock, vm_done
from os_onboard.exceptions import CloudError
from os_onboard.inventory.models import PowerState
from os_onboard.plan.model import Plan
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome
from os_onboard.state.journal import Journal, StepState
from os_onboard.state.statuses import StepStatus, VmStatus

#: seconds a running VM's NICs may show no IP before it is adopted anyway
ADDRESS_WAIT = 60.0


def adopt(ctx: Context, drift: Drift, now: datetime | None = None) -> Outcome:
    journal = ctx.journal
    if journal is None:
        raise CloudError("the adopt policy needs the state store's journal")
    newest = journal.newest_plan_of(drift.uuid)
    steps = journal.steps(newest) if newest is not None else {}
    if any(state.status == StepStatus.REVERTED for (uuid, _), state in steps.items()
           if uuid == drift.uuid):
        return Outcome(drift, "reported", "released with 'os-onboard unmanage': not adopted "
                       "again by policy ('plan' and 'apply' adopt it)")
    resumed = _unfinished(journal, drift.uuid, newest, steps) if newest is not None else None
    if resumed is not None:
        plan_id, plan = resumed
    else:
        waiting = _without_ip(ctx, drift.uuid)
        waited = ctx.seen_for(drift, now)
        if waiting and waited < ADDRESS_WAIT:
            return Outcome(drift, "deferred", f"NIC {', '.join(waiting)} shows no IP yet "
                           f"({waited:.0f} s of {ADDRESS_WAIT:.0f} s): adopted once it has "
                           "one, or when the wait is over", recheck_in=ADDRESS_WAIT - waited)
        plan, vm_plan = ctx.plan_one(drift.uuid)
        if vm_plan.blocked:
            return Outcome(drift, "reported", "not adopted, the plan blocks it: "
                           + "; ".join(vm_plan.blocked))
        plan_id = journal.save_plan(plan)
    outcome = _run(ctx, journal, plan_id, plan)
    if outcome.status != VmStatus.ADOPTED:
        raise CloudError(f"plan {plan_id}: {outcome.status}: {outcome.detail}")
    return Outcome(drift, "tolerated", f"adopted by plan {plan_id}"
                   + (" (resumed)" if resumed else "") + f", same UUID, as {drift.name}")


def _without_ip(ctx: Context, uuid: str) -> list[str]:
    """MACs of the running VM's NICs that show no address."""
    found = ctx.vm(uuid)
    if found is None or found[1].power_state != PowerState.RUNNING:
        return []
    return [n.mac for n in found[1].nics if not n.addresses]


def _unfinished(journal: Journal, uuid: str, plan_id: int,
                steps: dict[tuple[str, str], StepState]) -> tuple[int, Plan] | None:
    """That plan, cut to this VM, when some step of it is not done."""
    _, plan = journal.load_plan(plan_id)
    vm = next((v for v in plan.vms if v.uuid == uuid), None)
    if vm is None:
        return None
    if vm_done(steps, vm):
        return None  # adopted by it, and since removed from Nova: plan anew
    return plan_id, plan.model_copy(update={"vms": [vm]})


def _run(ctx: Context, journal: Journal, plan_id: int, plan: Plan) -> VmOutcome:
    options = ApplyOptions(parallel=1, nova_python=ctx.nova_python,
                           nova_config=list(ctx.nova_config))
    with apply_lock(ctx.state_url):
        [outcome] = Applier(plan_id, plan, journal, ctx.apply_env(), options).run()
    return outcome
