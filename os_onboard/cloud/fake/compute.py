"""Keystone, Nova and Glance of the fake cloud."""

from __future__ import annotations

from typing import Any

from os_onboard.cloud.fake.core import State, http_error, op

#: Nova's status of a server per vm_state (what ``openstack server list`` shows).
STATUS = {"active": "ACTIVE", "stopped": "SHUTOFF", "paused": "PAUSED",
          "suspended": "SUSPENDED", "error": "ERROR", "building": "BUILD"}


class Compute(State):
    """Projects and users by name, compute nodes, servers, flavors, images.

    ``servers_`` holds each server as :meth:`servers` shows it, by uuid; a
    uuid is taken once (:meth:`add_server` refuses a second with a 409, as
    Nova's unique index does).
    """

    projects: dict[str, str]              # name -> id
    users: dict[str, str]                 # name -> id
    credentials: tuple[str, str]          # (project id, user id) of current_ids()
    hypervisors_: list[dict]
    servers_: dict[str, dict]             # uuid -> as servers() shows it
    flavors_: list[dict]
    flavor_access: dict[str, set[str]]    # private flavor id -> project ids
    images: dict[str, dict]               # name -> {"id", "name", "status", ...}
    events: list[dict]                    # external events sent

    def add_server(self, uuid: str, name: str, host: str | None = None,
                   node: str | None = None, **fields: Any) -> dict:
        """A server record (Nova's, as the adopt helper or a person would make it)."""
        if uuid in self.servers_:
            raise http_error(f"server {uuid}", 409, f"instance {uuid} already exists")
        vm_state = fields.pop("vm_state", "active")
        self.servers_[uuid] = {
            "name": name, "status": STATUS.get(vm_state, vm_state.upper()), "host": host,
            "node": node, "metadata": {}, "project_id": None, "flavor": None, "vcpus": None,
            "ram": None, "vm_state": vm_state, "power_state": 1, "task_state": None, **fields}
        return self.servers_[uuid]

    # -- Keystone ------------------------------------------------------------
    @op
    def project_id(self, name_or_id: str) -> str | None:
        return _lookup(self.projects, name_or_id)

    @op
    def user_id(self, name_or_id: str) -> str | None:
        return _lookup(self.users, name_or_id)

    @op
    def current_ids(self) -> tuple[str, str]:
        return self.credentials

    # -- Nova ------------------------------------------------------------------
    @op
    def hypervisors(self) -> list[dict]:
        return self.hypervisors_

    @op
    def compute_services(self) -> list[dict]:
        return [{"host": h["service_host"], "state": h["state"], "status": h["status"]}
                for h in self.hypervisors_]

    @op
    def servers(self) -> dict[str, dict]:
        return self.servers_

    @op
    def server(self, uuid: str) -> dict | None:
        found = self.servers_.get(uuid)
        return found and {"id": uuid, **{k: found.get(k) for k in ("name", "status", "host",
                                                                    "metadata")}}

    @op
    def rename_server(self, uuid: str, name: str, metadata: dict[str, str]) -> None:
        server = self.servers_.get(uuid)
        if server is None:
            raise http_error(f"server {uuid}", 404, f"no instance {uuid}")
        server["name"] = name
        if server.get("task_state"):  # Nova's metadata API: task_state=None only
            raise http_error(f"server {uuid} metadata", 409,
                             f"instance {uuid} in task_state {server['task_state']}")
        server["metadata"].update(metadata)

    @op
    def flavors(self) -> list[dict]:
        return self.flavors_

    @op
    def create_flavor(self, name: str, vcpus: int, ram: int, disk: int,
                      project_id: str | None, description: str) -> dict:
        flavor = next((f for f in self.flavors_ if f["name"] == name), None)
        if flavor is None:
            flavor = {"id": self.new_id("flavor"), "name": name, "vcpus": vcpus, "ram": ram,
                      "disk": disk, "ephemeral": 0, "swap": 0,
                      "is_public": project_id is None, "extra_specs": {}}
            self.flavors_.append(flavor)
        if project_id and not flavor["is_public"]:
            self.flavor_access.setdefault(flavor["id"], set()).add(project_id)
        return {"id": flavor["id"], "name": name}

    @op
    def server_event(self, uuid: str, name: str, tag: str | None = None) -> None:
        if uuid not in self.servers_:
            raise http_error("server external event", 404, f"no instance {uuid}")
        self.events.append({"server_uuid": uuid, "name": name, "tag": tag})

    # -- Glance --------------------------------------------------------------
    @op
    def image_by_name(self, name: str) -> dict | None:
        found = self.images.get(name)
        return found and {k: found[k] for k in ("id", "name", "status")}

    @op
    def upload_image(self, name: str, filename: str, disk_format: str,
                     properties: dict[str, str]) -> dict:
        return self._image(name, disk_format, properties, filename)

    @op
    def create_image_record(self, name: str, properties: dict[str, str]) -> dict:
        return self._image(name, "raw", properties, None)

    def _image(self, name: str, disk_format: str, properties: dict[str, str],
               filename: str | None) -> dict:
        self.images[name] = {"id": self.new_id("image"), "name": name, "status": "active",
                             "disk_format": disk_format, "properties": dict(properties),
                             "file": filename}
        return {"id": self.images[name]["id"], "name": name}

    @op
    def delete_image(self, image_id: str) -> None:
        self.images = {n: i for n, i in self.images.items() if i["id"] != image_id}


def _lookup(by_name: dict[str, str], name_or_id: str) -> str | None:
    if name_or_id in by_name:
        return by_name[name_or_id]
    return name_or_id if name_or_id in by_name.values() else None
