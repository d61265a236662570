"""The simulated estate of the reconcile benchmark, both sides from one source.

The hypervisor side is bench/discovery's: libvirt test-driver node files
written by :func:`os_onboard.drivers.libvirt.testnode.write_estate` (per
host 7 VMs running, 1 paused, 2 shut off; a root disk ``vda``, a data disk
``sda`` and one NIC each). The OpenStack side is what an adoption of those VMs
would have recorded (a Nova server with os-onboard's marker, a Neutron port
with the NIC's MAC, a Cinder volume attached at ``/dev/sda``), derived from
the very domain XML the test driver serves - then changed on purpose, by
index, so that a pass has drift of every kind it can see to find:

======== ============== ==================================================
i % D    kind           how the records differ from the VM
======== ============== ==================================================
0        host-changed   server recorded on another compute node
11       resized        flavor with one vCPU more
22       power-changed  server PAUSED, VM running
33       nic-removed    a second port whose MAC no NIC has
44       disk-removed   a second volume attached at /dev/sdc
55       not-adopted    no server at all for the VM
======== ============== ==================================================

plus ``gone`` servers whose VM no host has (vm-gone) and ``foreign`` servers
without the marker (ignored by a pass). ``i`` is the VM's index in the estate
(host * vms_per_host + vm), D is ``--drift-every``. :func:`build` returns the
records and the drift a correct pass must find, as (kind, uuid) pairs.
"""

from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from os_onboard.drivers.libvirt.testnode import domain_xml
from os_onboard.plan.model import MARKER_KEY

STATUS = {"1": "ACTIVE", "3": "PAUSED", "5": "SHUTOFF"}  # test:runstate -> Nova status
POWER = {"ACTIVE": 1, "PAUSED": 3, "SHUTOFF": 4}
VM_STATE = {"ACTIVE": "active", "PAUSED": "paused", "SHUTOFF": "stopped"}
TEST_NS = "{http://libvirt.org/schemas/domain/test/1.0}"
OTHER_NODE = "sim-elsewhere"
PROJECT = "5e1b0c0ffee04c0d9a1d1e5e1b0c0ffe"
USER = "0b5e55ed0b5e4e55a5e55ed0b5e55ed0"
NETWORK = "7ab1e5ee-0000-4000-8000-00000000beef"
SUBNET = "7ab1e5ee-0000-4000-8000-00000000cafe"


@dataclass
class Records:
    servers: list[dict] = field(default_factory=list)
    ports: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    hypervisors: list[dict] = field(default_factory=list)
    expected: set[tuple[str, str]] = field(default_factory=set)  # (drift kind, uuid)


def _ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _stable_uuid(*parts: object) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "/".join(map(str, parts))))


