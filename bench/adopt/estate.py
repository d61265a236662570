"""The simulated estate of the adoption benchmark: one libvirt test-driver node file.

Each VM has one root disk (a qcow2 file under the estate directory; it is
never opened: only its path is recorded) and one NIC on the Linux bridge
``br-bench`` with a unique MAC and a static IPv4 address recorded in the
domain metadata (os-onboard's namespace), as a statically configured guest
carries it. Power states repeat running x7, paused, shut off x2, like
``os_onboard.drivers.libvirt.testnode``.

The test driver reports the hostname of the process that opens the file
(``virGetHostname``), so the benchmark runs in its own UTS namespace whose
hostname is the fake nova-compute's host name (see run.py).
"""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
ONBOARD_NS = "http://openstack.org/xmlns/os-onboard/1.0"
RUNSTATES = (1, 1, 1, 1, 1, 1, 1, 3, 5, 5)  # running x7, paused, shut off x2
#: The legacy bridge the NICs are on (a bridge, not a libvirt network: the test
#: driver's per-domain lease lookup crashes libvirt-python on a network without <ip>).
BRIDGE = "br-bench"
#: Locally administered unicast prefix, unused by libvirt (52:54:00) and Neutron (fa:16:3e).
MAC_PREFIX = "52:54:be"
#: VM names start with this; cleanup recognises the benchmark's records by it.
NAME_PREFIX = "bench-adopt-"


def mac(tag: int, i: int) -> str:
    n = (tag << 16) | i
    return MAC_PREFIX + ":" + ":".join(f"{(n >> s) & 0xff:02x}" for s in (16, 8, 0))


def address(cidr: str, tag: int, i: int) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + (tag << 12) + i + 10)


def domain_xml(name: str, vm_uuid: str, i: int, mac_addr: str, ip: str, prefix: int,
               disk_dir: Path) -> str:
    state = RUNSTATES[i % len(RUNSTATES)]
    return f"""
  <domain type='test' xmlns:test='{TEST_NS}'>
    <name>{name}</name>
    <uuid>{vm_uuid}</uuid>
    <metadata>
      <onboard:addresses xmlns:onboard='{ONBOARD_NS}'>
        <onboard:address mac='{mac_addr}' ip='{ip}' prefix='{prefix}'/>
      </onboard:addresses>
    </metadata>
    <memory unit='MiB'>{512 * (1 + i % 2)}</memory>
    <vcpu>{1 + i % 2}</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='{escape(str(disk_dir / (name + '-root.qcow2')))}'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='bridge'>
        <mac address='{mac_addr}'/>
        <source bridge='{BRIDGE}'/>
        <model type='virtio'/>
      </interface>
    </devices>
    <test:runstate>{state}</test:runstate>
  </domain>"""


def write_node(path: Path, label: str, tag: int, count: int, cidr: str) -> list[dict]:
    """Write a node file of ``count`` VMs named bench-adopt-<label>-NNNN; return them.

    ``tag`` keeps MACs and IPs of different node files apart.
    """
    prefix = ipaddress.ip_network(cidr).prefixlen
    disk_dir = path.parent / f"disks-{label}"
    disk_dir.mkdir(parents=True, exist_ok=True)
    vms, domains = [], []
    for i in range(count):
        vm = {"name": f"{NAME_PREFIX}{label}-{i:04d}", "uuid": str(uuid.uuid4()),
              "mac": mac(tag, i), "ip": address(cidr, tag, i)}
        vms.append(vm)
        domains.append(domain_xml(vm["name"], vm["uuid"], i, vm["mac"], vm["ip"], prefix,
                                  disk_dir))
    path.write_text(f"""<?xml version='1.0'?>
<node>
  <cpu><mhz>2400</mhz><model>Simulated</model><active>64</active><nodes>1</nodes>
       <sockets>2</sockets><cores>16</cores><threads>2</threads></cpu>
  <memory>536870912</memory>
{"".join(domains)}
</node>
""")
    return vms


def mapping_yaml(project: str, neutron_network: str, subnet: str) -> str:
    return f"""\
owners:
  - match: {{name: "{NAME_PREFIX}*"}}
    project: {project}
networks:
  - match: {{bridge: {BRIDGE}}}
    neutron_network: {neutron_network}
    subnet: {subnet}
flavors: {{policy: reuse-or-create, prefix: {NAME_PREFIX}flavor}}
"""
