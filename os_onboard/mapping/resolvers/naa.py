"""SCSI page-83 NAA designators: parsing the shapes hosts print, and picking a disk's.

An NAA designator (SPC-4, VPD page 0x83) starts with a 4-bit NAA type: 5 = IEEE
Registered (16 hex digits), 6 = IEEE Registered Extended (32 hex digits). The
24-bit IEEE company id (OUI) follows, so hex digits 1-6 name the vendor in both.

Shapes accepted, case-insensitive, with or without a leading directory:

* ``naa.600a0980…``: vSphere canonical names; os-onboard's inventory
* ``wwn-0x600a0980…``: udev /dev/disk/by-id (ID_WWN_WITH_EXTENSION)
* ``scsi-3600a0980…``: udev by-id from scsi_id; the leading ``3`` = NAA type
* ``dm-uuid-mpath-3600a…``: a multipath map (dm uuid ``mpath-`` + WWID)
* ``dm-name-3600a…``: a multipath map named by WWID (no user_friendly_names)
* ``3600a0980…``: ``scsi_id -g -u``, ``multipath -ll``, /dev/mapper/<wwid>
* ``0x600a…`` and ``[0x600a…]``: lsblk's WWN column; ``sg_inq -p 0x83`` (sg3_utils)
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from os_onboard.exceptions import ResolutionError
from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.facts import source_path

_PLAIN = ("naa.", "wwn-0x", "0x")
# by-id names built from scsi_id output, which prefixes the designator type (3 = NAA)
_TYPED = ("scsi-", "dm-uuid-mpath-", "dm-name-")
_HEX = frozenset(string.hexdigits.lower())
_HEX_ID = re.compile(r"^(naa\.|0x)?[0-9a-f]+$", re.IGNORECASE)


def is_hex_id(text: str) -> bool:
    """True for ids printed in hex (WWNs, serials, UIDs), which tools print in either case."""
    return bool(_HEX_ID.match(text))


def same_key(a: str, b: str) -> bool:
    """Equal as backend keys: hex ids in any case, names (RBD, LV, NetApp serials) exactly."""
    return a == b or (is_hex_id(a) and a.casefold() == b.casefold())


@dataclass(frozen=True)
class Naa:
    """A validated NAA designator; ``hex`` is lower case, 16 or 32 digits."""

    hex: str

    @property
    def naa_type(self) -> int:
        return int(self.hex[0], 16)

    @property
    def oui(self) -> str:
        return self.hex[1:7]

    def __str__(self) -> str:
        return f"naa.{self.hex}"


def _naa(text: str) -> Naa | None:
    text = text.replace(":", "")
    if not text or not set(text) <= _HEX:
        return None
    if (len(text) == 16 and text[0] == "5") or (len(text) == 32 and text[0] == "6"):
        return Naa(text)
    return None


def parse_naa(value: str | None) -> Naa | None:
    """Return the NAA designator ``value`` spells, or None (T10, EUI-64, partitions, …)."""
    if not value:
        return None
    text = value.strip().strip("[]").rsplit("/", 1)[-1].lower()
    for prefix in _PLAIN:
        if text.startswith(prefix):
            return _naa(text[len(prefix):])
    for prefix in _TYPED:
        if text.startswith(prefix):
            rest = text[len(prefix):]
            return _naa(rest[1:]) if rest.startswith("3") else None
    if text.startswith("3") and len(text) in (17, 33):
        return _naa(text[1:])
    return _naa(text)


@dataclass(frozen=True)
class Page83:
    naa: Naa
    origin: str  # where it was read, for evidence
    host_side: bool  # False: the guest-visible <wwn>, not confirmed by the host

    def __str__(self) -> str:
        return f"{self.naa} ({self.origin})"


def _add(found: list[Page83], value: str | None, origin: str, host_side: bool = True) -> None:
    naa = parse_naa(value)
    if naa is not None:
        found.append(Page83(naa, origin, host_side))


def _candidates(disk: Disk, host: HostInventory | None) -> list[Page83]:
    found: list[Page83] = []
    path = source_path(disk, host)
    if path:
        _add(found, path, f"source path {path}")
        base = path.rsplit("/", 1)[-1]
        for dev in host.block_devices if host is not None else []:
            if path == dev.path or base in dev.by_id:
                _add(found, dev.scsi_page83, f"host device {dev.path or dev.name}")
                _add(found, dev.wwn, f"host device {dev.path or dev.name}")
    ids = disk.identifiers
    for name in ids.by_id:
        _add(found, name, f"by-id name {name}")
    # domxml turns a libvirt <wwn> into scsi_page83: what the guest sees, not the LUN's
    # own id, unless the LUN itself is passed through (device='lun').
    guest_only = bool(ids.wwn) and disk.device != "lun"
    _add(found, ids.scsi_page83, "guest-visible <wwn>" if guest_only else "disk identifiers",
         not guest_only)
    return found


def disk_page83(disk: Disk, host: HostInventory | None = None) -> Page83 | None:
    """The page-83 NAA id of the LUN behind ``disk``, host-side evidence first.

    :raises ResolutionError: the host-side facts name two different LUNs.
    """
    found = _candidates(disk, host)
    host_side: dict[Naa, Page83] = {}
    for candidate in found:
        if candidate.host_side:
            host_side.setdefault(candidate.naa, candidate)
    if len(host_side) > 1:
        ids = ", ".join(str(c) for c in host_side.values())
        raise ResolutionError(f"disk {disk.target} has conflicting page-83 ids: {ids}")
    if host_side:
        return next(iter(host_side.values()))
    return found[0] if found else None
