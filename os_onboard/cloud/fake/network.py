"""Neutron of the fake cloud: a MAC is taken by one port per network, an IP by one per subnet."""

from __future__ import annotations

import ipaddress
from typing import Any

from os_onboard.cloud.fake.core import State, http_error, op

#: What :meth:`~os_onboard.cloud.base.Cloud.ports` shows of a port.
PORT_KEYS = ("id", "name", "network_id", "mac", "fixed_ips", "device_id", "device_owner",
             "host", "vif_type", "status", "description", "created_at")
#: openstacksdk's attribute (and list filter) names -> the port record's.
PORT_FIELDS = {"mac_address": "mac", "binding_host_id": "host",
               "binding_vif_type": "vif_type"}


class Network(State):
    """Networks, subnets, ports.

    ``ports_`` holds each port as :meth:`ports` shows it, plus ``project_id``.
    A bound port's ``vif_type`` is :attr:`vif_type`, or ``binding_failed``
    for a MAC in ``bind_fail`` (no mechanism driver on that host).
    """

    networks_: list[dict]
    subnets_: list[dict]
    ports_: list[dict]
    bind_fail: set[str]     # MACs whose ports do not bind
    vif_type: str           # what a bound port gets

    @op
    def networks(self) -> list[dict]:
        return self.networks_

    @op
    def subnets(self) -> list[dict]:
        return self.subnets_

    @op
    def ports(self, **filters: Any) -> list[dict]:
        wanted = {PORT_FIELDS.get(k, k): v for k, v in filters.items()}
        unknown = set(wanted) - set(PORT_KEYS) - {"project_id"}
        if unknown:
            raise TypeError(f"the fake cannot filter ports by {sorted(unknown)}")
        if "mac" in wanted:
            wanted["mac"] = wanted["mac"].lower()
        return [_shown(p) for p in self.ports_ if all(p.get(k) == v for k, v in wanted.items())]

    @op
    def create_network(self, name: str, physical_network: str, network_type: str,
                       segment: int | None, project_id: str | None) -> dict:
        network = {"id": self.new_id("net"), "name": name, "physical_network": physical_network,
                   "network_type": network_type, "segment": segment, "subnet_ids": []}
        self.networks_.append(network)
        return {"id": network["id"], "name": name}

    @op
    def create_subnet(self, name: str, network_id: str, cidr: str,
                      gateway: str | None) -> dict:
        network = self._network(network_id)
        subnet = {"id": self.new_id("subnet"), "name": name, "network_id": network_id,
                  "cidr": cidr, "enable_dhcp": False,
                  "ip_version": ipaddress.ip_network(cidr, strict=False).version}
        self.subnets_.append(subnet)
        network["subnet_ids"].append(subnet["id"])
        return {"id": subnet["id"], "name": name}

    @op
    def create_port(self, **attrs: Any) -> dict:
        self._check_new([attrs])
        return _shown(self._add_port(attrs))

    @op
    def create_ports(self, ports: list[dict[str, Any]]) -> list[dict]:
        self._check_new(ports)  # one transaction: every port or none
        return [_shown(self._add_port(a)) for a in ports]

    @op
    def update_port(self, port_id: str, **attrs: Any) -> dict:
        port = self._port(port_id)
        update = {PORT_FIELDS.get(k, k): v for k, v in attrs.items()}
        if "fixed_ips" in update:
            self._check_ips(update["fixed_ips"], {port_id})
            update["fixed_ips"] = [dict(ip) for ip in update["fixed_ips"]]
        port.update(update)
        port["vif_type"] = self._vif(port)
        return _shown(port)

    @op
    def delete_port(self, port_id: str) -> None:
        self.ports_ = [p for p in self.ports_ if p["id"] != port_id]

    def vifs(self, uuid: str) -> list[dict]:
        """The server's ports as Nova's network cache lists them: ``{"id", "mac"}``."""
        return [{"id": p["id"], "mac": p["mac"]} for p in self.ports_ if p["device_id"] == uuid]

    def _network(self, network_id: str) -> dict:
        found = next((n for n in self.networks_ if n["id"] == network_id), None)
        if found is None:
            raise http_error(f"network {network_id}", 404, f"Network {network_id} not found")
        return found

    def _port(self, port_id: str) -> dict:
        found = next((p for p in self.ports_ if p["id"] == port_id), None)
        if found is None:
            raise http_error(f"update port {port_id}", 404, f"Port {port_id} not found")
        return found

    def _check_new(self, ports: list[dict[str, Any]]) -> None:
        """Neutron's refusals of new ports: unknown network, MAC or IP in use (409)."""
        taken = {(p["network_id"], p["mac"]) for p in self.ports_}
        for attrs in ports:
            self._network(attrs["network_id"])
            key = (attrs["network_id"], (attrs.get("mac_address") or "").lower())
            if key[1] and key in taken:
                raise http_error(f"create port {key[1]}", 409,
                                 f"MAC address {key[1]} is in use on network {key[0]}")
            taken.add(key)
        self._check_ips([ip for a in ports for ip in a.get("fixed_ips") or []], set())

    def _check_ips(self, fixed_ips: list[dict], ignore: set[str]) -> None:
        used = {(ip["subnet_id"], ip.get("ip_address")) for p in self.ports_
                if p["id"] not in ignore for ip in p["fixed_ips"]}
        for ip in fixed_ips:
            key = (ip.get("subnet_id"), ip.get("ip_address"))
            if key[1] and key in used:
                raise http_error("create port", 409, f"IP address {key[1]} already "
                                 f"allocated in subnet {key[0]}")
            used.add(key)

    def _add_port(self, attrs: dict[str, Any]) -> dict:
        port = {"id": self.new_id("port"), "name": attrs.get("name") or "",
                "network_id": attrs["network_id"],
                "mac": (attrs.get("mac_address") or self._mac()).lower(),
                "fixed_ips": [dict(ip) for ip in attrs.get("fixed_ips") or []],
                "device_id": attrs.get("device_id") or "",
                "device_owner": attrs.get("device_owner") or "",
                "host": attrs.get("binding_host_id") or "", "status": "DOWN",
                "description": attrs.get("description") or "",
                "project_id": attrs.get("project_id"), "created_at": self.now()}
        port["vif_type"] = self._vif(port)
        self.ports_.append(port)
        return port

    def _vif(self, port: dict) -> str:
        if not port["host"]:
            return "unbound"
        return "binding_failed" if port["mac"] in self.bind_fail else self.vif_type

    def _mac(self) -> str:
        n = int(self.new_id("mac").rsplit("-", 1)[1])
        return f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"


def _shown(port: dict) -> dict:
    return {k: port.get(k) for k in PORT_KEYS}
