"""Make an adopted instance's records follow what happened to the VM out of band.

Used by os-onboard's reconciler (tolerate policy). One item names the
instance and any of these changes, written in one cell-DB context:

* moved (``host``/``node``): host, node and compute_id of the destination in
  one save. ``ComputeManager._sync_instance_power_state`` returns early when
  ``instance.host`` is not its own host, so the source's delayed STOPPED
  event (15 s after a migration) then does nothing, and the destination
  starts syncing the VM as its own.
* power (``power_state``/``vm_state``): written as given; the caller decides
  which states are safe to record (os_onboard.reconcile.tolerate.power).
* ``flavor_id``: the instance's flavor (vcpus, memory_mb, root/ephemeral,
  instance_type_id) and its RequestSpec's - what Nova rebuilds the domain
  and schedules moves from.
* ``add_vifs`` ``[{"id", "mac"}]`` / ``remove_vifs`` ``[port id]``: the
  VirtualInterface records (the caller refreshes the network info cache).
* ``add_bdms`` (the adopt helper's BDM shape) / ``remove_bdms``
  ``[volume id]``: block device mappings.
* ``bdm_connection_info`` ``[{"volume_id", "connection_info"}]``: a BDM's
  connection info after its Cinder attachment was updated (a move).

Every instance save uses ``expected_task_state=[None]``: if Nova is in the
middle of an operation on the instance, the write fails instead of racing it.

    echo '[{"uuid": …, "host": …, "node": …}]' | python -m os_onboard_nova.update ...
"""

from __future__ import annotations

import json
import sys
from typing import Any

from os_onboard_nova import _common
from os_onboard_nova.adopt import _ensure_bdms, _ensure_vifs

MARKER_KEY = "os-onboard:adopted"


def _state(instance: Any) -> dict:
    return {"host": instance.host, "node": instance.node, "power_state": instance.power_state,
            "vm_state": instance.vm_state, "flavor": instance.flavor.name}


def update(item: dict, context: Any, objects: Any) -> dict:
    ctxt = context.get_admin_context()
    mapping = objects.InstanceMapping.get_by_instance_uuid(ctxt, item["uuid"])
    flavor = (objects.Flavor.get_by_flavor_id(ctxt, item["flavor_id"])
              if item.get("flavor_id") else None)
    with context.target_cell(ctxt, mapping.cell_mapping) as cctxt:
        instance = objects.Instance.get_by_uuid(cctxt, item["uuid"],
                                                expected_attrs=["metadata", "flavor"])
        if MARKER_KEY not in instance.metadata:
            raise RuntimeError(f"instance {item['uuid']} was not adopted by os-onboard")
        before = _state(instance)
        if item.get("host"):
            node = objects.ComputeNode.get_by_host_and_nodename(cctxt, item["host"],
                                                                item["node"])
            instance.host, instance.node, instance.compute_id = (item["host"], item["node"],
                                                                 node.id)
        for field in ("power_state", "vm_state"):
            if item.get(field) is not None:
                setattr(instance, field, item[field])
        if flavor is not None:
            instance.flavor = flavor
            instance.instance_type_id = flavor.id
            instance.vcpus, instance.memory_mb = flavor.vcpus, flavor.memory_mb
            instance.root_gb, instance.ephemeral_gb = flavor.root_gb, flavor.ephemeral_gb
        instance.save(expected_task_state=[None])
        _ensure_vifs(cctxt, objects, instance, {"ports": item.get("add_vifs", [])})
        for port_id in item.get("remove_vifs", []):
            vif = objects.VirtualInterface.get_by_uuid(cctxt, port_id)
            if vif is not None:
                vif.destroy()
        _ensure_bdms(cctxt, objects, instance, {"bdms": item.get("add_bdms", [])})
        for volume_id in item.get("remove_bdms", []):
            _bdm(cctxt, objects, volume_id, instance.uuid, lambda b: b.destroy())
        for entry in item.get("bdm_connection_info", []):
            def save(bdm: Any, info: dict = entry["connection_info"]) -> None:
                bdm.connection_info = json.dumps(info)
                bdm.save()
            _bdm(cctxt, objects, entry["volume_id"], instance.uuid, save)
    if flavor is not None:
        spec = objects.RequestSpec.get_by_instance_uuid(ctxt, item["uuid"])
        spec.flavor = flavor
        spec.save()
    return {"uuid": item["uuid"], "before": before, "after": _state(instance)}


def _bdm(cctxt: Any, objects: Any, volume_id: str, uuid: str, action: Any) -> None:
    from nova import exception

    try:
        bdm = objects.BlockDeviceMapping.get_by_volume_and_instance(cctxt, volume_id, uuid)
    except exception.VolumeBDMNotFound:
        return
    action(bdm)


def main(argv: list[str] | None = None) -> int:
    return _common.serve("os_onboard_nova.update", __doc__,
                         lambda item, _conf, context, objects: update(item, context, objects),
                         argv)


if __name__ == "__main__":
    sys.exit(main())
