"""Parse libvirt domain XML into inventory models (pure, no libvirt import).

Parsing is lenient where the value is informative and strict where it is an
identity: a domain without a UUID or name is malformed (:class:`MalformedXml`);
an unknown device or an unreadable optional value becomes a warning or a
caveat, never a crash and never a silent drop.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from os_onboard.exceptions import DiscoveryError
from os_onboard.inventory.models import (
    AddressSource,
    BackingFile,
    BootConfig,
    Caveat,
    CpuTopology,
    Disk,
    DiskIdentifiers,
    Firmware,
    IpAddress,
    Nic,
)

#: Namespace of os-onboard's own domain metadata: statically configured guest
#: addresses that no DHCP server knows, written by the operator (or a CMDB sync).
ONBOARD_METADATA_NS = "http://openstack.org/xmlns/os-onboard/1.0"

_MEMORY_UNITS = {
    "b": 1, "bytes": 1, "kb": 1000, "k": 1024, "kib": 1024, "mb": 1000**2, "m": 1024**2,
    "mib": 1024**2, "gb": 1000**3, "g": 1024**3, "gib": 1024**3, "tb": 1000**4, "t": 1024**4,
    "tib": 1024**4,
}  # fmt: skip

# Devices Nova can recreate (or safely ignore) when it rebuilds the domain.
_ORDINARY_DEVICES = frozenset({
    "emulator", "disk", "interface", "controller", "input", "graphics", "video", "serial",
    "console", "channel", "sound", "memballoon", "rng", "watchdog", "panic", "audio",
    "parallel", "hub", "vsock", "iommu", "lease",
})  # fmt: skip

# Devices OpenStack cannot represent for an adopted VM, with the reason.
_CAVEAT_DEVICES = {
    "hostdev": "host device passthrough is not recorded by Nova for adopted VMs",
    "tpm": "a vTPM's state lives on the host; Nova would create a new, empty one",
    "memory": "NVDIMM / virtio-mem devices have no Nova flavor equivalent",
    "shmem": "shared-memory devices have no Nova equivalent",
    "smartcard": "smartcard devices have no Nova equivalent",
    "redirdev": "USB redirection has no Nova equivalent",
    "filesystem": "host directory sharing (virtiofs/9p) is not managed by Nova",
    "crypto": "crypto devices have no Nova equivalent",
}


class MalformedXml(DiscoveryError):
    """The domain XML cannot be parsed or lacks an identity (name, UUID)."""


@dataclass
class DomainConfig:
    """What the domain definition says; runtime facts are added by the driver."""

    uuid: str
    name: str
    virt_type: str | None
    title: str | None
    description: str | None
    vcpus: int
    max_vcpus: int | None
    cpu_topology: CpuTopology | None
    cpu_mode: str | None
    cpu_model: str | None
    memory_mib: int
    current_memory_mib: int | None
    arch: str | None
    machine_type: str | None
    firmware: Firmware
    boot: BootConfig
    metadata: dict[str, str]
    disks: list[Disk]
    nics: list[Nic]
    caveats: list[Caveat]
    warnings: list[str] = field(default_factory=list)


def parse_domain(xml_text: str) -> DomainConfig:
    """Parse one domain's XML.

    :raises MalformedXml: not XML, not a ``<domain>``, or without name/UUID.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise MalformedXml(f"domain XML is not well-formed: {exc}") from exc
    if root.tag != "domain":
        raise MalformedXml(f"expected a <domain> element, got <{root.tag}>")
    name = _text(root, "name")
    uuid = _text(root, "uuid")
    if not name or not uuid:
        raise MalformedXml("domain XML has no <name> or no <uuid>")
    warnings: list[str] = []
    vcpu_el = root.find("vcpu")
    max_vcpus = _int(vcpu_el.text if vcpu_el is not None else None, "vcpu", warnings)
    current = vcpu_el.get("current") if vcpu_el is not None else None
    vcpus = _int(current, "vcpu@current", warnings) if current else max_vcpus
    memory = _memory_mib(root.find("memory"), warnings)
    if memory is None:
        memory = _memory_mib(root.find("maxMemory"), warnings)
    cpu = root.find("cpu")
    disks, nics, caveats = [], [], []
    devices = root.find("devices")
    for dev in devices if devices is not None else ():
        tag = dev.tag
        if tag == "disk":
            disks.append(_parse_disk(dev, warnings))
        elif tag == "interface":
            nic = _parse_interface(dev, warnings)
            if nic is not None:
                nics.append(nic)
            if dev.get("type") == "hostdev":
                caveats.append(Caveat(
                    kind="interface-hostdev", detail=_describe(dev),
                    reason="SR-IOV passthrough NICs need a PCI-aware Neutron port"))
        elif tag in _CAVEAT_DEVICES:
            caveats.append(_caveat(dev))
        elif tag not in _ORDINARY_DEVICES:
            caveats.append(Caveat(kind=f"unknown-{tag}", detail=_describe(dev),
                                  reason="device unknown to os-onboard; review before adoption"))
    _apply_metadata_addresses(root, nics, warnings)
    os_el = root.find("os")
    return DomainConfig(
        uuid=uuid,
        name=name,
        virt_type=root.get("type"),
        title=_text(root, "title"),
        description=_text(root, "description"),
        vcpus=vcpus or 1,
        max_vcpus=max_vcpus,
        cpu_topology=_topology(cpu, warnings),
        cpu_mode=cpu.get("mode") if cpu is not None else None,
        cpu_model=_text(cpu, "model") if cpu is not None else None,
        memory_mib=memory or 0,
        current_memory_mib=_memory_mib(root.find("currentMemory"), warnings),
        arch=os_el.find("type").get("arch") if _has(os_el, "type") else None,
        machine_type=os_el.find("type").get("machine") if _has(os_el, "type") else None,
        firmware=_firmware(os_el),
        boot=_boot(os_el, disks),
        metadata=_metadata(root),
        disks=disks,
        nics=nics,
        caveats=caveats,
        warnings=warnings,
    )


