"""Neutron, for :class:`~os_onboard.cloud.openstack.OpenStackCloud`."""

from __future__ import annotations

from typing import Any

from os_onboard.cloud.openstack.rest import Service, call, pages, port_json, port_of


class Network(Service):
    """Networks, subnets and ports."""

    def networks(self) -> list[dict]:
        found = call("list networks", lambda: list(self._conn.network.networks()))
        return [{"id": n.id, "name": n.name, "physical_network": n.provider_physical_network,
                 "network_type": n.provider_network_type, "segment": n.provider_segmentation_id,
                 "subnet_ids": list(n.subnet_ids or [])} for n in found]

    def subnets(self) -> list[dict]:
        found = call("list subnets", lambda: list(self._conn.network.subnets()))
        return [{"id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr,
                 "enable_dhcp": s.is_dhcp_enabled, "ip_version": s.ip_version}
                for s in found]

    def ports(self, **filters: Any) -> list[dict]:
        if not filters:  # every port: raw JSON, as servers() (SDK objects cost ~1 ms each)
            return [port_json(p) for p in pages(self._rest("network"), "ports", "/ports",
                                                  {}, None)]
        found = call("list ports", lambda: list(self._conn.network.ports(**filters)))
        return [port_of(p) for p in found]

    def create_network(self, name: str, physical_network: str, network_type: str,
                       segment: int | None, project_id: str | None) -> dict:
        attrs: dict[str, Any] = {"name": name, "provider_physical_network": physical_network,
                                 "provider_network_type": network_type}
        if segment is not None:
            attrs["provider_segmentation_id"] = segment
        if project_id:
            attrs["project_id"] = project_id
        net = call(f"create network {name}", lambda: self._conn.network.create_network(**attrs))
        return {"id": net.id, "name": net.name}

    def create_subnet(self, name: str, network_id: str, cidr: str,
                      gateway: str | None) -> dict:
        """Always with DHCP off: the legacy segment already has its DHCP server."""
        attrs: dict[str, Any] = {"name": name, "network_id": network_id, "cidr": cidr,
                                 "ip_version": 6 if ":" in cidr else 4,
                                 "is_dhcp_enabled": False}
        if gateway:
            attrs["gateway_ip"] = gateway
        sub = call(f"create subnet {name}", lambda: self._conn.network.create_subnet(**attrs))
        return {"id": sub.id, "name": sub.name}

    def create_port(self, **attrs: Any) -> dict:
        port = call(f"create port {attrs.get('mac_address')}",
                     lambda: self._conn.network.create_port(**attrs))
        return port_of(port)

    def create_ports(self, ports: list[dict[str, Any]]) -> list[dict]:
        """Neutron's bulk create: one request, one transaction (all or none).

        The ports come back in the order given.
        """
        made = call(f"create {len(ports)} ports",
                     lambda: list(self._conn.network.create_ports(ports)))
        return [port_of(p) for p in made]

    def update_port(self, port_id: str, **attrs: Any) -> dict:
        port = call(f"update port {port_id}",
                     lambda: self._conn.network.update_port(port_id, **attrs))
        return port_of(port)

    def delete_port(self, port_id: str) -> None:
        call(f"delete port {port_id}",
              lambda: self._conn.network.delete_port(port_id, ignore_missing=True))
