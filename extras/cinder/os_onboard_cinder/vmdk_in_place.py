"""Record a running VM's VMDK data disk as a Cinder volume of the VMDK backend, in place.

Why not Cinder's manage API: the VMDK driver's ``manage_existing`` detaches the
disk from its VM, moves the file into the volume's folder and rewrites its
uuid (vmdk.py ``_manage_existing_int``) - a running guest would lose the disk.
This command builds the end state Cinder and Nova reach when Nova attaches a
VMDK volume, without touching the VM:

* the volume record: id = the disk's uuid (its descriptor's ``ddb.uuid``, what
  the VMDK driver sets on the disks it makes, so Nova's attachments and
  os-onboard's drift match disks to volumes the same way), on the backend's
  host, in the VM's project with the quota Cinder would charge, available;
* its *backing*: the powered-off, disk-less VM ``volume-<id>`` (instanceUuid =
  the id) the driver creates for every volume, made with the driver's own
  volumeops next to the VM (its host, resource pool, the disk's datastore) in
  ``OpenStack/Project (<id>)/Volumes``, to which the disk file is attached *by
  reference*: no copy, no move, no uuid change. The running VM keeps the file;
  a powered-off VM referencing it takes no lock (vCenter locks at power-on).

``release`` undoes the backing: the disk is detached from it without its file
(a ``remove`` device change with no file operation) and the disk-less backing
is destroyed; the VM keeps its disk. ``unmanage`` through the API then
removes the record (the driver's ``unmanage`` finds no backing).

    echo '[{"id": …, "cinder_host": "host@backend#pool", "path": "[ds] vm/vm_1.vmdk",
            "capacity_kb": …, "disk_type": "thin", "vm_uuid": …, "name": …,
            "metadata": {…}, "project_id": …, "user_id": …}]' | \\
        python -m os_onboard_cinder.vmdk_in_place --config-file cinder.conf record
"""

from __future__ import annotations

import sys
from typing import Any

from os_onboard_cinder.service import run

#: the volume metadata key naming the adopted disk (os_onboard.apply.steps.DISK_KEY)
DISK_KEY = "os-onboard:disk"


def record(item: dict, cinder: Any) -> dict:
    admin = cinder.context.get_admin_context()
    volume = _volume(admin, item, cinder)
    driver = _driver(item["cinder_host"], admin, cinder)
    ops = driver.volumeops
    backing = ops.get_backing_by_uuid(volume.id)
    made = []
    if backing is None:
        vm = ops.get_backing_by_uuid(item["vm_uuid"])  # FindAllByUuid on instanceUuid
        if vm is None:
            raise RuntimeError(f"no VM with instanceUuid {item['vm_uuid']} in vCenter")
        session = driver.session
        from oslo_vmware import vim_util

        pool = session.invoke_api(vim_util, "get_object_property", session.vim, vm,
                                  "resourcePool")
        folder = driver._get_volume_group_folder(ops.get_dc(vm), volume.project_id)
        backing = ops.create_backing_disk_less(
            volume.name, folder, pool, ops.get_host(vm), _datastore(item["path"]),
            extra_config=driver._get_extra_config(volume))
        made.append("backing")
    if ops.get_disk_device(backing, item["path"]) is None:
        ops.attach_disk_to_backing(backing, item["capacity_kb"], item.get("disk_type") or "thin",
                                   "lsiLogic", None, item["path"])
        made.append("disk reference")
    if volume.status != "available":
        volume.status = "available"
        volume.save()
    return {"id": volume.id, "status": volume.status, "backing": backing.value,
            "name": volume.name, "project_id": volume.project_id, "made": made}


def release(item: dict, cinder: Any) -> dict:
    admin = cinder.context.get_admin_context()
    driver = _driver(item["cinder_host"], admin, cinder)
    ops = driver.volumeops
    backing = ops.get_backing_by_uuid(item["id"])
    if backing is None:
        return {"id": item["id"], "removed": []}
    removed = []
    for disk in ops._get_disk_devices(backing):
        if item.get("path") and disk.backing.fileName != item["path"]:
            raise RuntimeError(f"backing of {item['id']} holds {disk.backing.fileName}, not "
                               f"{item['path']}: left alone")
        ops.detach_disk_from_backing(backing, disk)  # no fileOperation: the file stays
        removed.append(f"reference to {disk.backing.fileName}")
    ops.delete_backing(backing)
    removed.append(f"backing {backing.value}")
    return {"id": item["id"], "removed": removed}


