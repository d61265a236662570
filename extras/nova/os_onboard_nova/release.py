"""Remove an adopted instance's Nova records - purged, never soft-deleted.

A soft-deleted instance row whose domain still runs is what nova-compute's
``_cleanup_running_deleted_instances`` looks for: with the default
``running_deleted_instance_action=reap`` it powers the guest off and deletes
it. So the instance is hard-deleted (``Instance.destroy(hard_delete=True)``,
one transaction with every related cell-DB row), then its InstanceMapping
and RequestSpec in the API DB. Nothing on the hypervisor is touched.

Only instances carrying os-onboard's marker are released.

    echo '[{"uuid": "...", "host": "..."}]' | python -m os_onboard_nova.release ...
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from os_onboard_nova import _common

MARKER_KEY = "os-onboard:adopted"


def release(item: dict, context: Any, objects: Any) -> dict:
    from nova import exception

    ctxt = context.get_admin_context()
    purged = False
    try:
        mapping = objects.InstanceMapping.get_by_instance_uuid(ctxt, item["uuid"])
        cell = mapping.cell_mapping
    except exception.InstanceMappingNotFound:
        mapping = None
        cell = _common.cell_for_host(ctxt, objects, item["host"])
    if cell is not None:
        with context.target_cell(ctxt, cell) as cctxt:
            try:
                instance = objects.Instance.get_by_uuid(cctxt, item["uuid"],
                                                        expected_attrs=["metadata"])
            except exception.InstanceNotFound:
                instance = None
            if instance is not None:
                if MARKER_KEY not in instance.metadata:
                    raise RuntimeError(f"instance {item['uuid']} was not adopted by "
                                       "os-onboard; refusing to remove its records")
                instance.destroy(hard_delete=True)
                purged = True
    with contextlib.suppress(exception.RequestSpecNotFound):
        objects.RequestSpec.get_by_instance_uuid(ctxt, item["uuid"]).destroy()
    if mapping is not None:
        mapping.destroy()
    return {"uuid": item["uuid"], "purged": purged}


def main(argv: list[str] | None = None) -> int:
    return _common.serve("os_onboard_nova.release", __doc__,
                         lambda item, _conf, context, objects: release(item, context, objects),
                         argv)


if __name__ == "__main__":
    sys.exit(main())
