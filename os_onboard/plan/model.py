"""What a plan is: per VM, the records to create, in order, or why it is blocked.

Terraform's vocabulary: ``+`` create, ``~`` update, ``=`` already there
(nothing to do), ``!`` blocked (nothing will be written for that VM). A plan
is a document (JSON, versioned) that a person can read and ``apply``
executes; it names the inventory snapshot and a fingerprint of the
OpenStack state it was made from, so ``apply`` can refuse a stale plan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PLAN_SCHEMA = "1.0"


class Op(StrEnum):
    CREATE = "+"
    UPDATE = "~"
    EXISTS = "="
    BLOCKED = "!"


class StepKind(StrEnum):
    """The kinds of records, in the order ``apply`` writes them for one VM."""

    PORT = "port"                 # Neutron port with the NIC's MAC and IPs, bound to the host
    VOLUME = "volume"             # Cinder manage + v3 attachment (in-use)
    HOST = "host"                 # hypervisor-side, by the host's driver (key: which step)
    SERVER = "server"             # Nova records (object layer): instance, BDMs, VIFs, mappings
    ALLOCATION = "allocation"     # Placement allocation on the compute node's provider
    NETWORK_CACHE = "network-cache"  # Nova's info cache rebuilt from Neutron


class SharedKind(StrEnum):
    """Records several VMs use; created once, before the VMs, never removed by unmanage."""

    FLAVOR = "flavor"
    IMAGE = "image"
    NETWORK = "network"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _StepBase(_Model):
    key: str
    op: Op
    summary: str
    params: dict[str, Any] = Field(default_factory=dict)


class Step(_StepBase):
    """One record of one VM; ``key`` is unique within the VM ('port:52:54:00:0b:01:01')."""

    kind: StepKind

    @field_validator("kind", mode="before")
    @classmethod
    def _legacy_host_kinds(cls, value: Any) -> Any:
        # Plans saved before host steps became the driver's: their kinds were
        # the libvirt step names (the key still says which step it is).
        return StepKind.HOST if value in ("domain-definition", "instance-dir") else value


class SharedStep(_StepBase):
    """A record several VMs use; ``key`` is unique within the plan ('flavor:adopted-…')."""

    kind: SharedKind


class VmPlan(_Model):
    uuid: str
    name: str
    host_uri: str
    host: str = Field(description="nova-compute host (service host)")
    node: str | None = Field(default=None, description="hypervisor hostname (compute node)")
    power_state: str
    op: Op
    blocked: list[str] = Field(default_factory=list, description="why nothing is written")
    steps: list[Step] = Field(default_factory=list)
    rebuild_changes: list[str] = Field(
        default_factory=list,
        description="what Nova would change if it regenerates the domain (stop/start, hard "
                    "reboot, migration), for the operator to weigh")
    notes: list[str] = Field(default_factory=list)


class Plan(_Model):
    schema_version: str = PLAN_SCHEMA
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    snapshot_id: int
    cloud_fingerprint: str = Field(description="hash of the OpenStack state the plan relies on")
    basis: dict[str, list[str]] = Field(
        default_factory=dict,
        description="what the fingerprint covers: the plan's MACs, IPs, UUIDs, nodes, flavors")
    mapping_file: str | None = None
    shared: list[SharedStep] = Field(default_factory=list)
    vms: list[VmPlan] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {op.name.lower(): 0 for op in Op}
        for vm in self.vms:
            counts[vm.op.name.lower()] += 1
        return counts

    def vm(self, name_or_uuid: str) -> VmPlan | None:
        return next((v for v in self.vms if name_or_uuid in (v.uuid, v.name)), None)


#: Ownership marker on every record os-onboard creates (server metadata,
#: volume metadata, port description): who adopted it, from where, when.
MARKER_KEY = "os-onboard:adopted"
#: Server metadata key holding the VM's name as last taken from the hypervisor: a rename
#: there differs from it, a rename through OpenStack (display name) does not.
VM_NAME_KEY = "os-onboard:vm-name"
#: The start of every port description os-onboard writes (``apply.steps.PORT_DESCRIPTION``):
#: the plan and ``cleanup`` know os-onboard's ports by it.
PORT_DESCRIPTION_PREFIX = "os-onboard: adopted NIC of "
