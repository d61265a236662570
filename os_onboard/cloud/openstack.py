"""The OpenStack side, on public APIs only: the one module importing openstacksdk.

Everything os-onboard asks of Keystone, Nova, Neutron, Cinder, Glance and
Placement goes through :class:`OpenStackCloud`; callers get plain dicts and
:class:`~os_onboard.exceptions.CloudError`, never SDK objects or SDK errors.
Where openstacksdk has no proxy call for an API (Cinder's manage and v3
attachments, Placement allocations) the raw REST call is made through the
service's authenticated session adapter, with the microversion it needs.

Credentials come from clouds.yaml (``--os-cloud``/``OS_CLOUD``), as for the
``openstack`` CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import openstack
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from os_onboard.cloud.base import Cloud
from os_onboard.exceptions import CloudError

T = TypeVar("T")

#: Microversions of the raw calls (the oldest that has every field used).
CINDER_ATTACHMENTS = "3.44"   # attachment create + os-complete
CINDER_MANAGE = "3.16"        # manage by host (cluster optional)
PLACEMENT_ALLOCATIONS = "1.38"  # consumer_generation + consumer_type
COMPUTE_HYPERVISORS = "2.88"  # uuid ids, no uptime (no RPC per compute)
COMPUTE_SERVERS = "2.47"      # the flavor embedded (vcpus, ram) in each server


class TemporaryCloudError(CloudError):
    """The service did not answer or answered 5xx: retrying later may work."""

    temporary = True


class VolumeWentToError(CloudError):
    """A volume os-onboard waited for reached an error status instead."""

    def __init__(self, volume_id: str, status: str) -> None:
        super().__init__(f"volume {volume_id} went to {status}; see cinder-volume's log")
        self.volume_id, self.status = volume_id, status


def _translate(what: str, exc: Exception) -> CloudError:
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    detail = getattr(exc, "details", None) or str(exc)
    message = f"{what}: {detail}".strip()
    if isinstance(exc, ksa_exc.ConnectFailure | ksa_exc.ConnectTimeout
                  | ksa_exc.ServiceUnavailable) or (status and int(status) >= 500):
        return TemporaryCloudError(message)
    error = CloudError(message)
    error.status_code = status  # type: ignore[attr-defined]
    return error


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (sdk_exc.SDKException, ksa_exc.ClientException) as exc:
        raise _translate(what, exc) from exc


def _json(what: str, response: Any) -> dict:
    if response.status_code >= 400:
        error = sdk_exc.HttpException(response=response, details=_message(response))
        raise _translate(what, error)
    return response.json() if response.content else {}


def _message(response: Any) -> str:
    """The service's own words: {"badRequest": {"message": …}} and friends."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return f"HTTP {response.status_code}: {value['message']}"
        if body.get("errors"):
            return f"HTTP {response.status_code}: {body['errors'][0].get('detail')}"
    return f"HTTP {response.status_code}: {str(body)[:200]}"


class _Rest:
    """A service proxy's raw REST calls, with connection errors translated.

    Status codes are left to the caller (:func:`_json`); a refused or timed
    out connection becomes a :class:`TemporaryCloudError` here.
    """

    def __init__(self, connection: Any, service: str) -> None:
        self._connection, self._service = connection, service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(url: str, *args: Any, **kwargs: Any) -> Any:
            # The proxy itself is made on first use (version discovery), so
            # "service down" may surface there too.
            return _call(f"{self._service} {method.upper()} {url}", lambda: getattr(
                getattr(self._connection, self._service), method)(url, *args, **kwargs))
        return call


