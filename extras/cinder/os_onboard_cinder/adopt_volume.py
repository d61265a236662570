"""Finish a volume Cinder has just managed for an adopted VM.

Two things Cinder's manage API cannot do, done with Cinder's own code:

* ``service_uuid``: Cinder 26 (2025.1) sets it when it creates a volume but
  not when it manages one (measured on the LVM and the RBD driver). os-brick's
  ``guard_connection`` then takes a lock named None when Nova attaches or
  detaches the volume with ``shared_targets``. It is set to the uuid of the
  cinder-volume service owning the volume, only where it is NULL.
* ownership: manage creates the volume in the caller's (admin) project; the
  VM belongs to another. Cinder's volume transfer (create + accept, with its
  quota moves and the driver's accept_transfer over RPC) gives it to the
  VM's project and user, like a user-driven transfer would.

    echo '[{"id": …, "project_id": …, "user_id": …}]' | \\
        python -m os_onboard_cinder.adopt_volume --config-file cinder.conf
"""

from __future__ import annotations

import sys
from typing import Any

from os_onboard_cinder.service import run


def finish(item: dict, cinder: Any) -> dict:
    context, objects, transfers = cinder.context, cinder.objects, cinder.transfers
    admin = context.get_admin_context()
    volume = objects.Volume.get_by_id(admin, item["id"])
    changed = []
    if not volume.service_uuid:
        service = objects.Service.get_by_args(admin, volume.host.split("#")[0],
                                              "cinder-volume")
        volume.service_uuid = service.uuid
        volume.save()
        changed.append("service_uuid")
    if item.get("project_id") and volume.project_id != item["project_id"]:
        if volume.status != "available":
            raise RuntimeError(f"volume is {volume.status}; ownership moves only while "
                               "available (before the attachment)")
        transfer = transfers.create(admin, volume.id, "os-onboard adoption")
        receiver = context.RequestContext(user_id=item["user_id"],
                                          project_id=item["project_id"], is_admin=True,
                                          roles=["admin", "member", "reader"])
        transfers.accept(receiver, transfer["id"], transfer["auth_key"])
        changed.append("project")
    volume.refresh()
    return {"id": volume.id, "service_uuid": volume.service_uuid,
            "project_id": volume.project_id, "changed": changed}


def main(argv: list[str] | None = None) -> int:
    return run("os_onboard_cinder.adopt_volume", __doc__.split("\n\n")[0], finish, argv)


if __name__ == "__main__":
    sys.exit(main())
