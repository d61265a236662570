"""power-changed: vm_state/power_state follow a guest paused, resumed, shut down
or started out of band - written so that Nova never acts on the guest because
of os-onboard (docs/nova-out-of-band.md §4):

* running/paused found while Nova records another state: recorded at once.
  A guest running while Nova says SHUTOFF is what Nova's power sync
  force-stops; recording ACTIVE is the only write that prevents it. Nova's
  lifecycle handler reacts to the STARTED event within milliseconds, before
  any pass can; on hosts with adopted VMs started by other tools set
  ``[workarounds] handle_virt_lifecycle_events=False`` so that only the
  periodic sync remains, which os-onboard (seconds) normally beats. If Nova
  is already stopping it, the save fails (task_state is set) and says so.
* shut off while Nova records ACTIVE/PAUSED: recorded only once the guest has
  stayed off ``shutdown_grace`` seconds (first seen by an earlier pass). A
  STOPPED record written earlier would turn a quick restart by the old tools
  (shutdown, then start within Nova's 15 s event delay, which Nova itself
  ignores) into a force-stop. Nova's own delayed STOPPED event records a
  lasting shutdown anyway (its stop() finds the guest off).
* pmsuspended, crashed, shutting down: reported only (Nova's sync stops a
  pmsuspended ACTIVE guest; no record keeps it from doing so without
  misstating the VM).
"""

from __future__ import annotations

from datetime import datetime

from os_onboard.inventory.models import PowerState
from os_onboard.plan.nova_states import NOVA_STATES
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome


def power(ctx: Context, drift: Drift, now: datetime | None = None) -> Outcome:
    actual = PowerState(drift.detail["power_state"])
    if actual not in NOVA_STATES:  # the states the planner refuses too
        return Outcome(drift, "reported",
                       f"reported only: Nova's power sync acts on a {actual} guest whatever "
                       "the record says (see docs/nova-out-of-band.md)")
    grace = ctx.grace_for(drift.uuid) if actual == PowerState.SHUTOFF else 0.0
    if grace > 0:
        waited = ctx.seen_for(drift, now)
        if waited < grace:
            return Outcome(drift, "deferred",
                           f"off for {waited:.0f} s of {grace:.0f} s: recorded "
                           "once it stays off (a quick restart must not meet a STOPPED "
                           "record)", recheck_in=grace - waited)
    vm_state, power_state = NOVA_STATES[actual]
    ctx.helper({"uuid": drift.uuid, "vm_state": vm_state, "power_state": power_state})
    return Outcome(drift, "tolerated", f"recorded {vm_state} (power state {power_state})")
