"""Cinder, for :class:`~os_onboard.cloud.openstack.OpenStackCloud`.

Manage and v3 attachments have no openstacksdk proxy call: raw REST calls
with the microversion they need.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from os_onboard.cloud.base import TemporaryCloudError, VolumeWentToError
from os_onboard.cloud.openstack.rest import (
    CINDER_ATTACHMENTS,
    CINDER_MANAGE,
    Service,
    json_of,
    pages,
)
from os_onboard.exceptions import CloudError


class Storage(Service):
    """Volumes: read, manage, wait for, attach, reset, unmanage."""

    def volume(self, volume_id: str) -> dict | None:
        response = self._rest("block_storage").get(f"/volumes/{volume_id}",
                                                microversion=CINDER_ATTACHMENTS)
        if response.status_code == 404:
            return None
        return json_of(f"volume {volume_id}", response)["volume"]

    def volumes(self, **filters: Any) -> list[dict]:
        """Every page: cinder-api returns at most osapi_max_limit (1,000) per request."""
        return pages(self._rest("block_storage"), "volumes", "/volumes/detail",
                      {"all_tenants": 1, **filters}, CINDER_ATTACHMENTS)

    def manageable_volumes(self, host: str) -> list[dict]:
        """What the backend pool ``host`` could manage (and what it already does),
        each with the reference a manage request wants back; one request, the
        list is not paged unless asked to be."""
        response = self._rest("block_storage").get(
            "/manageable_volumes/detail", params={"host": host}, microversion=CINDER_MANAGE)
        return json_of(f"manageable volumes of {host}", response).get("manageable-volumes") or []

    def manage_volume(self, host: str, ref: dict, name: str, metadata: dict[str, str],
                      bootable: bool = False) -> dict:
        body = {"volume": {"host": host, "ref": ref, "name": name, "metadata": metadata,
                           "bootable": bootable}}
        response = self._rest("block_storage").post("/manageable_volumes", json=body,
                                                 microversion=CINDER_MANAGE)
        return json_of(f"manage {ref} on {host}", response)["volume"]

    def wait_volume(self, volume_id: str, statuses: Iterable[str], timeout: float = 120,
                    ) -> dict:
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            volume = self.volume(volume_id)
            if volume is None:
                raise CloudError(f"volume {volume_id} disappeared")
            if volume["status"] in wanted:
                return volume
            if volume["status"].startswith("error"):
                raise VolumeWentToError(volume_id, volume["status"])
            if time.monotonic() > deadline:
                raise TemporaryCloudError(f"volume {volume_id} still {volume['status']} "
                                          f"after {timeout:.0f} s")
            time.sleep(0.5)

    def create_attachment(self, volume_id: str, instance_uuid: str, connector: dict) -> dict:
        body = {"attachment": {"volume_uuid": volume_id, "instance_uuid": instance_uuid,
                               "connector": connector}}
        response = self._rest("block_storage").post("/attachments", json=body,
                                                 microversion=CINDER_ATTACHMENTS)
        attachment = json_of(f"attach volume {volume_id}", response)["attachment"]
        return attachment

    def complete_attachment(self, attachment_id: str) -> None:
        response = self._rest("block_storage").post(
            f"/attachments/{attachment_id}/action", json={"os-complete": None},
            microversion=CINDER_ATTACHMENTS)
        json_of(f"complete attachment {attachment_id}", response)

    def update_attachment(self, attachment_id: str, connector: dict) -> dict:
        """New connector (e.g. the host after an out-of-band live migration).

        The driver's initialize_connection runs for the new connector; nothing
        is terminated, so the connection in use stays.
        """
        response = self._rest("block_storage").put(
            f"/attachments/{attachment_id}", json={"attachment": {"connector": connector}},
            microversion=CINDER_ATTACHMENTS)
        return json_of(f"update attachment {attachment_id}", response)["attachment"]

    def attachments(self, volume_id: str) -> list[dict]:
        response = self._rest("block_storage").get(
            "/attachments/detail", params={"volume_id": volume_id, "all_tenants": 1},
            microversion=CINDER_ATTACHMENTS)
        return json_of(f"attachments of {volume_id}", response)["attachments"]

    def reset_volume_detached(self, volume_id: str) -> None:
        """Mark a volume detached *in Cinder's database only*.

        ``os-reset_status`` with ``attach_status=detached`` ends the
        attachment records without calling the driver's
        terminate_connection - unlike an attachment delete, which may tear
        down the export a running guest still uses.
        """
        body = {"os-reset_status": {"status": "available", "attach_status": "detached"}}
        response = self._rest("block_storage").post(f"/volumes/{volume_id}/action", json=body,
                                                 microversion=CINDER_ATTACHMENTS)
        json_of(f"reset volume {volume_id}", response)

    def unmanage_volume(self, volume_id: str) -> None:
        response = self._rest("block_storage").post(f"/volumes/{volume_id}/action",
                                                 json={"os-unmanage": {}},
                                                 microversion=CINDER_ATTACHMENTS)
        if response.status_code != 404:
            json_of(f"unmanage volume {volume_id}", response)
