"""The records side of drift: adopted servers as OpenStack holds them."""

from __future__ import annotations

from os_onboard.cloud.base import Cloud
from os_onboard.plan.model import MARKER_KEY, VM_NAME_KEY
from os_onboard.reconcile.drift import AdoptedServer


def adopted_servers(cloud: Cloud) -> tuple[list[AdoptedServer], frozenset[str]]:
    """Every server carrying os-onboard's marker, with its ports and volumes;
    and the UUIDs of Nova's other servers and of Cinder's volumes (a VM Nova
    itself runs, or a VMDK volume's backing VM, is known to OpenStack, not
    "not adopted").

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
    volume_ids: dict[str, list[str]] = {}
    volumes = cloud.volumes()
    for volume in volumes:
        for attachment in volume.get("attachments") or []:
            if attachment.get("server_id") in servers:
                devices.setdefault(attachment["server_id"], []).append(
                    attachment.get("device") or "")
                volume_ids.setdefault(attachment["server_id"], []).append(volume["id"])
    adopted = [AdoptedServer(uuid=u, name=s["name"], host=s["host"] or "", node=s["node"],
                             status=s["status"], vcpus=s["vcpus"] or 0, ram=s["ram"] or 0,
                             ports=tuple(ports.get(u, [])),
                             volume_devices=tuple(devices.get(u, [])),
                             volume_ids=tuple(volume_ids.get(u, [])),
                             vm_name=s["metadata"].get(VM_NAME_KEY))
               for u, s in servers.items()]
    # Cinder's own VMs are OpenStack's too: a VMDK volume's backing VM has the
    # volume's id as its instanceUuid (never "not adopted")
    return adopted, frozenset((every.keys() - servers.keys()) | {v["id"] for v in volumes})
