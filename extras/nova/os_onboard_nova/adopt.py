"""Write the Nova records that make a running libvirt domain a Nova server.

Nova has no adopt API: a server normally comes from a boot request. This
helper writes, through Nova's own object layer (the way nova-manage does),
what a boot would have left behind - with ``uuid`` = the domain's UUID, so
the libvirt driver finds the running domain (``lookupByUUIDString``):

* cell DB: the Instance (host, node, compute_id, flavor, ``image_*`` system
  metadata from the domain XML, vm_state/power_state = what the hypervisor
  reports, an ownership marker in its metadata), an empty network info cache
  (NULL makes ``server list`` fail with HTTP 500), block device mappings
  (root + Cinder volumes with their attachment ids and connection info) and
  virtual interfaces in the domain's NIC order;
* API DB: the InstanceMapping and the RequestSpec (move operations need it).

Written with an admin context of the instance's owner (project and user), as
Nova's API writes a server: ``instance_create`` ensures the context's
project's default security group, which a project-less context would make
project-less (``default_group``: duplicates of it break every later create).

Idempotent per instance: an instance that exists with os-onboard's marker is
completed (missing pieces added), one without the marker is refused.

An item with ``"network_cache": true`` also gets its network info cache
rebuilt right after (Nova's own refresh, as ``network_cache`` does, reading
Neutron once for the whole batch): one helper run instead of two. The
result then carries ``network_cache`` (the VIFs written) or, when only that
part failed, ``network_cache_error`` (the records stay; the caller rebuilds
the cache later).

    echo '[{...}]' | python -m os_onboard_nova.adopt --config-file nova.conf
"""

from __future__ import annotations

import json
import sys
from typing import Any

from os_onboard_nova import _common, default_group, network_cache

MARKER_KEY = "os-onboard:adopted"


def adopt(item: dict, conf: Any, context: Any, objects: Any,
          snapshot: network_cache.NeutronSnapshot | None = None) -> dict:
    from nova import exception, utils
    from nova.network import model as network_model
    from oslo_utils import timeutils

    # The owner's context, not get_admin_context(): instance_create ensures a
    # default security group for the context's project (default_group).
    ctxt = _common.owner_context(context, item)
    cell = _common.cell_for_host(ctxt, objects, item["host"])
    flavor = objects.Flavor.get_by_flavor_id(ctxt, item["flavor_id"])
    created = False
    with context.target_cell(ctxt, cell) as cctxt:
        try:
            instance = objects.Instance.get_by_uuid(
                cctxt, item["uuid"], expected_attrs=["metadata", "system_metadata",
                                                     "info_cache"])
            if MARKER_KEY not in instance.metadata:
                raise RuntimeError(f"instance {item['uuid']} exists and was not adopted by "
                                   "os-onboard; refusing to touch it")
        except exception.InstanceNotFound:
            default_group.ensure(cctxt, cell, item["project_id"])
            node = objects.ComputeNode.get_by_host_and_nodename(cctxt, item["host"],
                                                                item["node"])
            instance = objects.Instance(
                context=cctxt, uuid=item["uuid"], user_id=item["user_id"],
                project_id=item["project_id"], host=item["host"], node=item["node"],
                compute_id=node.id, launched_on=item["host"],
                flavor=flavor, old_flavor=None, new_flavor=None,
                instance_type_id=flavor.id, memory_mb=flavor.memory_mb, vcpus=flavor.vcpus,
                root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                image_ref=item.get("image_ref") or "", kernel_id=item.get("kernel_id") or "",
                ramdisk_id=item.get("ramdisk_id") or "",
                vm_state=item["vm_state"], power_state=item["power_state"], task_state=None,
                display_name=item["name"], hostname=utils.sanitize_hostname(item["name"]),
                display_description=item.get("description") or item["name"],
                root_device_name=item.get("root_device_name"),
                availability_zone=item.get("availability_zone")
                or conf.default_schedule_zone or conf.default_availability_zone,
                launched_at=timeutils.utcnow(), config_drive="", locked=False,
                system_metadata=dict(item.get("system_metadata") or {}),
                metadata=dict(item.get("metadata") or {}),
                numa_topology=None, pci_requests=None, ephemeral_key_uuid=None,
                security_groups=objects.SecurityGroupList(), progress=0,
                reservation_id=utils.generate_uid("r"), key_name=None)
            instance.create()
            created = True
        if instance.info_cache is None or instance.info_cache.network_info is None:
            instance.info_cache = objects.InstanceInfoCache(
                context=cctxt, instance_uuid=instance.uuid,
                network_info=network_model.NetworkInfo([]))
            instance.info_cache.save()
        _ensure_bdms(cctxt, objects, instance, item)
        _ensure_vifs(cctxt, objects, instance, item)
    _ensure_mapping(ctxt, objects, instance, cell)
    _ensure_request_spec(ctxt, objects, instance, flavor, item)
    result = {"uuid": instance.uuid, "created": created, "instance_id": instance.id,
              "name": instance.name, "cell": cell.name}
    if item.get("network_cache"):
        # After the mapping and VIFs: Nova orders the cache by the VIFs.
        try:
            with context.target_cell(ctxt, cell) as cctxt:
                result["network_cache"] = {"vifs": network_cache.refresh_instance(
                    cctxt, instance, snapshot)}
        except Exception as exc:  # the records stand; the cache is rebuilt later
            result["network_cache_error"] = _common.failure(item, exc)["error"]
    return result


