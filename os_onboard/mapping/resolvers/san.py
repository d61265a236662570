"""Shared behaviour of SAN array resolvers: a disk's page-83 id -> the array's volume.

A SAN resolver claims a disk when the LUN's page-83 NAA id carries its
vendor's OUI. One vendor often has several arrays, each its own Cinder
backend; ``naa_prefix`` pins a backend to one array (the digits its ids share,
e.g. a Storwize cluster's '60050768108101c7c'), which turns a PLAUSIBLE match
into a DERIVED one and sends other arrays' LUNs elsewhere.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from pydantic import field_validator

from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.base import (
    BackendReference,
    Confidence,
    ResolverOptions,
    VolumeResolver,
)
from os_onboard.mapping.resolvers.facts import disk_notes
from os_onboard.mapping.resolvers.layouts import VENDORS
from os_onboard.mapping.resolvers.naa import Page83, disk_page83

#: disk source kinds that can be a LUN (vSphere RDMs are 'block')
SAN_KINDS = frozenset({"block", "volume", "network-iscsi"})


class SanOptions(ResolverOptions):
    naa_prefix: str | None = None

    @field_validator("naa_prefix")
    @classmethod
    def _hex_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().lower().removeprefix("naa.").removeprefix("0x")
        if not text or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"{value!r} is not a hex prefix of page-83 ids")
        return text


class SanResolver(VolumeResolver):
    """Base of OUI-matched resolvers; subclasses implement :meth:`resolve_naa`."""

    Options = SanOptions
    options: SanOptions
    #: OUIs (6 lower-case hex digits) whose ids this resolver claims
    ouis: ClassVar[frozenset[str]]
    #: True when resolve_naa itself checks the array (from the configuration)
    checks_array: ClassVar[bool] = False

    def resolve(self, disk: Disk, host: HostInventory | None = None) -> BackendReference | None:
        if disk.source_kind not in SAN_KINDS:
            return None
        page83 = disk_page83(disk, host)
        if page83 is None or page83.naa.oui not in self.ouis:
            return None
        prefix = self.options.naa_prefix
        if prefix is not None and not page83.naa.hex.startswith(prefix):
            return None  # this vendor, another array
        pinned = page83.host_side and (prefix is not None or self.checks_array)
        notes = disk_notes(disk)
        if not page83.host_side:
            notes.append("only the guest-visible <wwn> names the LUN; no host device confirms it")
        elif not pinned:
            vendor = VENDORS.get(page83.naa.oui, self.kind)
            notes.append(f"any {vendor} array matches: set naa_prefix to pin backend "
                         f"{self.config.name!r} to one array")
        return self.resolve_naa(page83, pinned=pinned, notes=notes)

    @abc.abstractmethod
    def resolve_naa(self, page83: Page83, *, pinned: bool,
                    notes: list[str]) -> BackendReference | None:
        """Turn a page-83 id with this resolver's OUI into a reference.

        :param pinned: host-side evidence, and the array is pinned by ``naa_prefix`` (or
            is checked here, see :attr:`checks_array`); return None for another array.
        :param notes: notes gathered so far, to pass on to :meth:`reference`.
        :raises ResolutionError: the id is malformed for this vendor, or its lookup fails.
        """

    @staticmethod
    def confidence(pinned: bool) -> Confidence:
        return Confidence.DERIVED if pinned else Confidence.PLAUSIBLE