def build(hosts: int, vms_per_host: int, hostname: str, drift_every: int = 100,
          gone: int = 50, foreign: int = 100) -> Records:
    """:param hostname: what libvirtd reports for every test-driver host (see README)."""
    rec = Records()
    hypervisor_id = _stable_uuid("hypervisor", hostname)
    rec.hypervisors.append(_hypervisor(hypervisor_id, hostname))
    rec.hypervisors.append(_hypervisor(_stable_uuid("hypervisor", OTHER_NODE), OTHER_NODE))
    for host in range(hosts):
        active = 0  # the test driver numbers a host's active domains 1, 2, ... in file order
        for vm in range(vms_per_host):
            i = host * vms_per_host + vm
            dom = ET.fromstring(domain_xml(host, vm))
            uuid = dom.findtext("uuid")
            name = dom.findtext("name")
            status = STATUS[dom.findtext(f"{TEST_NS}runstate")]
            vcpus = int(dom.findtext("vcpu"))
            ram = int(dom.findtext("memory"))  # unit='MiB' in testnode
            mac = dom.find("devices/interface/mac").get("address").lower()
            # The test driver's lease for a NIC: 192.168.122.(3 + 20 * (domain id - 1)).
            ip = f"192.168.122.{3 + 20 * active}" if status != "SHUTOFF" else _ip(i)
            active += status != "SHUTOFF"
            kind = i % drift_every if drift_every else -1
            if kind == 55:
                rec.expected.add(("not-adopted", uuid))
                continue
            node = hostname
            if kind == 0 and status == "ACTIVE":
                node = OTHER_NODE
                rec.expected.add(("host-changed", uuid))
            if kind == 11:
                vcpus += 1
                rec.expected.add(("resized", uuid))
            if kind == 22 and status == "ACTIVE":
                status = "PAUSED"
                rec.expected.add(("power-changed", uuid))
            rec.servers.append(_server(uuid, name, node, status, vcpus, ram, mac, ip, True))
            rec.ports.append(_port(uuid, mac, ip, node))
            rec.volumes.append(_volume(uuid, name, "data", "/dev/sda"))
            if kind == 33:
                extra = f"fa:16:3e:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
                rec.ports.append(_port(uuid, extra, _ip(i | 1 << 23), node))
                rec.expected.add(("nic-removed", uuid))
            if kind == 44:
                rec.volumes.append(_volume(uuid, name, "extra", "/dev/sdc"))
                rec.expected.add(("disk-removed", uuid))
    for g in range(gone):
        uuid = _stable_uuid("gone", g)
        rec.servers.append(_server(uuid, f"gone-{g}", hostname, "ACTIVE", 1, 512,
                                   "fa:16:3f:00:00:00", "10.255.0.1", True))
        rec.expected.add(("vm-gone", uuid))
    for f in range(foreign):
        uuid = _stable_uuid("foreign", f)
        rec.servers.append(_server(uuid, f"tenant-vm-{f}", OTHER_NODE, "ACTIVE", 2, 2048,
                                   "fa:16:3f:00:00:01", "10.254.0.1", False))
    # Nova lists newest first and pages by marker; any fixed order will do.
    rec.servers.sort(key=lambda s: s["id"])
    return rec


def _hypervisor(uuid: str, node: str) -> dict:
    return {"id": uuid, "hypervisor_hostname": node, "state": "up", "status": "enabled",
            "hypervisor_type": "QEMU", "host_ip": "192.0.2.1",
            "service": {"host": f"compute-{node}", "id": _stable_uuid("service", node),
                        "disabled_reason": None}, "servers": None}


def _server(uuid: str, name: str, node: str, status: str, vcpus: int, ram: int, mac: str,
            ip: str, adopted: bool) -> dict:
    """A server as nova-api 2.96 shows it in /servers/detail (admin)."""
    metadata = {MARKER_KEY: "bench"} if adopted else {}
    return {
        "id": uuid, "name": name, "status": status, "tenant_id": PROJECT, "user_id": USER,
        "metadata": metadata, "hostId": _stable_uuid("hostid", node).replace("-", ""),
        "image": "", "flavor": {"vcpus": vcpus, "ram": ram, "disk": 10, "ephemeral": 0,
                                "swap": 0, "original_name": f"onboard-{vcpus}c{ram}m",
                                "extra_specs": {"hw:cpu_policy": "shared"}},
        "created": "2026-12-01T10:00:00Z", "updated": "2026-12-01T10:05:00Z",
        "addresses": {"onboard": [{"version": 4, "addr": ip, "OS-EXT-IPS:type": "fixed",
                                   "OS-EXT-IPS-MAC:mac_addr": mac}]},
        "accessIPv4": "", "accessIPv6": "",
        "links": [{"rel": "self", "href": f"http://nova/v2.1/servers/{uuid}"},
                  {"rel": "bookmark", "href": f"http://nova/servers/{uuid}"}],
        "OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "", "key_name": None, "OS-SRV-USG:launched_at":
        "2026-12-01T10:04:00.000000", "OS-SRV-USG:terminated_at": None,
        "OS-EXT-SRV-ATTR:host": f"compute-{node}", "OS-EXT-SRV-ATTR:instance_name":
        f"instance-{uuid[:8]}", "OS-EXT-SRV-ATTR:hypervisor_hostname": node,
        "OS-EXT-SRV-ATTR:reservation_id": "r-bench", "OS-EXT-SRV-ATTR:launch_index": 0,
        "OS-EXT-SRV-ATTR:hostname": name, "OS-EXT-SRV-ATTR:kernel_id": "",
        "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
        "OS-EXT-SRV-ATTR:user_data": None, "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:vm_state": VM_STATE[status], "OS-EXT-STS:power_state": POWER[status],
        "os-extended-volumes:volumes_attached": [
            {"id": _stable_uuid("volume", uuid, "data"), "delete_on_termination": False}],
        "locked": False, "locked_reason": None, "description": None, "tags": [],
        "trusted_image_certificates": None, "host_status": "UP",
        "security_groups": [{"name": "default"}], "pinned_availability_zone": None,
        "server_groups": [],
    }


