"""renamed: a VM renamed on its hypervisor (vCenter); the server's display name follows.

The display name becomes the VM's name and the metadata ``os-onboard:vm-name``
(the name last taken from the hypervisor) is updated, so the next pass sees
no drift (no echo). Two Nova calls, the name first (see
:meth:`~os_onboard.cloud.base.Cloud.rename_server`): a stop between them
leaves the key behind and the next pass writes both again. Nothing of this
reaches the VM: Nova's VMware driver never renames a VM after a display name.

Both sides at once (phase 3): the server renamed through OpenStack and the VM
in vCenter before the pass. The hypervisor's new name wins, as for every
field it reports; the OpenStack name it overwrites is said in the outcome
(and so in the audit log). While Nova acts on the server (a task_state),
Nova refuses the metadata with a 409: the drift is queued and written again
once Nova's operation has ended.
"""

from __future__ import annotations

from os_onboard.plan.model import VM_NAME_KEY
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome


def renamed(ctx: Context, drift: Drift) -> Outcome:
    name = drift.detail["name"]
    ctx.cloud.rename_server(drift.uuid, name, {VM_NAME_KEY: name})
    overwritten = drift.detail.get("openstack_name")
    return Outcome(drift, "tolerated",
                   f"display name {name!r} (VM renamed from {drift.detail['vm_name_was']!r})"
                   + (f"; the name {overwritten!r} set through OpenStack is overwritten: "
                      "the VM's new name wins" if overwritten else ""))