# -- helpers ---------------------------------------------------------------


def _text(el: ET.Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _has(el: ET.Element | None, path: str) -> bool:
    return el is not None and el.find(path) is not None


def _int(value: str | None, what: str, warnings: list[str]) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        warnings.append(f"ignored non-numeric {what}: {value!r}")
        return None


def _memory_mib(el: ET.Element | None, warnings: list[str]) -> int | None:
    if el is None or not (el.text or "").strip():
        return None
    amount = _int(el.text, el.tag, warnings)
    if amount is None:
        return None
    unit = (el.get("unit") or "KiB").lower()
    factor = _MEMORY_UNITS.get(unit)
    if factor is None:
        warnings.append(f"unknown memory unit {unit!r} on <{el.tag}>")
        return None
    return amount * factor // 1024**2


def _topology(cpu: ET.Element | None, warnings: list[str]) -> CpuTopology | None:
    topo = cpu.find("topology") if cpu is not None else None
    if topo is None:
        return None
    values = {k: _int(topo.get(k), f"topology@{k}", warnings) for k in
              ("sockets", "dies", "cores", "threads")}
    return CpuTopology(**{k: v for k, v in values.items() if v})


def _firmware(os_el: ET.Element | None) -> Firmware:
    if os_el is None:
        return Firmware.UNKNOWN
    if os_el.get("firmware") == "efi":
        return Firmware.UEFI
    loader = os_el.find("loader")
    if loader is not None and (loader.get("type") == "pflash" or "OVMF" in (loader.text or "")):
        return Firmware.UEFI
    return Firmware.BIOS


def _boot(os_el: ET.Element | None, disks: list[Disk]) -> BootConfig:
    if os_el is None:
        return BootConfig()
    boot_devices = [b.get("dev", "") for b in os_el.findall("boot")]
    if not boot_devices:
        ordered = sorted((d for d in disks if d.boot_order), key=lambda d: d.boot_order or 0)
        boot_devices = [d.target for d in ordered]
    return BootConfig(
        kernel=_text(os_el, "kernel"),
        initrd=_text(os_el, "initrd"),
        cmdline=_text(os_el, "cmdline"),
        boot_devices=boot_devices,
    )


def _metadata(root: ET.Element) -> dict[str, str]:
    meta = root.find("metadata")
    result: dict[str, str] = {}
    for child in meta if meta is not None else ():
        ns = child.tag[1:].split("}", 1)[0] if child.tag.startswith("{") else ""
        result[ns or child.tag] = ET.tostring(child, encoding="unicode").strip()
    return result


def _source(disk_type: str, src: ET.Element | None) -> tuple[str, str | None, list[str]]:
    """Return (source_kind, source, hosts) for a disk or backingStore element."""
    if src is None:
        return ("none" if disk_type != "network" else "network-unknown"), None, []
    if disk_type == "file":
        return "file", src.get("file"), []
    if disk_type == "block":
        return "block", src.get("dev"), []
    if disk_type == "dir":
        return "dir", src.get("dir"), []
    if disk_type == "volume":
        return "volume", f"{src.get('pool')}/{src.get('volume')}", []
    if disk_type == "network":
        protocol = src.get("protocol") or "unknown"
        hosts = [
            f"{h.get('name') or h.get('socket')}:{h.get('port')}" if h.get("port")
            else (h.get("name") or h.get("socket") or "")
            for h in src.findall("host")
        ]
        return f"network-{protocol}", src.get("name"), hosts
    if disk_type == "nvme":
        addr = src.find("address")
        detail = ET.tostring(addr, encoding="unicode").strip() if addr is not None else None
        return "nvme", detail, []
    return disk_type or "unknown", None, []


def _backing_chain(el: ET.Element) -> list[BackingFile]:
    chain: list[BackingFile] = []
    store = el.find("backingStore")
    while store is not None and store.get("type"):
        kind, source, _ = _source(store.get("type", ""), store.find("source"))
        fmt = store.find("format")
        chain.append(BackingFile(format=fmt.get("type") if fmt is not None else None,
                                 source_kind=kind, source=source))
        store = store.find("backingStore")
    return chain


def _parse_disk(el: ET.Element, warnings: list[str]) -> Disk:
    disk_type = el.get("type", "file")
    device = el.get("device", "disk")
    kind, source, hosts = _source(disk_type, el.find("source"))
    target = el.find("target")
    driver = el.find("driver")
    boot = el.find("boot")
    wwn = _text(el, "wwn")
    identifiers = DiskIdentifiers(
        serial=_text(el, "serial"),
        wwn=wwn,
        # A <wwn> is presented to the guest as an NAA designator in VPD 0x83.
        scsi_page83=f"naa.{wwn.lower()}" if wwn else _page83_from_path(source),
        vendor=_text(el, "vendor"),
        product=_text(el, "product"),
        by_id=[source.rsplit("/", 1)[1]] if source and source.startswith("/dev/disk/by-id/")
        else [],
    )
    return Disk(
        device=device,
        bus=target.get("bus") if target is not None else None,
        target=(target.get("dev") if target is not None else None) or "?",
        format=driver.get("type") if driver is not None else None,
        source_kind=kind,
        source=source,
        source_hosts=hosts,
        backing_chain=_backing_chain(el),
        read_only=el.find("readonly") is not None,
        shareable=el.find("shareable") is not None,
        boot_order=_int(boot.get("order"), "disk boot order", warnings) if boot is not None
        else None,
        identifiers=identifiers,
    )


def page83_from_by_id(name: str) -> str | None:
    """Derive an NAA page-83 id from a /dev/disk/by-id name, if it encodes one.

    ``wwn-0x6000…`` and ``scsi-36000…`` (udev's scsi_id with the NAA type prefix
    ``3``) both carry the NAA designator.
    """
    name = name.rsplit("/", 1)[-1]
    if name.startswith("wwn-0x"):
        return "naa." + name[6:].lower()
    if name.startswith("scsi-3") and _is_hex(name[6:]):
        return "naa." + name[6:].lower()
    if name.startswith("dm-uuid-mpath-3") and _is_hex(name[15:]):
        return "naa." + name[15:].lower()
    return None


def _page83_from_path(source: str | None) -> str | None:
    if not source or not source.startswith("/dev/disk/by-id/"):
        return None
    return page83_from_by_id(source)


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)


