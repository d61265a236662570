"""Parse a libvirt domain's ``<disk>`` elements into :class:`Disk` (pure, no libvirt import).

What is here: the disk's source (file, block, dir, pool volume, network, NVMe),
its backing chain, and its identifiers (serial, WWN, the SCSI page-83 id
derived from a ``<wwn>`` or a ``/dev/disk/by-id`` path; :func:`page83_from_by_id`
is also used for host block devices).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from os_onboard.drivers.libvirt.xmlutil import text, to_int
from os_onboard.inventory.models import BackingFile, Disk, DiskIdentifiers


def parse_disk(el: ET.Element, warnings: list[str]) -> Disk:
    """One ``<disk>`` element; unreadable optional values become ``warnings``."""
    disk_type = el.get("type", "file")
    device = el.get("device", "disk")
    kind, source, hosts = _source(disk_type, el.find("source"))
    target = el.find("target")
    driver = el.find("driver")
    boot = el.find("boot")
    wwn = text(el, "wwn")
    identifiers = DiskIdentifiers(
        serial=text(el, "serial"),
        wwn=wwn,
        # A <wwn> is presented to the guest as an NAA designator in VPD 0x83.
        scsi_page83=f"naa.{wwn.lower()}" if wwn else _page83_from_path(source),
        vendor=text(el, "vendor"),
        product=text(el, "product"),
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
        boot_order=to_int(boot.get("order"), "disk boot order", warnings) if boot is not None
        else None,
        identifiers=identifiers,
    )


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
