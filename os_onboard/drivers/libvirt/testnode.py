"""Write libvirt *test driver* node files: simulated hosts for demos, tests, benchmarks.

``test:///abs/path/node.xml`` makes libvirt serve the domains, networks and
storage pools in the file without any hypervisor. Each simulated host gets
distinct UUIDs and MACs derived from its index, so thousands of files form a
consistent simulated estate. (The test driver keeps its state per connection:
it suits read-path scale tests, not out-of-band change tests.)
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

_TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
_RUNSTATES = (1, 1, 1, 1, 1, 1, 1, 3, 5, 5)  # running x7, paused, shut off x2


def _uuid(host: int, vm: int) -> str:
    return f"{host:08x}-{vm:04x}-4000-8000-{host * 1000 + vm:012x}"


def _mac(host: int, vm: int) -> str:
    n = host * 256 + vm
    return "52:54:" + ":".join(f"{(n >> shift) & 0xff:02x}" for shift in (24, 16, 8, 0))


def domain_xml(host: int, vm: int) -> str:
    name = f"h{host}-vm{vm}"
    pool = f"/var/lib/libvirt/images/h{host}"
    state = _RUNSTATES[vm % len(_RUNSTATES)]
    return f"""
  <domain type='test' xmlns:test='{_TEST_NS}'>
    <name>{name}</name>
    <uuid>{_uuid(host, vm)}</uuid>
    <title>{escape(f"simulated VM {vm} on host {host}")}</title>
    <metadata><app:role xmlns:app='http://example.com/cmdb/1'>tier-{vm % 3}</app:role></metadata>
    <memory unit='MiB'>{512 * (1 + vm % 4)}</memory>
    <vcpu>{1 + vm % 4}</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='{pool}/{name}-root.qcow2'/>
        <target dev='vda' bus='virtio'/>
        <serial>root-{name}</serial>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='{pool}/{name}-data.raw'/>
        <target dev='sda' bus='scsi'/>
        <serial>data-{name}</serial>
        <wwn>5000c500{host:04x}{vm:04x}</wwn>
      </disk>
      <interface type='network'>
        <mac address='{_mac(host, vm)}'/>
        <source network='default'/>
        <model type='virtio'/>
      </interface>
    </devices>
    <test:runstate>{state}</test:runstate>
  </domain>"""


def node_xml(host: int, vms: int) -> str:
    pool = f"/var/lib/libvirt/images/h{host}"
    volumes = "".join(
        f"""
    <volume><name>h{host}-vm{vm}-{kind}</name>
      <capacity unit='GiB'>{size}</capacity><allocation unit='MiB'>100</allocation>
      <target><path>{pool}/h{host}-vm{vm}-{kind}</path></target></volume>"""
        for vm in range(vms) for kind, size in (("root.qcow2", 10), ("data.raw", 1))
    )
    return f"""<?xml version='1.0'?>
<node>
  <cpu><mhz>2400</mhz><model>Simulated</model><active>8</active><nodes>1</nodes>
       <sockets>1</sockets><cores>4</cores><threads>2</threads></cpu>
  <memory>67108864</memory>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward mode='nat'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>h{host}-images</name>
    <uuid>{_uuid(host, 0xffff)}</uuid>
    <capacity unit='GiB'>1000</capacity><allocation unit='GiB'>20</allocation>
    <target><path>{pool}</path></target>{volumes}
  </pool>{"".join(domain_xml(host, vm) for vm in range(vms))}
</node>
"""


def write_estate(directory: str | Path, hosts: int, vms_per_host: int) -> list[Path]:
    """Write one node file per simulated host; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for host in range(hosts):
        path = directory / f"host{host:05d}.xml"
        path.write_text(node_xml(host, vms_per_host))
        paths.append(path.resolve())
    return paths
