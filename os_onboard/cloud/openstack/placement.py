"""Placement, for :class:`~os_onboard.cloud.openstack.OpenStackCloud`.

Allocations have no openstacksdk proxy call: raw REST calls at 1.38
(consumer generations and consumer types).
"""

from __future__ import annotations

from os_onboard.cloud.openstack.rest import PLACEMENT_ALLOCATIONS, Service, json_of


class Placement(Service):
    """A consumer's allocations: read, write (one or in bulk), delete."""

    def allocations(self, consumer: str) -> dict:
        response = self._rest("placement").get(f"/allocations/{consumer}",
                                            microversion=PLACEMENT_ALLOCATIONS)
        return json_of(f"allocations of {consumer}", response)

    def provider_allocations(self, provider: str) -> dict[str, dict]:
        response = self._rest("placement").get(f"/resource_providers/{provider}/allocations",
                                            microversion=PLACEMENT_ALLOCATIONS)
        return json_of(f"allocations on provider {provider}", response).get("allocations") or {}

    def put_allocations(self, consumer: str, provider: str, resources: dict[str, int],
                        project_id: str, user_id: str, generation: int | None) -> None:
        body = {"allocations": {provider: {"resources": resources}},
                "consumer_generation": generation, "project_id": project_id,
                "user_id": user_id, "consumer_type": "INSTANCE"}
        response = self._rest("placement").put(f"/allocations/{consumer}", json=body,
                                            microversion=PLACEMENT_ALLOCATIONS)
        json_of(f"allocate {consumer}", response)

    def post_allocations(self, consumers: dict[str, dict]) -> None:
        """Placement's bulk write (POST /allocations): every consumer or none.

        ``consumers``: consumer uuid -> {"provider", "resources", "project_id",
        "user_id", "generation"} (generation None: a new consumer).
        """
        body = {uuid: {"allocations": {c["provider"]: {"resources": c["resources"]}},
                       "consumer_generation": c["generation"], "project_id": c["project_id"],
                       "user_id": c["user_id"], "consumer_type": "INSTANCE"}
                for uuid, c in consumers.items()}
        response = self._rest("placement").post("/allocations", json=body,
                                             microversion=PLACEMENT_ALLOCATIONS)
        json_of(f"allocate {len(consumers)} consumers", response)

    def delete_allocations(self, consumer: str) -> None:
        response = self._rest("placement").delete(f"/allocations/{consumer}",
                                               microversion=PLACEMENT_ALLOCATIONS)
        if response.status_code != 404:
            json_of(f"delete allocations of {consumer}", response)
