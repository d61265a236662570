"""disk-added, disk-removed: Cinder volumes and Nova's block device mappings follow.

* added: the volume step the planner would make for this disk now, run by
  apply's own executor (Cinder manage with the resolved reference, or the
  in-place record of a vSphere VMDK; service and owner filled in, a completed
  v3 attachment: ``in-use``), the rename trap closed as at adoption (by the
  host's driver: libvirt's rename map, then the persistent definition), the
  driver's host steps that follow volumes (vSphere: Nova's extraConfig key),
  then a BDM in Nova (the adopt helper's own code).
* removed: the records only. The volume is marked detached in Cinder's
  database (``os-reset_status``) and its BDM removed; never an attachment
  delete, which calls the driver's terminate_connection and may tear down an
  export another user of the disk still reads. The volume stays managed
  (``available``): the backend object still exists; ``unmanage`` releases it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from os_onboard.apply.steps import (
    DISK_KEY,
    adoption_of,
    ensure_host_step,
    ensure_volume,
    volumes_managed,
)
from os_onboard.plan.model import StepKind
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome


def added(ctx: Context, drift: Drift) -> Outcome:
    target = drift.detail["target"]
    vm_plan, step = ctx.planned_step(drift.uuid, StepKind.VOLUME, "target", target,
                                     f"volume for disk {target}")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    env = ctx.apply_env()
    result = ensure_volume(env, vm_plan, step, when)
    definition = volumes_managed(env, vm_plan, {step.key: result})
    # The host steps the plan makes for volumes (vSphere: Nova's extraConfig key of the
    # disk, which its detach needs); each writes only what is missing.
    follow = adoption_of(vm_plan).volume_step_keys
    for host_step in [s for s in vm_plan.steps if s.kind is StepKind.HOST and s.key in follow]:
        ensure_host_step(env, vm_plan, host_step, {step.key: result})
    ctx.helper({"uuid": drift.uuid, "add_bdms": [{
        "source_type": "volume", "destination_type": "volume", "boot_index": None,
        "device_name": f"/dev/{target}", "disk_bus": step.params["bus"],
        "volume_id": result["volume_id"], "attachment_id": result["attachment_id"],
        "connection_info": result["connection_info"], "volume_size": result["size_gib"],
        "delete_on_termination": False}]})
    renamed = (f"; backend renamed to {result['renamed_to']} (the host's driver "
               "followed: " + ", ".join(k for k, v in definition.items() if v) + ")"
               if definition.get("renames") else "")
    return Outcome(drift, "tolerated",
                   f"volume {result['volume_id']} managed and attached as {target}; BDM "
                   f"added{renamed}")


def removed(ctx: Context, drift: Drift) -> Outcome:
    target = drift.detail["target"]
    volumes = [v for v in ctx.cloud.volumes()
               if any(a.get("server_id") == drift.uuid
                      and (a.get("device") or "").removeprefix("/dev/") == target
                      for a in v.get("attachments") or [])]
    for volume in volumes:
        ctx.cloud.reset_volume_detached(volume["id"])  # the database only
    ctx.helper({"uuid": drift.uuid, "remove_bdms": [v["id"] for v in volumes]})
    ours = [v["id"] for v in volumes
            if (v.get("metadata") or {}).get(DISK_KEY, "").startswith(f"{drift.uuid}/")]
    return Outcome(drift, "tolerated",
                   f"volume(s) {', '.join(v['id'] for v in volumes) or 'none'} marked "
                   f"detached (records only), BDM removed; {len(ours)} stay managed "
                   "('unmanage' releases them)")