def _port(device_id: str, mac: str, ip: str, node: str) -> dict:
    """A port as neutron-server shows it to an admin (ML2, no extensions beyond the usual)."""
    pid = _stable_uuid("port", device_id, mac)
    return {
        "id": pid, "name": "", "network_id": NETWORK, "tenant_id": PROJECT,
        "project_id": PROJECT, "mac_address": mac, "admin_state_up": True,
        "status": "ACTIVE", "device_id": device_id, "device_owner": "compute:nova",
        "fixed_ips": [{"subnet_id": SUBNET, "ip_address": ip}],
        "allowed_address_pairs": [], "extra_dhcp_opts": [], "security_groups": [],
        "description": "", "binding:vnic_type": "normal", "binding:profile": {},
        "binding:host_id": f"compute-{node}", "binding:vif_type": "bridge",
        "binding:vif_details": {"connectivity": "l2", "port_filter": True},
        "port_security_enabled": False, "dns_name": "", "dns_assignment": [],
        "qos_policy_id": None, "qos_network_policy_id": None, "resource_request": None,
        "ip_allocation": "immediate", "tags": [], "created_at": "2026-12-01T10:00:00Z",
        "updated_at": "2026-12-01T10:05:00Z", "revision_number": 4,
    }


def _volume(server: str, name: str, role: str, device: str) -> dict:
    """A volume as cinder-api 3.44 shows it in /volumes/detail (admin)."""
    vid = _stable_uuid("volume", server, role)
    return {
        "id": vid, "name": f"{name}-{role}", "status": "in-use", "size": 1,
        "availability_zone": "nova", "created_at": "2026-12-01T10:00:00.000000",
        "updated_at": "2026-12-01T10:05:00.000000", "description": None,
        "volume_type": "ceph", "snapshot_id": None, "source_volid": None,
        "metadata": {MARKER_KEY: "bench"}, "bootable": "false", "encrypted": False,
        "replication_status": None, "consistencygroup_id": None, "multiattach": False,
        "user_id": USER, "os-vol-tenant-attr:tenant_id": PROJECT,
        "os-vol-host-attr:host": "cinder@ceph#ceph", "os-vol-mig-status-attr:migstat": None,
        "os-vol-mig-status-attr:name_id": None, "group_id": None, "provider_id": None,
        "service_uuid": _stable_uuid("cinder-volume"), "shared_targets": True,
        "cluster_name": None, "consumes_quota": True,
        "links": [{"rel": "self", "href": f"http://cinder/v3/volumes/{vid}"}],
        "attachments": [{"id": vid, "attachment_id": _stable_uuid("attachment", vid),
                         "volume_id": vid, "server_id": server, "host_name": None,
                         "device": device, "attached_at": "2026-12-01T10:05:00.000000"}],
    }
