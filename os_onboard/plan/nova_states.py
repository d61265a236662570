"""The one mapping of a hypervisor's power state to what Nova records.

Adoption (the planner) and toleration (a power change seen later) must write
the same pair for the same state, and refuse the same states: recording a
state Nova would "correct" powers the guest off (``_sync_instance_power_state``
force-stops a running VM recorded as stopped). Any state not listed is
never recorded: the planner blocks the VM, the reconciler reports the drift.
"""

from __future__ import annotations

from typing import NamedTuple

from os_onboard.inventory.models import PowerState


class NovaState(NamedTuple):
    """Nova's ``vm_state`` and ``power_state`` (nova.compute.power_state) of one VM."""

    vm_state: str
    power_state: int


#: hypervisor power state -> what os-onboard may record in Nova for it
NOVA_STATES: dict[PowerState, NovaState] = {
    PowerState.RUNNING: NovaState("active", 1),
    PowerState.PAUSED: NovaState("paused", 3),
    PowerState.SHUTOFF: NovaState("stopped", 4),
}

#: what a plan shows for a VM whose state cannot be recorded (it is blocked)
UNRECORDABLE = NovaState("error", 0)
