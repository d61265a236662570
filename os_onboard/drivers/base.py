"""The hypervisor driver contract: one package per hypervisor, capabilities declared.

A driver (:class:`HypervisorDriver`) names its hypervisor kind, says which URIs
it understands, and declares the capabilities it has, Ironic style; each is a
small abstract class and all but :class:`Inventory` are optional:

* :class:`Inventory`: read one endpoint (a libvirt host, a vCenter) into a
  :class:`~os_onboard.inventory.models.HostInventory`.
* :class:`ChangeFeed`: follow changes on that endpoint as they happen.
* :class:`~os_onboard.drivers.adoption.Adoption`: what adoption needs on the
  hypervisor side, beside the OpenStack records (extra plan steps, their
  execution, what release undoes).

Drivers are found through the ``os_onboard.drivers`` entry points
(:mod:`os_onboard.drivers.registry`); plan, apply and reconcile ask the driver
of a VM's host and never test the hypervisor kind themselves.

The contract of reads:

* **Read only.** Inventory and ChangeFeed never change anything on the
  hypervisor. Where the hypervisor offers a read-only session (libvirt
  ``openReadOnly``), the driver uses it, so the guarantee does not rest on our
  code alone. A driver's writes (if adoption needs any) live in its adoption
  capability and are named there.
* **Per-item errors are data.** A VM that vanishes mid-read, malformed XML, an
  unsupported call: each becomes a :class:`~os_onboard.inventory.models.Problem`
  in the result. Only a host that cannot be reached at all raises
  :class:`~os_onboard.exceptions.HostUnreachable`.
* **Bulk reads.** A driver reads a host with as few round trips as the
  hypervisor API allows, because real hosts are remote.
* **Changes are hints.** :meth:`ChangeFeed.watch` yields :class:`ChangeEvent`
  s so a reconciler can react within seconds; consumers are level-triggered
  (they re-read the VM and compare), so a lost or duplicated event costs
  latency, never correctness.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from os_onboard.inventory.models import HostInventory

if TYPE_CHECKING:
    from os_onboard.drivers.adoption import Adoption


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


class _EndpointCapability:
    """A capability bound to one endpoint URI. Instances are used from one thread."""

    def __init__(self, uri: str, options: DiscoveryOptions | None = None) -> None:
        self.uri = uri
        self.options = options or DiscoveryOptions()


class Inventory(_EndpointCapability, abc.ABC):
    """Reads one hypervisor endpoint."""

    @abc.abstractmethod
    def discover(self) -> HostInventory:
        """Read the whole host.

        :raises HostUnreachable: the endpoint cannot be reached at all.
        """


class ChangeFeed(_EndpointCapability, abc.ABC):
    """Follows one hypervisor endpoint's changes."""

    #: seconds the watcher waits after a first event for the rest of its burst
    #: (a libvirt live migration emits four events over about a second)
    settle: ClassVar[float] = 1.0

    @abc.abstractmethod
    def watch(self, stop: threading.Event) -> Iterator[ChangeEvent]:
        """Yield changes on the endpoint until ``stop`` is set.

        Uses a read-only session like :meth:`Inventory.discover`. Reconnects by
        itself after a dropped connection and then yields a ``RECONNECTED`` event.
        """


class HypervisorDriver(abc.ABC):
    """One hypervisor: its kind, the URIs it reads, and its capabilities.

    A new hypervisor is one package with a subclass of this and an
    ``os_onboard.drivers`` entry point naming it (docs/architecture.md).
    """

    #: the hypervisor kind: entry-point name, recorded as ``Host.kind``
    name: ClassVar[str]
    #: reads an endpoint (required)
    inventory: ClassVar[type[Inventory]]
    #: follows an endpoint's changes; None: periodic passes only
    change_feed: ClassVar[type[ChangeFeed] | None] = None
    #: the hypervisor side of adoption; None: this kind cannot be adopted
    adoption: ClassVar[Adoption | None] = None

    @classmethod
    @abc.abstractmethod
    def handles(cls, uri: str) -> bool:
        """Return True if this driver understands ``uri``."""
