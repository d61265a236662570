"""The libvirt driver: hosts given by any libvirt URI (``qemu+ssh://…``, ``test:///…``).

Capabilities: :class:`~os_onboard.drivers.libvirt.inventory.LibvirtInventory`
(one read-only connection, bulk reads), :class:`LibvirtChangeFeed` (domain
lifecycle and device events, events.py) and
:class:`~os_onboard.drivers.libvirt.adoption.LibvirtAdoption` (the rename trap
and the instance directory: this driver's only writes, see ``hostwrite``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from os_onboard.drivers.base import ChangeEvent, ChangeFeed, HypervisorDriver
from os_onboard.drivers.libvirt import events
from os_onboard.drivers.libvirt.adoption import LibvirtAdoption
from os_onboard.drivers.libvirt.inventory import LibvirtInventory

#: URI schemes (before any "+transport") that libvirt serves.
_SCHEMES = {"qemu", "test", "xen", "lxc", "bhyve", "ch", "vz", "openvz", "vbox", "libxl"}


class LibvirtChangeFeed(ChangeFeed):
    def watch(self, stop: threading.Event) -> Iterator[ChangeEvent]:
        """Domain lifecycle and device events on a read-only connection (events.py)."""
        return events.watch(self.uri, stop)


class LibvirtDriver(HypervisorDriver):
    name = "libvirt"
    inventory = LibvirtInventory
    change_feed = LibvirtChangeFeed
    adoption = LibvirtAdoption()

    @classmethod
    def handles(cls, uri: str) -> bool:
        scheme = urlsplit(uri).scheme
        return scheme.split("+", 1)[0] in _SCHEMES
