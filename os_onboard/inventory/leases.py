"""Give running VMs the DHCP addresses another host's network hands out.

A libvirt network's DHCP server runs on one host. After a live migration the
guest runs on a host whose copy of the network is only a bridge (no DHCP),
so that host knows no lease for it. The lease is still in the inventory,
under the host that owns the network: join it across hosts by MAC, for NICs
attached to the same bridge or network name. Pure; no I/O.
"""

from __future__ import annotations

from os_onboard.inventory.models import Inventory, Lease


def join_leases_across_hosts(inventory: Inventory) -> None:
    by_segment: dict[tuple[str, str], list[Lease]] = {}
    for host in inventory.hosts:
        for network in host.networks:
            for key in (("network", network.name), ("bridge", network.bridge or "")):
                by_segment.setdefault(key, []).extend(network.leases)
    for _host, vm in inventory.iter_vms():
        if vm.domain_id is None:
            continue
        for nic in vm.nics:
            if nic.addresses:
                continue
            candidates = (by_segment.get(("network", nic.network or ""), [])
                          + by_segment.get(("bridge", nic.bridge or ""), []))
            for lease in candidates:
                if lease.mac == nic.mac and lease.address not in nic.addresses:
                    nic.addresses.append(lease.address)
