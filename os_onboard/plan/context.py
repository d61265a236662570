"""What the planner carries from VM to VM: inputs and the shared records so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from os_onboard.drivers.adoption import HostStep
from os_onboard.inventory.models import Inventory
from os_onboard.mapping.model import Mapping
from os_onboard.mapping.resolvers.base import VolumeResolver
from os_onboard.plan.cloudview import CloudView
from os_onboard.plan.model import Op, SharedStep, Step, StepKind

GIB = 1024**3

#: The placeholder image of image-backed adopted servers (never booted from:
#: the instance directory links to the legacy disk).
PLACEHOLDER_IMAGE = "os-onboard-placeholder"


@dataclass
class PlanContext:
    inventory: Inventory
    cloud: CloudView
    mapping: Mapping
    resolvers: list[VolumeResolver]
    renames: dict[str, str]  # disk source -> its current name (os-onboard's rename maps)
    shared: dict[str, SharedStep] = field(default_factory=dict)

    def share(self, step: SharedStep) -> str:
        self.shared.setdefault(step.key, step)
        return step.key


def host_step(step: HostStep) -> Step:
    """A driver's host step as a step of the plan (its key says which)."""
    return Step(kind=StepKind.HOST, key=step.key, op=Op.CREATE, summary=step.summary,
                params=dict(step.params))
