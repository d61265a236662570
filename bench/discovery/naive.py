"""The naive baseline: what a ``virsh`` loop does, one host and one domain after another.

Plain libvirt-python on a read-only connection. Per host: open, list all
domains, then per domain ``info``, ``XMLDesc``, ``interfaceAddresses`` (DHCP
lease source, active domains only; libvirt refuses it for inactive ones) and
``blockInfo`` for every disk target found in the XML; close. No threads, no
bulk calls. It deliberately does not import os_onboard, so its peak RSS is its own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

# libvirt domain state -> the power-state names the inventory uses
_STATES = {0: "unknown", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown",
           5: "shutoff", 6: "crashed", 7: "suspended"}


def read_host(uri: str) -> list[dict[str, Any]]:
    """Read every domain of one host; one dict per domain."""
    conn = libvirt.openReadOnly(uri)
    try:
        vms = []
        for dom in conn.listAllDomains(0):
            state, max_mem_kib, _mem_kib, vcpus, _cpu_time = dom.info()
            root = ET.fromstring(dom.XMLDesc(0))
            addresses = 0
            if dom.ID() > 0:  # the id comes with the domain handle: no round trip
                try:
                    ifaces = dom.interfaceAddresses(
                        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0) or {}
                except libvirt.libvirtError:
                    ifaces = {}
                addresses = sum(len(i.get("addrs") or []) for i in ifaces.values())
            disks = []
            for target in root.findall("./devices/disk/target"):
                dev = target.get("dev")
                try:
                    capacity, allocation, _physical = dom.blockInfo(dev, 0)
                except libvirt.libvirtError:  # e.g. an empty CD-ROM drive
                    capacity = allocation = None
                disks.append((dev, capacity, allocation))
            vms.append({
                "name": root.findtext("name"),
                "uuid": root.findtext("uuid"),
                "power_state": _STATES.get(state, "unknown"),
                "vcpus": vcpus,
                "memory_kib": max_mem_kib,
                "disks": disks,
                "addresses": addresses,
            })
        return vms
    finally:
        conn.close()
