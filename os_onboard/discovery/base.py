"""The discovery driver contract.

A driver reads one host (or one vCenter) and returns a
:class:`~os_onboard.inventory.models.HostInventory`. The contract:

* **Read only.** A driver never changes anything on the hypervisor. Where the
  hypervisor offers a read-only session (libvirt ``openReadOnly``), the driver
  uses it, so the guarantee does not rest on our code alone.
* **Per-item errors are data.** A VM that vanishes mid-read, malformed XML, an
  unsupported call: each becomes a :class:`~os_onboard.inventory.models.Problem`
  in the result. Only a host that cannot be reached at all raises
  :class:`~os_onboard.exceptions.HostUnreachable`.
* **Bulk reads.** A driver reads a host with as few round trips as the
  hypervisor API allows, because real hosts are remote.
* **Changes are hints.** :meth:`DiscoveryDriver.watch` yields
  :class:`ChangeEvent` s so a reconciler can react within seconds; consumers
  are level-triggered (they re-read the VM and compare), so a lost or
  duplicated event costs latency, never correctness.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from os_onboard.inventory.models import HostInventory


@dataclass(frozen=True)
class DiscoveryOptions:
    """Knobs shared by all drivers.

    :param address_sources: where guest IPs come from, in order; ``lease``
        (DHCP leases of hypervisor-managed networks) and ``arp`` (the host's
        neighbour table; broken in libvirt 9.0 on recent kernels, reported as
        a warning when it fails).
    :param storage: also read storage pools, volumes and host block devices.
    """

    address_sources: tuple[str, ...] = ("lease",)
    storage: bool = True


class ChangeKind(StrEnum):
    LIFECYCLE = "lifecycle"  # started, stopped, paused, resumed, defined, undefined, …
    HOST_CHANGED = "host-changed"  # the VM now runs on another host (migration, vMotion)
    DEVICE = "device"  # a disk or NIC was added or removed
    CONFIG = "config"  # other configuration (vCPUs, memory, name, …)
    RECONNECTED = "reconnected"  # the feed was interrupted: do a full pass


@dataclass(frozen=True)
class ChangeEvent:
    """One change on a hypervisor, as reported by its event feed."""

    source: str  # the URI being watched
    kind: ChangeKind
    vm_uuid: str | None = None
    vm_name: str | None = None
    detail: str = ""  # e.g. "stopped/migrated", "runtime.host: host-21 -> host-33"
    data: Mapping[str, Any] = field(default_factory=dict)


class DiscoveryDriver(abc.ABC):
    """Reads one hypervisor endpoint. Instances are used from one thread."""

    #: entry-point name, also shown in the inventory
    name: ClassVar[str]

    def __init__(self, uri: str, options: DiscoveryOptions | None = None) -> None:
        self.uri = uri
        self.options = options or DiscoveryOptions()

    @classmethod
    @abc.abstractmethod
    def handles(cls, uri: str) -> bool:
        """Return True if this driver understands ``uri``."""

    @abc.abstractmethod
    def discover(self) -> HostInventory:
        """Read the whole host.

        :raises HostUnreachable: the endpoint cannot be reached at all.
        """

    def watch(self, stop: threading.Event) -> Iterator[ChangeEvent]:
        """Yield changes on the endpoint until ``stop`` is set.

        Uses a read-only session like :meth:`discover`. Reconnects by itself
        after a dropped connection and then yields a ``RECONNECTED`` event.

        :raises NotImplementedError: the driver has no change feed.
        """
        raise NotImplementedError(f"{self.name} has no change feed")
