"""Make an adopted instance's record follow what happened to the VM out of band.

Used by os-onboard's reconciler (tolerate policy):

* moved (``host``/``node``): host, node and compute_id of the destination in
  one save. ``ComputeManager._sync_instance_power_state`` returns early when
  ``instance.host`` is not its own host, so the source's delayed STOPPED
  event (15 s after a migration) then does nothing, and the destination
  starts syncing the VM as its own.
* power (``power_state``/``vm_state``): only what Nova would otherwise
  "correct" destructively is refused by the caller; here the values are
  written as given.

Every save uses ``expected_task_state=[None]``: if Nova is in the middle of
an operation on the instance, the write fails instead of racing it.

    echo '[{"uuid": …, "host": …, "node": …}]' | python -m os_onboard_nova.update ...
"""

from __future__ import annotations

import sys
from typing import Any

from os_onboard_nova import _common

MARKER_KEY = "os-onboard:adopted"


def update(item: dict, context: Any, objects: Any) -> dict:
    ctxt = context.get_admin_context()
    mapping = objects.InstanceMapping.get_by_instance_uuid(ctxt, item["uuid"])
    with context.target_cell(ctxt, mapping.cell_mapping) as cctxt:
        instance = objects.Instance.get_by_uuid(cctxt, item["uuid"],
                                                expected_attrs=["metadata"])
        if MARKER_KEY not in instance.metadata:
            raise RuntimeError(f"instance {item['uuid']} was not adopted by os-onboard")
        before = {"host": instance.host, "node": instance.node,
                  "power_state": instance.power_state, "vm_state": instance.vm_state}
        if item.get("host"):
            node = objects.ComputeNode.get_by_host_and_nodename(cctxt, item["host"],
                                                                item["node"])
            instance.host, instance.node, instance.compute_id = (item["host"], item["node"],
                                                                 node.id)
        for field in ("power_state", "vm_state"):
            if item.get(field) is not None:
                setattr(instance, field, item[field])
        instance.save(expected_task_state=[None])
    return {"uuid": item["uuid"], "before": before,
            "after": {"host": instance.host, "node": instance.node,
                      "power_state": instance.power_state, "vm_state": instance.vm_state}}


def main(argv: list[str] | None = None) -> int:
    return _common.serve("os_onboard_nova.update", __doc__,
                         lambda item, _conf, context, objects: update(item, context, objects),
                         argv)


if __name__ == "__main__":
    sys.exit(main())
