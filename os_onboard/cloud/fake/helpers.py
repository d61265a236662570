"""The service-side helpers against the fake cloud's records.

:meth:`Helpers.nova_helper` has :func:`~os_onboard.cloud.nova_helper.run_helper`'s
signature and :meth:`Helpers.cinder_helper` that of ``run_cinder_helper``: a
test monkeypatches them in. They answer per item as the real helpers do
(``{"uuid", "error"}`` for an item that failed) and write what the helpers
write through Nova's and Cinder's object layers.
"""

from __future__ import annotations

import copy
import traceback
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from os_onboard.cloud.fake.compute import STATUS, Compute
from os_onboard.cloud.fake.network import Network
from os_onboard.cloud.fake.storage import Storage
from os_onboard.plan.model import MARKER_KEY


class Helpers(Compute, Network, Storage):
    """``helper_log``: (command, item) of every item sent to a Nova-side
    helper, in order (``cinder_log`` likewise for Cinder's); ``cache_fail``:
    uuids whose network cache the adopt run cannot build."""

    helper_log: list[tuple[str, dict]]
    cinder_log: list[tuple[str, dict]]
    cache_fail: set[str]

    @property
    def helper_items(self) -> defaultdict[str, list[dict]]:
        """The items sent to the Nova-side helpers, by command."""
        items: defaultdict[str, list[dict]] = defaultdict(list)
        for command, item in self.helper_log:
            items[command].append(item)
        return items

    def nova_helper(self, command: str, args: Sequence[str] = (), python: str | None = None,
                    config_files: Sequence[str] = (), timeout: float = 120,
                    stdin: Any = None, package: str = "os_onboard_nova") -> list[dict]:
        self.calls.append(f"helper:{command}")
        self.raise_injected(f"helper:{command}")
        results = []
        for item in stdin or []:
            self.helper_log.append((command, copy.deepcopy(item)))
            try:
                results.append(getattr(self, f"_nova_{command}", self._nova_other)(item))
            except RuntimeError as exc:  # what _common.run_batch reports per item
                results.append({"uuid": item.get("uuid"), "error": f"RuntimeError: {exc}",
                                "traceback": traceback.format_exc()})
        return results

    def cinder_helper(self, command: str, stdin: Any, python: str | None = None,
                      config_files: Sequence[str] = (), timeout: float = 120) -> list[dict]:
        """``adopt_volume``: the service and project Cinder's manage path leaves unset."""
        self.calls.append(f"cinder:{command}")
        self.raise_injected(f"cinder:{command}")
        for item in stdin:
            self.cinder_log.append((command, copy.deepcopy(item)))
            self.volumes_[item["id"]].update({"service_uuid": "svc-1",
                                              "os-vol-tenant-attr:tenant_id": item["project_id"]})
        return [{"id": item["id"]} for item in stdin]

    def _adopted(self, uuid: str) -> dict:
        server = self.servers_.get(uuid)
        if server is None or MARKER_KEY not in server["metadata"]:
            raise RuntimeError(f"instance {uuid} was not adopted by os-onboard")
        return server

    def _nova_adopt(self, item: dict) -> dict:
        """Idempotent per instance: one with the marker is left as it is."""
        uuid = item["uuid"]
        if uuid in self.servers_:
            self._adopted(uuid)
        else:
            flavor = next((f for f in self.flavors_ if f["id"] == item.get("flavor_id")), {})
            self.add_server(uuid, item["name"], item["host"], item["node"],
                            metadata=dict(item["metadata"]), project_id=item["project_id"],
                            flavor=flavor.get("name"), vcpus=flavor.get("vcpus"),
                            ram=flavor.get("ram"), vm_state=item.get("vm_state", "active"),
                            power_state=item["power_state"])
        result: dict[str, Any] = {"uuid": uuid}
        if item.get("network_cache") and uuid in self.cache_fail:
            result["network_cache_error"] = "NeutronClientException: injected"
        elif item.get("network_cache"):
            result["network_cache"] = {"vifs": self.vifs(uuid)}
        return result

    def _nova_network_cache(self, item: dict) -> dict:
        return {"uuid": item["uuid"], "vifs": self.vifs(item["uuid"])}

    def _nova_update(self, item: dict) -> dict:
        server = self._adopted(item["uuid"])
        before = {k: server[k] for k in ("host", "node", "power_state", "vm_state", "flavor")}
        for key in ("host", "node", "power_state", "vm_state"):
            if item.get(key) is not None:
                server[key] = item[key]
        server["status"] = STATUS.get(server["vm_state"], server["status"])
        flavor = next((f for f in self.flavors_ if f["id"] == item.get("flavor_id")), None)
        if flavor:
            server.update(flavor=flavor["name"], vcpus=flavor["vcpus"], ram=flavor["ram"])
        after = {k: server[k] for k in before}
        return {"uuid": item["uuid"], "before": before, "after": after}

    def _nova_release(self, item: dict) -> dict:
        """Purged, never soft-deleted: the uuid is free again."""
        return {"uuid": item["uuid"],
                "purged": self.servers_.pop(item["uuid"], None) is not None}

    def _nova_other(self, item: dict) -> dict:
        return {"uuid": item.get("uuid")}
