"""A plan as text a person reads before saying ``apply`` (terraform-style)."""

from __future__ import annotations

from os_onboard.plan.model import Op, Plan

_LEGEND = "+ create   ~ update   = already there   ! blocked (nothing written)"


def render_plan(plan: Plan, plan_id: int | None = None, *, verbose: bool = False) -> str:
    lines: list[str] = []
    head = f"Plan {plan_id}" if plan_id is not None else "Plan"
    lines.append(f"{head} from inventory snapshot {plan.snapshot_id}, OpenStack state "
                 f"{plan.cloud_fingerprint} ({plan.created_at:%Y-%m-%d %H:%M:%S} UTC)")
    lines.append(_LEGEND)
    if plan.shared:
        lines.append("")
        lines.append("Shared records:")
        lines.extend(f"  {s.op.value} {s.summary}" for s in plan.shared)
    for vm in plan.vms:
        lines.append("")
        lines.append(f"{vm.op.value} {vm.name} ({vm.uuid}) {vm.power_state} on "
                     f"{vm.node or vm.host_uri} -> nova-compute {vm.host}")
        lines.extend(f"    ! {reason}" for reason in vm.blocked)
        lines.extend(f"    {s.op.value} {s.kind.value}: {s.summary}" for s in vm.steps)
        if vm.notes:
            lines.extend(f"    note: {n}" for n in vm.notes)
        if vm.rebuild_changes and (verbose or vm.op is Op.CREATE):
            lines.append("    a Nova rebuild (stop/start, hard reboot, migration) would change:")
            lines.extend(f"      - {c}" for c in vm.rebuild_changes)
    counts = plan.counts()
    lines.append("")
    lines.append(f"Plan: {counts['create']} to adopt, {counts['exists']} already adopted, "
                 f"{counts['blocked']} blocked.")
    return "\n".join(lines)
