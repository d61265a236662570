"""Policies per kind of drift, and what ``tolerate`` writes for each kind.

``report`` (phase 1) writes nothing to OpenStack; ``tolerate`` (phase 2) makes
the records follow the VM, one module per kind (see each for the order of its
writes and why it cannot make Nova act on the guest; docs/nova-out-of-band.md
has the Nova paths behind each rule):

* host-changed: :mod:`.migration` - instance, allocation, port bindings,
  Cinder attachment connectors.
* power-changed: :mod:`.power` - vm_state/power_state (a shutdown after a
  grace period; pmsuspend and crashes reported only).
* nic-added / nic-removed / ip-changed: :mod:`.nics` - ports, VIFs, cache.
* disk-added / disk-removed: :mod:`.disks` - volume + attachment + BDM, or
  detached in the records only.
* resized: :mod:`.resize` - flavor (planner's policy), request spec,
  allocation.
* renamed: :mod:`.rename` - display name and the VM-name key (vSphere).
* vm-gone: :mod:`.gone` - records purged as ``unmanage`` does.
* not-adopted: reported (``plan``/``apply`` adopt it); under the ``adopt``
  policy (asked for by name, for this kind only): :mod:`.adopt` - plan and
  apply for that VM.
"""

from __future__ import annotations

from collections.abc import Callable

from os_onboard.exceptions import OnboardError
from os_onboard.reconcile.drift import Drift, DriftKind
from os_onboard.reconcile.policy import ADOPT
from os_onboard.reconcile.tolerate import (
    adopt,
    disks,
    gone,
    migration,
    nics,
    power,
    rename,
    resize,
)
from os_onboard.reconcile.tolerate.base import Context, Outcome
from os_onboard.state.statuses import DriftAction

__all__ = ["EXECUTORS", "Context", "Outcome", "Tolerator"]


#: What ``tolerate`` runs for each kind; a kind not listed is reported only.
EXECUTORS: dict[DriftKind, Callable[[Context, Drift], Outcome]] = {
    DriftKind.HOST_CHANGED: migration.moved,
    DriftKind.POWER_CHANGED: power.power,
    DriftKind.NIC_ADDED: nics.added,
    DriftKind.NIC_REMOVED: nics.removed,
    DriftKind.IP_CHANGED: nics.ip_changed,
    DriftKind.DISK_ADDED: disks.added,
    DriftKind.DISK_REMOVED: disks.removed,
    DriftKind.RESIZED: resize.resized,
    DriftKind.RENAMED: rename.renamed,
    DriftKind.VM_GONE: gone.gone,
}


class Tolerator:
    """Applies one pass's drifts by policy, one executor per kind."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply(self, drift: Drift, policy: str) -> Outcome:
        if policy == "report":
            return Outcome(drift, "reported", "policy report: nothing written")
        try:
            if policy == ADOPT and drift.kind is DriftKind.NOT_ADOPTED:
                outcome = adopt.adopt(self.ctx, drift)
            else:
                outcome = self._execute(drift)
        except OnboardError as exc:
            outcome = Outcome(drift, DriftAction.FAILED, f"{exc} (the next pass retries)",
                              temporary=exc.temporary)
        if outcome.action not in (DriftAction.REPORTED, DriftAction.DEFERRED):
            self.ctx.forget_view()  # it wrote, or may have: later plans read anew
        return outcome

    def _execute(self, drift: Drift) -> Outcome:
        executor = EXECUTORS.get(drift.kind)
        if executor is None:
            return Outcome(drift, "reported", "reported only: adopt it with 'os-onboard "
                           "plan' and 'apply' (or the policy not-adopted=adopt)")
        return executor(self.ctx, drift)
