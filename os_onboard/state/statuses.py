"""The statuses os-onboard stores and reports, as StrEnums.

One leaf module (no imports of the package) so that apply, reconcile, the
CLI and the state store name the same values. Members are ``str``: the rows
already stored, the JSON printed and comparisons with plain strings stay as
they were (``StepStatus.DONE == "done"``).
"""

from __future__ import annotations

from enum import StrEnum


class StepStatus(StrEnum):
    """One journaled apply step (``apply_steps.status``)."""

    STARTED = "started"   # about to write: a rerun looks the record up first
    DONE = "done"         # written; the ids made are in the step's result
    FAILED = "failed"     # the error is in the step's row; a rerun tries again
    REVERTED = "reverted"  # undone by unmanage


class VmStatus(StrEnum):
    """What ``apply`` reports per VM."""

    PENDING = "pending"   # not decided yet (during a run)
    ADOPTED = "adopted"
    ALREADY = "already"   # Nova had it before this plan
    FAILED = "failed"     # a step failed: rerun apply to resume, or unmanage
    SKIPPED = "skipped"   # changed on its hypervisor since the plan
    BLOCKED = "blocked"   # the plan refuses it (the reasons are in the detail)
    CANCELLED = "cancelled"  # not started: the apply was cancelled (applying again goes on)


class DriftAction(StrEnum):
    """What a reconcile pass did with one drift (``audit_log.action``)."""

    REPORTED = "reported"    # nothing written (policy, or a kind only reported)
    TOLERATED = "tolerated"  # OpenStack's records now follow the VM
    DEFERRED = "deferred"    # decided by a later pass (e.g. a shutdown's grace)
    FAILED = "failed"        # a write failed (queued when the error is temporary)


class QueueState(StrEnum):
    """A drift's place in the drift queue, as the audit log and ``drift`` show it."""

    QUEUED = "queued"            # waiting for OpenStack (read down, or a temporary failure)
    RESOLVED = "resolved"        # dropped: the hypervisors no longer show it
    UNCONFIRMED = "unconfirmed"  # seen against cached records, by ``drift`` (not queued)
