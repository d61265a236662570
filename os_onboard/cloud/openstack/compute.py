"""Keystone, Nova and Glance, for :class:`~os_onboard.cloud.openstack.OpenStackCloud`."""

from __future__ import annotations

from typing import Any

from os_onboard.cloud.openstack.rest import (
    COMPUTE_HYPERVISORS,
    COMPUTE_SERVERS,
    Service,
    call,
    json_of,
    pages,
)


class Compute(Service):
    """Projects and users, compute nodes, servers, flavors, external events, images."""

    def project_id(self, name_or_id: str) -> str | None:
        project = call(f"project {name_or_id}",
                        lambda: self._conn.identity.find_project(name_or_id))
        return project.id if project else None

    def user_id(self, name_or_id: str) -> str | None:
        user = call(f"user {name_or_id}", lambda: self._conn.identity.find_user(name_or_id))
        return user.id if user else None

    def current_ids(self) -> tuple[str, str]:
        """(project id, user id) of the credentials in use."""
        return self._conn.current_project_id, self._conn.current_user_id

    # -- Nova ------------------------------------------------------------------
    def hypervisors(self) -> list[dict]:
        """Compute nodes: hypervisor hostname, node uuid, service host, state."""
        # 2.88: no per-hypervisor uptime, which nova-api fetches from each
        # nova-compute over RPC (one compute starting up = a 60 s timeout).
        response = call("list hypervisors", lambda: self._conn.compute.get(
            "/os-hypervisors/detail", microversion=COMPUTE_HYPERVISORS))
        found = json_of("list hypervisors", response)["hypervisors"]
        return [{"node": h["hypervisor_hostname"], "uuid": h["id"], "state": h["state"],
                 "status": h["status"], "host_ip": h.get("host_ip"),
                 "service_host": (h.get("service") or {}).get("host")} for h in found]

    def compute_services(self) -> list[dict]:
        found = call("list compute services", lambda: list(
            self._conn.compute.services(binary="nova-compute")))
        return [{"host": s.host, "state": s.state, "status": s.status} for s in found]

    def servers(self) -> dict[str, dict]:
        """Every server of every project, by uuid.

        Raw JSON pages, not SDK objects: openstacksdk builds each Server
        resource in ~6 ms (attribute mapping), a minute for 10,000 servers.
        """
        found = pages(self._rest("compute"), "servers", "/servers/detail",
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
        found = json_of(f"server {uuid}", response)["server"]
        return {"id": found["id"], "name": found["name"], "status": found["status"],
                "host": found.get("OS-EXT-SRV-ATTR:host"),
                "metadata": dict(found.get("metadata") or {})}

    def rename_server(self, uuid: str, name: str, metadata: dict[str, str]) -> None:
        rest = self._rest("compute")
        json_of(f"rename server {uuid}", rest.put(
            f"/servers/{uuid}", json={"server": {"name": name}}, microversion=COMPUTE_SERVERS))
        json_of(f"server {uuid} metadata", rest.post(
            f"/servers/{uuid}/metadata", json={"metadata": metadata},
            microversion=COMPUTE_SERVERS))

    def flavors(self) -> list[dict]:
        found = call("list flavors", lambda: list(
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
        flavor = call(f"create flavor {name}", create)
        if project_id and not flavor.is_public:
            access = call(f"flavor access {name}",
                           lambda: self._conn.compute.get_flavor_access(flavor))
            if project_id not in {a["tenant_id"] for a in access}:
                call(f"flavor access {name}",
                      lambda: self._conn.compute.flavor_add_tenant_access(flavor, project_id))
        return {"id": flavor.id, "name": flavor.name}

    def server_event(self, uuid: str, name: str, tag: str | None = None) -> None:
        event = {"name": name, "server_uuid": uuid}
        if tag:
            event["tag"] = tag
        json_of("server external event", self._rest("compute").post(
            "/os-server-external-events", json={"events": [event]}))

    # -- Glance --------------------------------------------------------------
    def image_by_name(self, name: str) -> dict | None:
        found = call(f"image {name}", lambda: self._conn.image.find_image(
            name, ignore_missing=True))
        return {"id": found.id, "name": found.name, "status": found.status} if found else None

    def upload_image(self, name: str, filename: str, disk_format: str,
                     properties: dict[str, str]) -> dict:
        """Upload a file as a (public) image; kernels and ramdisks of direct-boot VMs."""
        image = call(f"upload image {name}", lambda: self._conn.image.create_image(
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
        call(f"delete image {image_id}",
              lambda: self._conn.image.delete_image(image_id, ignore_missing=True))