def _volume(admin: Any, item: dict, cinder: Any) -> Any:
    """The volume record with the disk's uuid: found (a rerun) or created with quota."""
    objects = cinder.objects
    try:
        volume = objects.Volume.get_by_id(admin, item["id"])
    except Exception as exc:
        if type(exc).__name__ != "VolumeNotFound":
            raise
    else:
        if (volume.metadata or {}).get(DISK_KEY) != item["metadata"][DISK_KEY]:
            raise RuntimeError(f"Cinder already has a volume {volume.id} that is not "
                               f"{item['metadata'][DISK_KEY]} (disk uuids must be unique)")
        return volume
    _purge_deleted(item["id"], cinder)
    backend = item["cinder_host"].split("@", 1)[1].split("#", 1)[0]
    type_id = _volume_type(admin, backend, cinder)
    size = max(1, -(-int(item["capacity_kb"]) // (1024 * 1024)))
    project = cinder.context.RequestContext(user_id=item["user_id"],
                                            project_id=item["project_id"], is_admin=True)
    deltas = {"volumes": 1, "gigabytes": size}
    cinder.quotas.add_volume_type_opts(project, deltas, type_id)
    reservations = cinder.quotas.reserve(project, **deltas)
    service = objects.Service.get_by_args(admin, item["cinder_host"].split("#")[0],
                                          "cinder-volume")
    values = {"id": item["id"], "size": size, "user_id": item["user_id"],
              "project_id": item["project_id"], "status": "creating",
              "attach_status": "detached", "display_name": item["name"],
              "display_description": "adopted in place by os-onboard",
              "host": item["cinder_host"], "cluster_name": service.cluster_name,
              "availability_zone": service.availability_zone, "volume_type_id": type_id,
              "metadata": item["metadata"], "bootable": False,
              "service_uuid": service.uuid}
    try:
        # The object API refuses a caller's id (Volume.create: "already created"); the
        # DB API takes it, as it takes the ids Cinder's own flows generate.
        cinder.db.volume_create(admin, values)
    except Exception:
        cinder.quotas.rollback(project, reservations)
        raise
    volume = objects.Volume.get_by_id(admin, item["id"])
    cinder.quotas.commit(project, reservations)
    return volume


def _purge_deleted(volume_id: str, cinder: Any) -> None:
    """Drop the soft-deleted rows of an earlier adoption of the same disk (Cinder keeps a
    deleted volume's row, so its id cannot be created again)."""
    from cinder.db.sqlalchemy import api, models

    context = cinder.context.get_admin_context(read_deleted="only")
    with api.main_context_manager.writer.using(context):
        rows = context.session.query(models.Volume).filter_by(id=volume_id, deleted=True)
        if rows.count() == 0:
            return
        for model in (models.VolumeMetadata, models.VolumeAdminMetadata,
                      models.VolumeGlanceMetadata, models.VolumeAttachment):
            context.session.query(model).filter_by(volume_id=volume_id).delete(
                synchronize_session=False)
        # a bulk delete: the ORM's delete would cascade into the volume type
        rows.delete(synchronize_session=False)


def _volume_type(admin: Any, backend: str, cinder: Any) -> str:
    """The volume type whose ``volume_backend_name`` is this backend (else the default)."""
    named = [t for t in cinder.volume_types.get_all_types(admin).values()
             if (t.get("extra_specs") or {}).get("volume_backend_name") == backend]
    if len(named) == 1:
        return named[0]["id"]
    return cinder.volume_types.get_default_volume_type(admin)["id"]


def _driver(cinder_host: str, admin: Any, cinder: Any) -> Any:
    """The backend's VMDK driver, set up as cinder-volume sets it up (its own session)."""
    from cinder.volume import configuration, manager
    from cinder.volume.drivers.vmware import vmdk

    backend = cinder_host.split("@", 1)[1].split("#", 1)[0]
    conf = configuration.Configuration(manager.volume_backend_opts, config_group=backend)
    if "vmdk" not in (conf.safe_get("volume_driver") or "").lower():
        raise RuntimeError(f"backend {backend} is not Cinder's VMDK driver")
    driver = vmdk.VMwareVcVmdkDriver(configuration=conf, db=cinder.db,
                                    host=cinder_host.split("#")[0])
    driver.do_setup(admin)
    return driver


def _datastore(path: str) -> str:
    if not path.startswith("[") or "]" not in path:
        raise RuntimeError(f"{path!r} is not a datastore path ([datastore] folder/file.vmdk)")
    return path[1:path.index("]")]


COMMANDS = {"record": record, "release": release}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args if a in COMMANDS), None)
    if command is None:
        print(f"usage: python -m os_onboard_cinder.vmdk_in_place {{{','.join(COMMANDS)}}} "
              "--config-file cinder.conf < items.json", file=sys.stderr)
        return 2
    args.remove(command)
    return run(f"os_onboard_cinder.vmdk_in_place {command}", __doc__.split("\n\n")[0],
               COMMANDS[command], args)


if __name__ == "__main__":
    sys.exit(main())