class OpenStackCloud(Cloud):
    """One authenticated connection to a cloud (admin credentials expected)."""

    def __init__(self, cloud: str | None = None, connection: Any = None) -> None:
        self.cloud = cloud
        self._conn = connection or _call(
            f"cannot connect to cloud {cloud or '(OS_CLOUD)'}",
            lambda: openstack.connect(cloud=cloud))

    def _rest(self, service: str) -> _Rest:
        return _Rest(self._conn, service)

    # -- Keystone ------------------------------------------------------------
    def project_id(self, name_or_id: str) -> str | None:
        project = _call(f"project {name_or_id}",
                        lambda: self._conn.identity.find_project(name_or_id))
        return project.id if project else None

    def user_id(self, name_or_id: str) -> str | None:
        user = _call(f"user {name_or_id}", lambda: self._conn.identity.find_user(name_or_id))
        return user.id if user else None

    def current_ids(self) -> tuple[str, str]:
        """(project id, user id) of the credentials in use."""
        return self._conn.current_project_id, self._conn.current_user_id

    # -- Nova ------------------------------------------------------------------
    def hypervisors(self) -> list[dict]:
        """Compute nodes: hypervisor hostname, node uuid, service host, state."""
        # 2.88: no per-hypervisor uptime, which nova-api fetches from each
        # nova-compute over RPC (one compute starting up = a 60 s timeout).
        response = _call("list hypervisors", lambda: self._conn.compute.get(
            "/os-hypervisors/detail", microversion=COMPUTE_HYPERVISORS))
        found = _json("list hypervisors", response)["hypervisors"]
        return [{"node": h["hypervisor_hostname"], "uuid": h["id"], "state": h["state"],
                 "status": h["status"], "host_ip": h.get("host_ip"),
                 "service_host": (h.get("service") or {}).get("host")} for h in found]

    def compute_services(self) -> list[dict]:
        found = _call("list compute services", lambda: list(
            self._conn.compute.services(binary="nova-compute")))
        return [{"host": s.host, "state": s.state, "status": s.status} for s in found]

    def servers(self) -> dict[str, dict]:
        """Every server of every project, by uuid.

        Raw JSON pages, not SDK objects: openstacksdk builds each Server
        resource in ~6 ms (attribute mapping), a minute for 10,000 servers.
        """
        found = _pages(self._rest("compute"), "servers", "/servers/detail",
                       {"all_tenants": "True"}, COMPUTE_SERVERS)
        return {s["id"]: {"name": s["name"], "status": s["status"],
                          "host": s.get("OS-EXT-SRV-ATTR:host"),
                          "node": s.get("OS-EXT-SRV-ATTR:hypervisor_hostname"),
                          "metadata": dict(s.get("metadata") or {}),
                          "project_id": s.get("tenant_id"),
                          "flavor": (s.get("flavor") or {}).get("original_name"),
                          "vcpus": (s.get("flavor") or {}).get("vcpus"),
                          "ram": (s.get("flavor") or {}).get("ram"),
                          "vm_state": s.get("OS-EXT-STS:vm_state"),
                          "power_state": s.get("OS-EXT-STS:power_state"),
                          "task_state": s.get("OS-EXT-STS:task_state")}
                for s in found}

    def server(self, uuid: str) -> dict | None:
        # GET /servers/{uuid} only: the SDK's find_server falls back to listing
        # every server by name on a 404 (~33 s at 10,000 servers).
        response = self._rest("compute").get(f"/servers/{uuid}", microversion=COMPUTE_SERVERS)
        if response.status_code == 404:
            return None
        found = _json(f"server {uuid}", response)["server"]
        return {"id": found["id"], "name": found["name"], "status": found["status"],
                "host": found.get("OS-EXT-SRV-ATTR:host"),
                "metadata": dict(found.get("metadata") or {})}

    def flavors(self) -> list[dict]:
        found = _call("list flavors", lambda: list(
            self._conn.compute.flavors(details=True, is_public=None)))
        return [{"id": f.id, "name": f.name, "vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
                 "ephemeral": f.ephemeral, "swap": f.swap or 0, "is_public": f.is_public,
                 "extra_specs": dict(f.extra_specs or {})} for f in found]

    def create_flavor(self, name: str, vcpus: int, ram: int, disk: int,
                      project_id: str | None, description: str) -> dict:
        """A flavor for one VM shape; private to ``project_id`` when given."""
        def create() -> Any:
            existing = self._conn.compute.find_flavor(name, ignore_missing=True)
            if existing:
                return existing
            return self._conn.compute.create_flavor(
                name=name, vcpus=vcpus, ram=ram, disk=disk,
                is_public=project_id is None, description=description)
        flavor = _call(f"create flavor {name}", create)
        if project_id and not flavor.is_public:
            access = _call(f"flavor access {name}",
                           lambda: self._conn.compute.get_flavor_access(flavor))
            if project_id not in {a["tenant_id"] for a in access}:
                _call(f"flavor access {name}",
                      lambda: self._conn.compute.flavor_add_tenant_access(flavor, project_id))
        return {"id": flavor.id, "name": flavor.name}

    def server_event(self, uuid: str, name: str, tag: str | None = None) -> None:
        event = {"name": name, "server_uuid": uuid}
        if tag:
            event["tag"] = tag
        _json("server external event", self._rest("compute").post(
            "/os-server-external-events", json={"events": [event]}))

    # -- Glance --------------------------------------------------------------
    def image_by_name(self, name: str) -> dict | None:
        found = _call(f"image {name}", lambda: self._conn.image.find_image(
            name, ignore_missing=True))
        return {"id": found.id, "name": found.name, "status": found.status} if found else None

    def upload_image(self, name: str, filename: str, disk_format: str,
                     properties: dict[str, str]) -> dict:
        """Upload a file as a (public) image; kernels and ramdisks of direct-boot VMs."""
        image = _call(f"upload image {name}", lambda: self._conn.image.create_image(
            name=name, filename=filename, disk_format=disk_format,
            container_format=disk_format if disk_format in ("aki", "ari", "ami") else "bare",
            visibility="public", wait=True, **properties))
        return {"id": image.id, "name": image.name}

    def create_image_record(self, name: str, properties: dict[str, str]) -> dict:
        """An image with data: the Nova root-disk placeholder (never booted from).

        Nova's libvirt driver fetches the image of an image-backed server into
        its cache on a rebuild, even when the instance disk already exists
        (Qcow2.create_image) - so it must have bytes; one 1 KiB zero file.
        """
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".raw") as blank:
            blank.write(b"\0" * 1024)
            blank.flush()
            return self.upload_image(name, blank.name, "raw", properties)

    def delete_image(self, image_id: str) -> None:
        _call(f"delete image {image_id}",
              lambda: self._conn.image.delete_image(image_id, ignore_missing=True))

    # -- Neutron -------------------------------------------------------------
    def networks(self) -> list[dict]:
        found = _call("list networks", lambda: list(self._conn.network.networks()))
        return [{"id": n.id, "name": n.name, "physical_network": n.provider_physical_network,
                 "network_type": n.provider_network_type, "segment": n.provider_segmentation_id,
                 "subnet_ids": list(n.subnet_ids or [])} for n in found]

    def subnets(self) -> list[dict]:
        found = _call("list subnets", lambda: list(self._conn.network.subnets()))
        return [{"id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr,
                 "enable_dhcp": s.is_dhcp_enabled, "ip_version": s.ip_version}
                for s in found]

    def ports(self, **filters: Any) -> list[dict]:
        if not filters:  # every port: raw JSON, as servers() (SDK objects cost ~1 ms each)
            return [_port_json(p) for p in _pages(self._rest("network"), "ports", "/ports",
                                                  {}, None)]
        found = _call("list ports", lambda: list(self._conn.network.ports(**filters)))
        return [_port(p) for p in found]

    def create_network(self, name: str, physical_network: str, network_type: str,
                       segment: int | None, project_id: str | None) -> dict:
        attrs: dict[str, Any] = {"name": name, "provider_physical_network": physical_network,
                                 "provider_network_type": network_type}
        if segment is not None:
            attrs["provider_segmentation_id"] = segment
        if project_id:
            attrs["project_id"] = project_id
        net = _call(f"create network {name}", lambda: self._conn.network.create_network(**attrs))
        return {"id": net.id, "name": net.name}

    def create_subnet(self, name: str, network_id: str, cidr: str,
                      gateway: str | None) -> dict:
        """Always with DHCP off: the legacy segment already has its DHCP server."""
        attrs: dict[str, Any] = {"name": name, "network_id": network_id, "cidr": cidr,
                                 "ip_version": 6 if ":" in cidr else 4,
                                 "is_dhcp_enabled": False}
        if gateway:
            attrs["gateway_ip"] = gateway
        sub = _call(f"create subnet {name}", lambda: self._conn.network.create_subnet(**attrs))
        return {"id": sub.id, "name": sub.name}

    def create_port(self, **attrs: Any) -> dict:
        port = _call(f"create port {attrs.get('mac_address')}",
                     lambda: self._conn.network.create_port(**attrs))
        return _port(port)

    def create_ports(self, ports: list[dict[str, Any]]) -> list[dict]:
        """Neutron's bulk create: one request, one transaction (all or none).

        The ports come back in the order given.
        """
        made = _call(f"create {len(ports)} ports",
                     lambda: list(self._conn.network.create_ports(ports)))
        return [_port(p) for p in made]

    def update_port(self, port_id: str, **attrs: Any) -> dict:
        port = _call(f"update port {port_id}",
                     lambda: self._conn.network.update_port(port_id, **attrs))
        return _port(port)

    def delete_port(self, port_id: str) -> None:
        _call(f"delete port {port_id}",
              lambda: self._conn.network.delete_port(port_id, ignore_missing=True))

    # -- Cinder ----------------------------------------------------------------
    def volume(self, volume_id: str) -> dict | None:
        response = self._rest("block_storage").get(f"/volumes/{volume_id}",
                                                microversion=CINDER_ATTACHMENTS)
        if response.status_code == 404:
            return None
        return _json(f"volume {volume_id}", response)["volume"]

    def volumes(self, **filters: Any) -> list[dict]:
        """Every page: cinder-api returns at most osapi_max_limit (1,000) per request."""
        return _pages(self._rest("block_storage"), "volumes", "/volumes/detail",
                      {"all_tenants": 1, **filters}, CINDER_ATTACHMENTS)

    def manageable_volumes(self, host: str) -> list[dict]:
        """What the backend pool ``host`` could manage (and what it already does),
        each with the reference a manage request wants back; one request, the
        list is not paged unless asked to be."""
        response = self._rest("block_storage").get(
            "/manageable_volumes/detail", params={"host": host}, microversion=CINDER_MANAGE)
        return _json(f"manageable volumes of {host}", response).get("manageable-volumes") or []

    def manage_volume(self, host: str, ref: dict, name: str, metadata: dict[str, str],
                      bootable: bool = False) -> dict:
        body = {"volume": {"host": host, "ref": ref, "name": name, "metadata": metadata,
                           "bootable": bootable}}
        response = self._rest("block_storage").post("/manageable_volumes", json=body,
                                                 microversion=CINDER_MANAGE)
        return _json(f"manage {ref} on {host}", response)["volume"]

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
        attachment = _json(f"attach volume {volume_id}", response)["attachment"]
        return attachment

    def complete_attachment(self, attachment_id: str) -> None:
        response = self._rest("block_storage").post(
            f"/attachments/{attachment_id}/action", json={"os-complete": None},
            microversion=CINDER_ATTACHMENTS)
        _json(f"complete attachment {attachment_id}", response)

    def update_attachment(self, attachment_id: str, connector: dict) -> dict:
        """New connector (e.g. the host after an out-of-band live migration).

        The driver's initialize_connection runs for the new connector; nothing
        is terminated, so the connection in use stays.
        """
        response = self._rest("block_storage").put(
            f"/attachments/{attachment_id}", json={"attachment": {"connector": connector}},
            microversion=CINDER_ATTACHMENTS)
        return _json(f"update attachment {attachment_id}", response)["attachment"]

    def attachments(self, volume_id: str) -> list[dict]:
        response = self._rest("block_storage").get(
            "/attachments/detail", params={"volume_id": volume_id, "all_tenants": 1},
            microversion=CINDER_ATTACHMENTS)
        return _json(f"attachments of {volume_id}", response)["attachments"]

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
        _json(f"reset volume {volume_id}", response)

    def unmanage_volume(self, volume_id: str) -> None:
        response = self._rest("block_storage").post(f"/volumes/{volume_id}/action",
                                                 json={"os-unmanage": {}},
                                                 microversion=CINDER_ATTACHMENTS)
        if response.status_code != 404:
            _json(f"unmanage volume {volume_id}", response)

    # -- Placement -------------------------------------------------------------
    def allocations(self, consumer: str) -> dict:
        response = self._rest("placement").get(f"/allocations/{consumer}",
                                            microversion=PLACEMENT_ALLOCATIONS)
        return _json(f"allocations of {consumer}", response)

    def put_allocations(self, consumer: str, provider: str, resources: dict[str, int],
                        project_id: str, user_id: str, generation: int | None) -> None:
        body = {"allocations": {provider: {"resources": resources}},
                "consumer_generation": generation, "project_id": project_id,
                "user_id": user_id, "consumer_type": "INSTANCE"}
        response = self._rest("placement").put(f"/allocations/{consumer}", json=body,
                                            microversion=PLACEMENT_ALLOCATIONS)
        _json(f"allocate {consumer}", response)

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
        _json(f"allocate {len(consumers)} consumers", response)

    def delete_allocations(self, consumer: str) -> None:
        response = self._rest("placement").delete(f"/allocations/{consumer}",
                                               microversion=PLACEMENT_ALLOCATIONS)
        if response.status_code != 404:
            _json(f"delete allocations of {consumer}", response)