def _parse_interface(el: ET.Element, warnings: list[str]) -> Nic | None:
    mac_el = el.find("mac")
    mac = mac_el.get("address") if mac_el is not None else None
    if not mac:
        warnings.append(f"interface without a MAC address skipped: {_describe(el)}")
        return None
    src = el.find("source")
    source_kind = el.get("type", "unknown")
    network = bridge = portgroup = None
    if src is not None:
        network = src.get("network") if source_kind == "network" else None
        bridge = src.get("bridge") if source_kind == "bridge" else None
        if source_kind == "direct":
            bridge = src.get("dev")
        portgroup = src.get("portgroup")
    if source_kind == "network" and src is not None and src.get("bridge"):
        bridge = src.get("bridge")  # live XML names the bridge of the network
    vlan = el.find("vlan")
    tags = []
    for tag in vlan.findall("tag") if vlan is not None else ():
        value = _int(tag.get("id"), "vlan tag", warnings)
        if value is not None:
            tags.append(value)
    link = el.find("link")
    model = el.find("model")
    target = el.find("target")
    driver = el.find("driver")
    return Nic(
        mac=mac.lower(),
        model=model.get("type") if model is not None else None,
        source_kind=source_kind,
        network=network,
        bridge=bridge,
        portgroup=portgroup,
        vlan=tags,
        target=target.get("dev") if target is not None else None,
        driver=dict(driver.attrib) if driver is not None else None,
        link_up=link is None or link.get("state") != "down",
    )


def _apply_metadata_addresses(root: ET.Element, nics: list[Nic], warnings: list[str]) -> None:
    """Add statically configured addresses recorded under our metadata namespace."""
    ns = {"o": ONBOARD_METADATA_NS}
    by_mac = {nic.mac: nic for nic in nics}
    for addr in root.findall("metadata/o:addresses/o:address", ns):
        mac = (addr.get("mac") or "").lower()
        ip = addr.get("ip") or ""
        nic = by_mac.get(mac)
        if nic is None:
            warnings.append(f"metadata address {ip} names unknown MAC {mac!r}")
            continue
        try:
            parsed = ipaddress.ip_address(ip)
        except ValueError:
            warnings.append(f"metadata address {ip!r} for {mac} is not an IP address")
            continue
        nic.addresses.append(IpAddress(
            family=f"ipv{parsed.version}", address=str(parsed),
            prefix=_int(addr.get("prefix"), "metadata prefix", warnings),
            source=AddressSource.METADATA,
        ))


def _caveat(el: ET.Element) -> Caveat:
    kind = el.tag
    if kind == "hostdev":
        kind = f"hostdev-{el.get('type', 'unknown')}"
    elif kind == "memory":
        kind = f"memory-{el.get('model', 'unknown')}"
    return Caveat(kind=kind, detail=_describe(el), reason=_CAVEAT_DEVICES[el.tag])


def _describe(el: ET.Element, limit: int = 300) -> str:
    text = " ".join(ET.tostring(el, encoding="unicode").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
