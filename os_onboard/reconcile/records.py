"""The records side of drift: adopted servers as OpenStack holds them."""

from __future__ import annotations

from os_onboard.cloud.base import Cloud
from os_onboard.plan.model import MARKER_KEY
from os_onboard.reconcile.drift import AdoptedServer


def adopted_servers(cloud: Cloud) -> tuple[list[AdoptedServer], frozenset[str]]:
    """Every server carrying os-onboard's marker, with its ports and volumes;
    and the UUIDs of Nova's other servers (a VM Nova itself runs is known to
    OpenStack, not "not adopted").

    Three list calls however many servers there are (servers, ports, volumes).
    """
    every = cloud.servers()
    servers = {u: s for u, s in every.items() if MARKER_KEY in s["metadata"]}
    ports: dict[str, list[tuple[str, tuple[str, ...], str]]] = {}
    for port in cloud.ports():
        if port["device_id"] in servers:
            ips = tuple(sorted(ip["ip_address"] for ip in port["fixed_ips"]))
            ports.setdefault(port["device_id"], []).append((port["mac"], ips, port["host"]))
    devices: dict[str, list[str]] = {}
    for volume in cloud.volumes():
        for attachment in volume.get("attachments") or []:
            if attachment.get("server_id") in servers:
                devices.setdefault(attachment["server_id"], []).append(
                    attachment.get("device") or "")
    adopted = [AdoptedServer(uuid=u, name=s["name"], host=s["host"] or "", node=s["node"],
                             status=s["status"], vcpus=s["vcpus"] or 0, ram=s["ram"] or 0,
                             ports=tuple(ports.get(u, [])),
                             volume_devices=tuple(devices.get(u, [])))
               for u, s in servers.items()]
    return adopted, frozenset(every.keys() - servers.keys())