def _pages(rest: _Rest, key: str, path: str, params: dict, microversion: str | None,
           ) -> list[dict]:
    """Every item of a paged list: follow ``<key>_links`` (Nova, Cinder, Neutron).

    The next page is asked of the same endpoint with the query of the link
    (marker, limit): the link's host may be one only the service sees.
    """
    items: list[dict] = []
    query = dict(params)
    while True:
        kwargs = {"microversion": microversion} if microversion else {}
        page = _json(f"list {key}", rest.get(path, params=query, **kwargs))
        found = page.get(key) or []
        items.extend(found)
        nxt = next((link["href"] for link in page.get(f"{key}_links") or []
                    if link.get("rel") == "next"), None)
        if not nxt or not found:
            return items
        query = {**params, **dict(parse_qsl(urlsplit(nxt).query))}


def _port_json(port: dict) -> dict:
    """:func:`_port` from Neutron's JSON."""
    return {"id": port["id"], "name": port.get("name"), "network_id": port.get("network_id"),
            "mac": (port.get("mac_address") or "").lower(),
            "fixed_ips": [dict(ip) for ip in port.get("fixed_ips") or []],
            "device_id": port.get("device_id") or "",
            "device_owner": port.get("device_owner") or "",
            "host": port.get("binding:host_id") or "", "vif_type": port.get("binding:vif_type"),
            "status": port.get("status"), "description": port.get("description") or ""}


def _port(port: Any) -> dict:
    return {"id": port.id, "name": port.name, "network_id": port.network_id,
            "mac": (port.mac_address or "").lower(),
            "fixed_ips": [dict(ip) for ip in port.fixed_ips or []],
            "device_id": port.device_id or "", "device_owner": port.device_owner or "",
            "host": port.binding_host_id or "", "vif_type": port.binding_vif_type,
            "status": port.status, "description": port.description or ""}
