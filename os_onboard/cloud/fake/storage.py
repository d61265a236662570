"""Cinder of the fake cloud: volume states as a manage and an attachment move them.

::

    manage_volume -> creating -> available (or error: the backend object is
    not there, or already managed) -- create_attachment -> attaching
    (reserved without a connector) -- complete_attachment -> in-use
    -- reset_volume_detached -> available -- unmanage_volume (available or
    error only) -> gone

A just-managed volume is ``creating`` until the next read of it (as
cinder-volume finishes a moment later).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from os_onboard.cloud.fake.core import State, http_error, op
from os_onboard.exceptions import CloudError, TemporaryCloudError, VolumeWentToError


class Storage(State):
    """Volumes (Cinder's JSON, by id), v3 attachments (by id), manageable objects.

    ``manageable`` maps a backend pool (``host@backend#pool``) to what it
    could manage, each ``{"reference", "size", ...}`` as Cinder lists it;
    a pool not in it accepts any reference. ``manage_fails`` names volumes
    whose manage goes to error whatever the backend has.
    """

    volumes_: dict[str, dict]
    attachments_: dict[str, dict]
    manageable: dict[str, list[dict]]
    manage_fails: set[str]
    rbd_pool: str                      # the pool of connection_info's names
    credentials: tuple[str, str]       # (Compute's) a managed volume's first project
    _pending: dict[str, str]           # volume id -> its status once cinder-volume is done

    def add_backend_volume(self, host: str, name: str, size: int = 1) -> None:
        """An object the backend pool ``host`` has (what manageable_volumes lists)."""
        self.manageable.setdefault(host, []).append(
            {"reference": {"source-name": name}, "size": size, "safe_to_manage": True,
             "reason_not_safe": None, "cinder_id": None, "extra_info": None})

    @op
    def volume(self, volume_id: str) -> dict | None:
        self._settle()
        return self._shown(self.volumes_[volume_id]) if volume_id in self.volumes_ else None

    @op
    def volumes(self, **filters: Any) -> list[dict]:
        self._settle()
        filters.pop("all_tenants", None)
        metadata = filters.pop("metadata", {})
        wanted = (json.loads(metadata) if isinstance(metadata, str) else metadata).items()
        return [self._shown(v) for v in self.volumes_.values()
                if wanted <= v["metadata"].items()
                and all(v.get(k) == f for k, f in filters.items())]

    @op
    def manageable_volumes(self, host: str) -> list[dict]:
        managed = {json.dumps(v["ref"], sort_keys=True): v["id"] for v in self.volumes_.values()
                   if v["host"] == host}
        found = []
        for item in self.manageable.get(host, []):
            owner = managed.get(json.dumps(item["reference"], sort_keys=True))
            found.append({**item, "safe_to_manage": owner is None, "cinder_id": owner,
                          "reason_not_safe": "already managed" if owner else None})
        return found

    @op
    def manage_volume(self, host: str, ref: dict, name: str, metadata: dict[str, str],
                      bootable: bool = False) -> dict:
        known = self.manageable.get(host)
        item = next((i for i in known or [] if i["reference"] == ref), None)
        already = any(v["ref"] == ref and v["host"] == host
                      and self._pending.get(v["id"], v["status"]) != "error"
                      for v in self.volumes_.values())
        volume_id = self.new_id("vol")
        self.volumes_[volume_id] = {
            "id": volume_id, "name": name, "status": "creating", "attach_status": "detached",
            "size": item["size"] if item else 2, "metadata": dict(metadata),
            "bootable": str(bootable).lower(), "host": host, "ref": dict(ref),
            "service_uuid": None, "os-vol-tenant-attr:tenant_id": self.credentials[0],
            "created_at": self.now()}
        fails = name in self.manage_fails or already or (known is not None and item is None)
        self._pending[volume_id] = "error" if fails else "available"
        return self._shown(self.volumes_[volume_id])

    @op
    def wait_volume(self, volume_id: str, statuses: Iterable[str], timeout: float = 120,
                    ) -> dict:
        self._settle()
        volume = self.volumes_.get(volume_id)
        if volume is None:
            raise CloudError(f"volume {volume_id} disappeared")
        if volume["status"] in set(statuses):
            return self._shown(volume)
        if volume["status"].startswith("error"):
            raise VolumeWentToError(volume_id, volume["status"])
        raise TemporaryCloudError(f"volume {volume_id} still {volume['status']} "
                                  f"after {timeout:.0f} s")

    @op
    def create_attachment(self, volume_id: str, instance_uuid: str, connector: dict) -> dict:
        volume = self._volume(volume_id, "attach volume")
        if volume["status"] != "available":
            raise http_error(f"attach volume {volume_id}", 400, "Invalid volume: volume "
                             f"status must be available to reserve, is {volume['status']}")
        attachment_id = self.new_id("att")
        self.attachments_[attachment_id] = {
            "id": attachment_id, "volume_id": volume_id, "instance": instance_uuid,
            "status": "attaching" if connector else "reserved", "connector": dict(connector),
            "attach_mode": "rw", "connection_info": self._connection_info(volume_id,
                                                                           attachment_id)}
        volume["status"] = "attaching" if connector else "reserved"
        return self.attachments_[attachment_id]

    @op
    def complete_attachment(self, attachment_id: str) -> None:
        attachment = self._attachment(attachment_id)
        attachment["status"] = "attached"
        volume = self.volumes_[attachment["volume_id"]]
        volume.update(status="in-use", attach_status="attached")

    @op
    def update_attachment(self, attachment_id: str, connector: dict) -> dict:
        attachment = self._attachment(attachment_id)
        attachment.update(connector=dict(connector), status="attaching")
        return attachment

    @op
    def attachments(self, volume_id: str) -> list[dict]:
        return [a for a in self.attachments_.values() if a["volume_id"] == volume_id]

    @op
    def reset_volume_detached(self, volume_id: str) -> None:
        volume = self._volume(volume_id, "reset volume")
        volume.update(status="available", attach_status="detached")
        self.attachments_ = {k: a for k, a in self.attachments_.items()
                             if a["volume_id"] != volume_id}

    @op
    def unmanage_volume(self, volume_id: str) -> None:
        self._settle()
        volume = self.volumes_.get(volume_id)
        if volume is None:
            return
        if volume["status"] not in ("available", "error"):
            raise http_error(f"unmanage volume {volume_id}", 400, "Invalid volume: status "
                             f"must be available or error, is {volume['status']}")
        del self.volumes_[volume_id]

    def _settle(self) -> None:
        for volume_id, status in self._pending.items():
            if volume_id in self.volumes_:
                self.volumes_[volume_id]["status"] = status
        self._pending.clear()

    def _volume(self, volume_id: str, what: str) -> dict:
        self._settle()
        if volume_id not in self.volumes_:
            raise http_error(f"{what} {volume_id}", 404, f"Volume {volume_id} not found")
        return self.volumes_[volume_id]

    def _attachment(self, attachment_id: str) -> dict:
        if attachment_id not in self.attachments_:
            raise http_error(f"attachment {attachment_id}", 404,
                             f"Attachment {attachment_id} not found")
        return self.attachments_[attachment_id]

    def _connection_info(self, volume_id: str, attachment_id: str) -> dict:
        return {"driver_volume_type": "rbd", "name": f"{self.rbd_pool}/volume-{volume_id}",
                "hosts": ["127.0.0.1"], "ports": ["6789"], "attachment_id": attachment_id}

    def _shown(self, volume: dict) -> dict:
        """Cinder's JSON: the volume's attachments in it, as ``volume show`` has them."""
        return {**volume, "attachments": [
            {"id": volume["id"], "attachment_id": a["id"], "volume_id": volume["id"],
             "server_id": a["instance"], "host_name": a["connector"].get("host"),
             "device": a["connector"].get("mountpoint")}
            for a in self.attachments_.values() if a["volume_id"] == volume["id"]]}
