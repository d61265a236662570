"""resized: vCPUs or memory changed out of band (``virsh setvcpus``/``setmem``...).

The flavor is chosen by the planner's own flavor policy (an exact match is
reused, else a private flavor per shape, or blocked under reuse-only), the
Nova instance and its request spec take it (Nova rebuilds the domain and
schedules moves from these), then the Placement allocation is rewritten on
the same provider with the new amounts. Nothing Nova reads on its power
paths changes, so there is nothing to race.
"""

from __future__ import annotations

from os_onboard.apply.steps import ensure_allocation
from os_onboard.exceptions import CloudError
from os_onboard.plan.model import Op, SharedKind, StepKind
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome


def resized(ctx: Context, drift: Drift) -> Outcome:
    plan, vm_plan = ctx.plan_as_new(drift.uuid)
    server = next(s for s in vm_plan.steps if s.kind is StepKind.SERVER)
    step = next(s for s in plan.shared
                if s.kind is SharedKind.FLAVOR and s.key == server.params["flavor"])
    p = step.params
    if step.op is Op.EXISTS:
        flavor = next((f for f in ctx.cloud.flavors() if f["id"] == p["id"]), None)
        if flavor is None:
            raise CloudError(f"flavor {p['name']} vanished; the next pass retries")
    else:
        for project in p["projects"] or [None]:
            made = ctx.cloud.create_flavor(p["name"], p["vcpus"], p["ram"], p["disk"], project,
                                           "os-onboard: shape of adopted VMs")
        flavor = {**made, "vcpus": p["vcpus"], "ram": p["ram"], "disk": p["disk"]}
    ctx.helper({"uuid": drift.uuid, "flavor_id": flavor["id"]})
    current = ctx.cloud.allocations(drift.uuid)
    if not current.get("allocations"):
        return Outcome(drift, "tolerated", f"flavor {flavor['name']}; no allocation to resize")
    ensure_allocation(ctx.apply_env(), vm_plan, flavor, current["project_id"],
                      current["user_id"])
    return Outcome(drift, "tolerated",
                   f"flavor {flavor['name']} ({flavor['vcpus']} vCPU, {flavor['ram']} MiB"
                   f"{', new' if step.op is not Op.EXISTS else ''}); allocation resized on "
                   f"{vm_plan.node}")
