"""libvirt inventory: one read-only connection, bulk reads, no writes.

Round trips per host, whatever the number of VMs: one ``getAllDomainStats``
(state, balloon, vCPUs, block and interface stats of every domain), one list
of transient domains, the networks with their DHCP leases, the storage pools
and their volumes, and the storage node devices. Per VM only ``XMLDesc`` is
unavoidable (libvirt has no bulk XML call); ``blockInfo`` is a fallback for
disks whose size neither the stats nor a storage pool gave.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Any

from os_onboard.drivers.base import Inventory
from os_onboard.drivers.libvirt import api, hostxml
from os_onboard.drivers.libvirt.domxml import DomainConfig, MalformedXml, parse_domain
from os_onboard.drivers.libvirt.localhost import qemu_uptime_seconds
from os_onboard.exceptions import DiscoveryError, HostUnreachable, ObjectVanished
from os_onboard.inventory.models import (
    AddressSource,
    BlockDevice,
    Host,
    HostInventory,
    HostStatus,
    IpAddress,
    Lease,
    Network,
    PowerState,
    Problem,
    Severity,
    StoragePool,
    Vm,
)


class LibvirtInventory(Inventory):
    """Reads a libvirt host on one read-only connection."""

    def discover(self) -> HostInventory:
        started = time.monotonic()
        conn = api.open_read_only(self.uri)
        try:
            result = _HostReader(self.uri, conn, self.options.address_sources,
                                 self.options.storage).read()
        finally:
            with contextlib.suppress(api.LibvirtError):
                conn.close()
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result



class _HostReader:
    """Reads one host over an open connection; collects problems as it goes."""

    def __init__(self, uri: str, conn: Any, address_sources: tuple[str, ...],
                 storage: bool) -> None:
        self.uri = uri
        self.conn = conn
        self.address_sources = address_sources
        self.storage = storage
        self.problems: list[Problem] = []
        # Set when the host cannot list network leases, so each running domain is asked.
        self.per_domain_leases = False
        # Only the local system daemon's QEMU processes are visible in our /proc.
        self.local = uri in ("qemu:///system", "qemu:///session")

    # -- problems ----------------------------------------------------------

    def problem(self, code: str, message: str, vm: str | None = None,
                severity: Severity = Severity.WARNING) -> None:
        self.problems.append(Problem(severity=severity, code=code, message=message,
                                     host=self.uri, vm=vm))

    def call(self, what: str, fn: Any, *args: Any, default: Any = None,
             code: str = "read-failed", vm: str | None = None) -> Any:
        """Run one libvirt read; on failure record a problem and return ``default``.

        A dropped connection is not an item problem: it aborts the host.
        """
        try:
            return fn(*args)
        except api.LibvirtError as exc:
            err = api.translate(exc, what)
            if isinstance(err, HostUnreachable):
                raise err from exc
            if api.is_unsupported(exc):
                return default
            self.problem("vanished" if isinstance(err, ObjectVanished) else code,
                         str(err), vm=vm)
            return default

    # -- the host ------------------------------------------------------------

    def read(self) -> HostInventory:
        host = self.read_host()
        networks, leases = self.read_networks()
        pools = self.read_pools() if self.storage else []
        devices = self.read_block_devices() if self.storage else []
        vms = self.read_vms(leases, pools, devices)
        errors = any(p.severity == Severity.ERROR for p in self.problems)
        return HostInventory(
            host=host,
            status=HostStatus.PARTIAL if errors else HostStatus.OK,
            vms=vms,
            networks=networks,
            storage_pools=pools,
            block_devices=devices,
            problems=self.problems,
        )

    def read_host(self) -> Host:
        info = self.call("getInfo", self.conn.getInfo) or []
        hypervisor = self.call("getType", self.conn.getType)
        version = self.call("getVersion", self.conn.getVersion)
        caps = self.call("getCapabilities", self.conn.getCapabilities)
        host_uuid = None
        if caps:
            try:
                host_uuid = hostxml.parse_host_uuid(caps)
            except MalformedXml as exc:
                self.problem("malformed-xml", f"host capabilities: {exc}")
        return Host(
            uri=self.uri,
            kind="libvirt",
            hostname=self.call("getHostname", self.conn.getHostname),
            uuid=host_uuid,
            hypervisor=hypervisor,
            hypervisor_version=_version(version) if version else None,
            cpu_model=info[0] if info else None,
            cpus=info[2] if info else None,
            memory_mib=info[1] if info else None,
        )

    def read_networks(self) -> tuple[list[Network], dict[str, list[IpAddress]]]:
        networks: list[Network] = []
        leases: dict[str, list[IpAddress]] = defaultdict(list)
        for net in self.call("listAllNetworks", self.conn.listAllNetworks, 0, default=[]):
            xml = self.call("network XMLDesc", net.XMLDesc, 0)
            active = bool(self.call("network isActive", net.isActive, default=0))
            if xml is None:
                continue
            try:
                network = hostxml.parse_network(xml, active)
            except MalformedXml as exc:
                self.problem("malformed-xml", f"network {net.name()}: {exc}")
                continue
            networks.append(network)
            if "lease" not in self.address_sources or not active:
                continue
            found = self.call("DHCPLeases", net.DHCPLeases, default=None)
            if found is None:  # unsupported by this driver (or failed): ask per domain
                self.per_domain_leases = True
            for lease in found or []:
                mac = (lease.get("mac") or "").lower()
                if mac and lease.get("ipaddr"):
                    leases[mac].append(_lease_address(lease))
                    network.leases.append(Lease(mac=mac, address=_lease_address(lease)))
        return networks, leases

    def read_pools(self) -> list[StoragePool]:
        pools: list[StoragePool] = []
        for pool in self.call("listAllStoragePools", self.conn.listAllStoragePools, 0,
                              default=[]):
            xml = self.call("pool XMLDesc", pool.XMLDesc, 0)
            if xml is None:
                continue
            active = bool(self.call("pool isActive", pool.isActive, default=0))
            try:
                parsed = hostxml.parse_pool(xml, active)
            except MalformedXml as exc:
                self.problem("malformed-xml", f"storage pool {pool.name()}: {exc}")
                continue
            if active:
                for vol in self.call("listAllVolumes", pool.listAllVolumes, 0, default=[]):
                    vol_xml = self.call("volume XMLDesc", vol.XMLDesc, 0)
                    if vol_xml is None:
                        continue
                    try:
                        parsed.volumes.append(hostxml.parse_volume(vol_xml))
                    except MalformedXml as exc:
                        self.problem("malformed-xml", f"volume in pool {parsed.name}: {exc}")
            pools.append(parsed)
        return pools

    def read_block_devices(self) -> list[BlockDevice]:
        devices: list[BlockDevice] = []
        for dev in self.call("listAllDevices", self.conn.listAllDevices,
                             api.NODE_DEVICES_STORAGE, default=[]):
            xml = self.call("node device XMLDesc", dev.XMLDesc, 0)
            if xml is None:
                continue
            try:
                parsed = hostxml.parse_node_device(xml)
            except MalformedXml as exc:
                self.problem("malformed-xml", f"node device {dev.name()}: {exc}")
                continue
            if parsed is not None:
                devices.append(parsed)
        return devices

    # -- the VMs -------------------------------------------------------------

    def read_vms(self, leases: dict[str, list[IpAddress]], pools: list[StoragePool],
                 devices: list[BlockDevice]) -> list[Vm]:
        stats = self.call("getAllDomainStats", self.conn.getAllDomainStats,
                          api.STATS_FLAGS, 0, default=None)
        if stats is None:  # drivers without bulk stats: list, then per-domain state
            stats = [(dom, {}) for dom in
                     self.call("listAllDomains", self.conn.listAllDomains, 0, default=[])]
        transient = {d.UUIDString() for d in
                     self.call("list transient", self.conn.listAllDomains,
                               api.LIST_TRANSIENT, default=[])}
        volumes = {v.path: v for p in pools for v in p.volumes if v.path}
        by_page83 = {d.scsi_page83: d for d in devices if d.scsi_page83}
        by_path = {d.path: d for d in devices if d.path}
        vms = []
        for dom, dom_stats in stats:
            vm = self.read_vm(dom, dom_stats, transient)
            if vm is None:
                continue
            self.fill_disks(dom, vm, dom_stats, volumes, by_page83, by_path)
            self.fill_addresses(dom, vm, leases)
            vms.append(vm)
        vms.sort(key=lambda v: v.name)
        return vms

    def read_vm(self, dom: Any, stats: dict[str, Any], transient: set[str]) -> Vm | None:
        name = dom.name()
        try:
            config: DomainConfig = parse_domain(dom.XMLDesc(0))
        except api.LibvirtError as exc:
            err = api.translate(exc, f"domain {name}")
            if isinstance(err, HostUnreachable):
                raise err from exc
            vanished = isinstance(err, ObjectVanished)
            self.problem("domain-vanished" if vanished else "read-failed",
                         f"domain {name} could not be read: {err}"
                         + (" (undefined while being read)" if vanished else ""),
                         vm=name, severity=Severity.WARNING if vanished else Severity.ERROR)
            return None
        except MalformedXml as exc:
            self.problem("malformed-xml", f"domain {name}: {exc}", vm=name,
                         severity=Severity.ERROR)
            return None
        for warning in config.warnings:
            self.problem("xml-warning", warning, vm=name)
        state = stats.get("state.state")
        if state is None:
            info = self.call("domain state", dom.state, 0, vm=name)
            state = info[0] if info else None
        power = PowerState(api.POWER_STATES.get(state, "unknown"))
        dom_id = dom.ID()
        running = power not in (PowerState.SHUTOFF, PowerState.UNKNOWN) and dom_id > 0
        balloon = stats.get("balloon.current")
        fields = {k: v for k, v in vars(config).items()
                  if k not in ("warnings", "current_memory_mib")}
        return Vm(
            **fields,
            power_state=power,
            state_reason=str(stats["state.reason"]) if "state.reason" in stats else None,
            domain_id=dom_id if running else None,
            persistent=config.uuid not in transient,
            current_memory_mib=balloon // 1024 if balloon else config.current_memory_mib,
            uptime_seconds=qemu_uptime_seconds(config.name) if running and self.local else None,
        )

    def fill_disks(self, dom: Any, vm: Vm, stats: dict[str, Any], volumes: dict[str, Any],
                   by_page83: dict[str, BlockDevice], by_path: dict[str, BlockDevice]) -> None:
        sizes = {}
        for i in range(int(stats.get("block.count", 0))):
            sizes[stats.get(f"block.{i}.name")] = (stats.get(f"block.{i}.capacity"),
                                                   stats.get(f"block.{i}.allocation"))
        for disk in vm.disks:
            capacity, allocation = sizes.get(disk.target, (None, None))
            volume = volumes.get(disk.source) if disk.source else None
            if capacity is None and volume is not None:
                capacity, allocation = volume.capacity_bytes, volume.allocation_bytes
            if capacity is None and disk.source and disk.source_kind in ("file", "block"):
                info = self.call(f"blockInfo {disk.target}", dom.blockInfo, disk.target, 0,
                                 vm=vm.name, code="disk-size-unknown")
                if info:
                    capacity, allocation = info[0], info[1]
            disk.capacity_bytes, disk.allocation_bytes = capacity, allocation
            device = (by_path.get(disk.source or "") or
                      by_page83.get(disk.identifiers.scsi_page83 or ""))
            if device is not None:
                ids = disk.identifiers
                ids.scsi_page83 = ids.scsi_page83 or device.scsi_page83
                ids.vendor = ids.vendor or device.vendor
                ids.product = ids.product or device.model
                ids.by_id = sorted(set(ids.by_id) | set(device.by_id))

    def fill_addresses(self, dom: Any, vm: Vm, leases: dict[str, list[IpAddress]]) -> None:
        # A lease outlives the guest that took it: only running VMs have addresses
        # (the same rule as virDomainInterfaceAddresses).
        if not vm.nics or vm.domain_id is None:
            return
        for nic in vm.nics:
            nic.addresses.extend(a for a in leases.get(nic.mac, []) if a not in nic.addresses)
        # Hosts whose driver has no network leases API (or NICs on networks this
        # host does not own) are asked per domain; arp only when requested.
        wanted = []
        if "lease" in self.address_sources and self.per_domain_leases:
            wanted.append(("lease", api.ADDR_SOURCE_LEASE, AddressSource.DHCP_LEASE))
        if "arp" in self.address_sources:
            wanted.append(("arp", api.ADDR_SOURCE_ARP, AddressSource.ARP))
        by_mac = {nic.mac: nic for nic in vm.nics}
        for label, source, kind in wanted:
            try:
                result = dom.interfaceAddresses(source, 0) or {}
            except api.LibvirtError as exc:
                err = api.translate(exc, f"interfaceAddresses({label})")
                if isinstance(err, HostUnreachable):
                    raise err from exc
                if not api.is_unsupported(exc):
                    self.problem(f"addresses-{label}-failed", str(err), vm=vm.name)
                continue
            for iface in result.values():
                nic = by_mac.get((iface.get("hwaddr") or "").lower())
                for addr in (iface.get("addrs") or []) if nic else ():
                    ip = IpAddress(
                        family="ipv6" if addr.get("type") == api.IP_ADDR_TYPE_IPV6 else "ipv4",
                        address=addr["addr"], prefix=addr.get("prefix"), source=kind)
                    if nic is not None and all(a.address != ip.address for a in nic.addresses):
                        nic.addresses.append(ip)


def _lease_address(lease: dict[str, Any]) -> IpAddress:
    return IpAddress(
        family="ipv6" if lease.get("type") == api.IP_ADDR_TYPE_IPV6 else "ipv4",
        address=lease["ipaddr"],
        prefix=lease.get("prefix"),
        source=AddressSource.DHCP_LEASE,
    )


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


__all__ = ["DiscoveryError", "LibvirtInventory"]