def _ensure_bdms(cctxt: Any, objects: Any, instance: Any, item: dict) -> None:
    existing = objects.BlockDeviceMappingList.get_by_instance_uuid(cctxt, instance.uuid)
    have = {(b.source_type, b.volume_id) for b in existing}
    for bdm in item.get("bdms", []):
        if (bdm["source_type"], bdm.get("volume_id")) in have:
            continue
        fields = {"instance_uuid": instance.uuid, "source_type": bdm["source_type"],
                  "destination_type": bdm["destination_type"],
                  "boot_index": bdm.get("boot_index"), "device_name": bdm["device_name"],
                  "disk_bus": bdm.get("disk_bus"), "device_type": "disk",
                  "delete_on_termination": bdm.get("delete_on_termination", False),
                  "volume_size": bdm.get("volume_size"), "image_id": bdm.get("image_id"),
                  "volume_id": bdm.get("volume_id"), "attachment_id": bdm.get("attachment_id"),
                  "connection_info": (json.dumps(bdm["connection_info"])
                                      if bdm.get("connection_info") else None),
                  "no_device": False, "guest_format": None}
        objects.BlockDeviceMapping(cctxt, **fields).create()


def _ensure_vifs(cctxt: Any, objects: Any, instance: Any, item: dict) -> None:
    existing = {v.uuid for v in objects.VirtualInterfaceList.get_by_instance_uuid(
        cctxt, instance.uuid)}
    for port in item.get("ports", []):  # NIC order: Nova orders the cache by these
        if port["id"] not in existing:
            objects.VirtualInterface(cctxt, instance_uuid=instance.uuid, uuid=port["id"],
                                     address=port["mac"], tag=None).create()


def _ensure_mapping(ctxt: Any, objects: Any, instance: Any, cell: Any) -> None:
    from nova import exception

    try:
        objects.InstanceMapping.get_by_instance_uuid(ctxt, instance.uuid)
    except exception.InstanceMappingNotFound:
        objects.InstanceMapping(ctxt, instance_uuid=instance.uuid, cell_mapping=cell,
                                project_id=instance.project_id, user_id=instance.user_id,
                                queued_for_delete=False).create()


def _ensure_request_spec(ctxt: Any, objects: Any, instance: Any, flavor: Any,
                         item: dict) -> None:
    from nova import exception

    try:
        objects.RequestSpec.get_by_instance_uuid(ctxt, instance.uuid)
        return
    except exception.RequestSpecNotFound:
        pass
    image = objects.ImageMeta.from_instance(instance)
    spec = objects.RequestSpec.from_components(
        ctxt, instance.uuid, image, flavor, None, None, {}, None,
        instance.availability_zone, project_id=instance.project_id,
        user_id=instance.user_id)
    spec.is_bfv = item.get("root_kind") == "volume"
    spec.create()


def _prefetch(items: list[dict], _conf: Any, context: Any,
              _objects: Any) -> network_cache.NeutronSnapshot | None:
    """Neutron's data for the caches of the batch, read once (None when that read
    fails: Nova's refresh then asks Neutron itself, per instance)."""
    if not any(item.get("network_cache") for item in items):
        return None
    try:
        return network_cache.prefetch(items, context)
    except Exception as exc:  # adoption goes on without it
        print(f"os_onboard_nova.adopt: Neutron read for the network caches failed: {exc}",
              file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    # Items in threads: each one mostly waits on Nova's databases, and each
    # writes only its own instance's rows.
    return _common.serve("os_onboard_nova.adopt", __doc__, adopt, argv,
                         workers=network_cache.WORKERS, prepare=_prefetch)


if __name__ == "__main__":
    sys.exit(main())
