"""Parse libvirt domain XML into inventory models (pure, no libvirt import).

Parsing is lenient where the value is informative and strict where it is an
identity: a domain without a UUID or name is malformed (:class:`MalformedXml`);
an unknown device or an unreadable optional value becomes a warning or a
caveat, never a crash and never a silent drop.

What is here: :func:`parse_domain` and the domain-level facts (identity, CPU,
memory, firmware, boot, metadata) and the device caveats. Disks are parsed in
:mod:`~os_onboard.drivers.libvirt.diskxml`, NICs and the metadata addresses in
:mod:`~os_onboard.drivers.libvirt.nicxml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from os_onboard.drivers import safexml
from os_onboard.drivers.libvirt.diskxml import parse_disk
from os_onboard.drivers.libvirt.nicxml import apply_metadata_addresses, parse_interface
from os_onboard.drivers.libvirt.xmlutil import describe, has, text, to_int
from os_onboard.drivers.libvirt.xmlutil import tostring as xml_tostring
from os_onboard.exceptions import MalformedXml
from os_onboard.inventory.models import (
    BootConfig,
    Caveat,
    CpuTopology,
    Disk,
    Firmware,
    Nic,
)

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

    :raises MalformedXml: not XML, not a ``<domain>``, or without name/UUID; or
        hostile: a DTD (entity expansion, external entities), over
        :data:`~os_onboard.drivers.safexml.MAX_DOCUMENT_CHARS`, nested too deep.
    """
    root = safexml.fromstring(xml_text, "domain XML", MalformedXml)
    if root.tag != "domain":
        raise MalformedXml(f"expected a <domain> element, got <{root.tag}>")
    name = text(root, "name")
    uuid = text(root, "uuid")
    if not name or not uuid:
        raise MalformedXml("domain XML has no <name> or no <uuid>")
    warnings: list[str] = []
    vcpu_el = root.find("vcpu")
    max_vcpus = to_int(vcpu_el.text if vcpu_el is not None else None, "vcpu", warnings)
    current = vcpu_el.get("current") if vcpu_el is not None else None
    vcpus = to_int(current, "vcpu@current", warnings) if current else max_vcpus
    memory = _memory_mib(root.find("memory"), warnings)
    if memory is None:
        memory = _memory_mib(root.find("maxMemory"), warnings)
    cpu = root.find("cpu")
    disks, nics, caveats = [], [], []
    devices = root.find("devices")
    for dev in devices if devices is not None else ():
        tag = dev.tag
        if tag == "disk":
            disks.append(parse_disk(dev, warnings))
        elif tag == "interface":
            nic = parse_interface(dev, warnings)
            if nic is not None:
                nics.append(nic)
            if dev.get("type") == "hostdev":
                caveats.append(Caveat(
                    kind="interface-hostdev", detail=describe(dev),
                    reason="SR-IOV passthrough NICs need a PCI-aware Neutron port"))
        elif tag in _CAVEAT_DEVICES:
            caveats.append(_caveat(dev))
        elif tag not in _ORDINARY_DEVICES:
            caveats.append(Caveat(kind=f"unknown-{tag}", detail=describe(dev),
                                  reason="device unknown to os-onboard; review before adoption"))
    apply_metadata_addresses(root, nics, warnings)
    os_el = root.find("os")
    return DomainConfig(
        uuid=uuid,
        name=name,
        virt_type=root.get("type"),
        title=text(root, "title"),
        description=text(root, "description"),
        vcpus=vcpus or 1,
        max_vcpus=max_vcpus,
        cpu_topology=_topology(cpu, warnings),
        cpu_mode=cpu.get("mode") if cpu is not None else None,
        cpu_model=text(cpu, "model") if cpu is not None else None,
        memory_mib=memory or 0,
        current_memory_mib=_memory_mib(root.find("currentMemory"), warnings),
        arch=os_el.find("type").get("arch") if has(os_el, "type") else None,
        machine_type=os_el.find("type").get("machine") if has(os_el, "type") else None,
        firmware=_firmware(os_el),
        boot=_boot(os_el, disks),
        metadata=_metadata(root),
        disks=disks,
        nics=nics,
        caveats=caveats,
        warnings=warnings,
    )


# -- helpers ---------------------------------------------------------------


def _memory_mib(el: ET.Element | None, warnings: list[str]) -> int | None:
    if el is None or not (el.text or "").strip():
        return None
    amount = to_int(el.text, el.tag, warnings)
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
    values = {k: to_int(topo.get(k), f"topology@{k}", warnings) for k in
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
        kernel=text(os_el, "kernel"),
        initrd=text(os_el, "initrd"),
        cmdline=text(os_el, "cmdline"),
        boot_devices=boot_devices,
    )


def _metadata(root: ET.Element) -> dict[str, str]:
    meta = root.find("metadata")
    result: dict[str, str] = {}
    for child in meta if meta is not None else ():
        ns = child.tag[1:].split("}", 1)[0] if child.tag.startswith("{") else ""
        result[ns or child.tag] = xml_tostring(child).strip()
    return result


def _caveat(el: ET.Element) -> Caveat:
    kind = el.tag
    if kind == "hostdev":
        kind = f"hostdev-{el.get('type', 'unknown')}"
    elif kind == "memory":
        kind = f"memory-{el.get('model', 'unknown')}"
    return Caveat(kind=kind, detail=describe(el), reason=_CAVEAT_DEVICES[el.tag])
