"""What ``apply`` reports per VM, and the knobs it takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from os_onboard.plan.model import VmPlan
from os_onboard.state.journal import StepState
from os_onboard.state.statuses import StepStatus, VmStatus


@dataclass
class VmOutcome:
    uuid: str
    name: str
    status: VmStatus = VmStatus.PENDING
    detail: str = ""
    steps_done: int = 0


@dataclass
class ApplyOptions:
    parallel: int = 4
    nova_python: str | None = None
    nova_config: list[str] = field(default_factory=list)
    check_fingerprint: bool = True


Progress = Callable[[int, int, str], None]


def vm_done(steps: dict[tuple[str, str], StepState], vm: VmPlan) -> bool:
    """Every step of the VM is journaled done (``steps``: Journal.steps of the plan)."""
    return all(getattr(steps.get((vm.uuid, s.key)), "status", None) == StepStatus.DONE
               for s in vm.steps)
