"""Paged list reads of the OpenStack side: every page, in order, with the caller's filters."""

import json

from os_onboard.cloud.openstack.rest import pages as _pages
from os_onboard.cloud.openstack.rest import port_json as _port_json


class _Response:
    def __init__(self, body: dict) -> None:
        self.status_code = 200
        self.content = json.dumps(body).encode()
        self._body = body

    def json(self) -> dict:
        return self._body


class _PagedService:
    """Serves ``items`` ``limit`` at a time with a next link, as nova-api and cinder-api do."""

    def __init__(self, key: str, items: list[dict], limit: int) -> None:
        self.key, self.items, self.limit = key, items, limit
        self.calls: list[tuple[str, dict, dict]] = []

    def get(self, path: str, params: dict, **kwargs: object) -> _Response:
        self.calls.append((path, dict(params), dict(kwargs)))
        ids = [i["id"] for i in self.items]
        start = ids.index(params["marker"]) + 1 if "marker" in params else 0
        page = self.items[start:start + self.limit]
        body: dict = {self.key: page}
        if len(page) == self.limit:
            body[f"{self.key}_links"] = [{"rel": "next", "href": (
                f"http://internal-name:8774/v2.1{path}?all_tenants=1&marker={page[-1]['id']}")}]
        return _Response(body)


def test_every_page_is_read_in_order_with_the_callers_filters():
    items = [{"id": f"s{n:03d}"} for n in range(25)]
    service = _PagedService("servers", items, limit=10)
    got = _pages(service, "servers", "/servers/detail", {"all_tenants": "True", "name": "x"},
                 "2.47")
    assert got == items
    assert [c[1].get("marker") for c in service.calls] == [None, "s009", "s019"]
    assert all(c[1]["name"] == "x" and c[2] == {"microversion": "2.47"}
               for c in service.calls)
    assert {c[0] for c in service.calls} == {"/servers/detail"}  # not the link's host


def test_a_last_full_page_ends_on_the_empty_page_after_it():
    items = [{"id": f"v{n}"} for n in range(20)]
    service = _PagedService("volumes", items, limit=10)
    assert _pages(service, "volumes", "/volumes/detail", {}, None) == items
    assert len(service.calls) == 3
    assert service.calls[0][2] == {}  # no microversion header asked for


def test_port_json_matches_the_sdk_shape():
    port = _port_json({"id": "p1", "name": "", "network_id": "n1",
                       "mac_address": "52:54:00:AB:CD:EF",
                       "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
                       "device_id": "vm1", "device_owner": "compute:nova",
                       "binding:host_id": "host-b", "binding:vif_type": "bridge",
                       "status": "ACTIVE", "description": None})
    assert port == {"id": "p1", "name": "", "network_id": "n1", "mac": "52:54:00:ab:cd:ef",
                    "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
                    "device_id": "vm1", "device_owner": "compute:nova", "host": "host-b",
                    "vif_type": "bridge", "status": "ACTIVE", "description": "",
                    "created_at": None}


class _Compute:
    """GET /servers/{uuid} only; any listing is recorded (it must not happen)."""

    def __init__(self, servers: dict[str, dict]) -> None:
        self.servers, self.paths = servers, []

    def get(self, path: str, *args: object, **kwargs: object) -> _Response:
        self.paths.append(path)
        uuid = path.rsplit("/", 1)[-1]
        if uuid not in self.servers:
            response = _Response({"itemNotFound": {"message": "not found"}})
            response.status_code = 404
            return response
        return _Response({"server": self.servers[uuid]})


def test_a_server_is_one_get_and_a_missing_one_no_listing():
    from os_onboard.cloud.openstack import OpenStackCloud

    class _Connection:
        compute = _Compute({"u1": {"id": "u1", "name": "vm", "status": "ACTIVE",
                                   "OS-EXT-SRV-ATTR:host": "hv1", "metadata": {"k": "v"}}})

    cloud = OpenStackCloud(connection=_Connection())
    assert cloud.server("u1") == {"id": "u1", "name": "vm", "status": "ACTIVE", "host": "hv1",
                                  "metadata": {"k": "v"}}
    assert cloud.server("u2") is None
    assert _Connection.compute.paths == ["/servers/u1", "/servers/u2"]
