"""The adoption capability: the hypervisor side of bringing a VM into OpenStack.

The OpenStack records of an adopted VM (ports, volumes, the Nova instance,
Placement, the network cache) are the same for every hypervisor and are
planned and written by ``plan`` and ``apply``. What differs is what the
hypervisor (or the driver's records of it) needs beside them, so that Nova's
driver for that hypervisor can manage the VM afterwards:

* which devices the records cannot represent (:meth:`Adoption.nic_refusal`);
* which Nova compute node manages a VM (:meth:`Adoption.compute_node`);
* how a local root disk is kept (:meth:`Adoption.keep_local_root`);
* extra steps, run after the VM's volumes and before its Nova records, the
  image properties Nova rebuilds the VM from, and what a Nova rebuild would
  change (:meth:`Adoption.outline`);
* their execution (:meth:`Adoption.execute`), what must follow when Cinder
  managed (and possibly renamed) volumes (:meth:`Adoption.volumes_managed`),
  and what ``unmanage`` undoes (:meth:`Adoption.release`).

Every write to a hypervisor host is a step here, named in the plan, so an
operator reads it before it happens. This module knows nothing of plans or
clouds: drivers sit below the pipeline and speak in inventory terms and
plain data (os-vif's small-contract style).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Disk, Host, Nic, Vm

#: Driver-specific settings of apply, release and reconcile (e.g. libvirt's
#: ``instances_path`` and ``libvirt_config_dirs``), by name; the CLI fills them.
HostOptions = Mapping[str, Any]


@dataclass(frozen=True)
class HostStep:
    """A hypervisor-side step of one VM; ``key`` is unique within the VM."""

    key: str
    summary: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeptRoot:
    """How Nova keeps a VM's local root disk: the host steps that make it so, and a note."""

    steps: tuple[HostStep, ...] = ()
    note: str = ""


@dataclass
class AdoptionOutline:
    """What a driver adds to one VM's plan."""

    #: run in this order after the VM's volumes, before its Nova records
    steps: list[HostStep] = field(default_factory=list)
    #: Nova's ``image_*`` system metadata: what its driver rebuilds the VM from
    system_metadata: dict[str, str] = field(default_factory=dict)
    #: what Nova would change if it regenerates the VM (for the operator to weigh)
    rebuild_changes: list[str] = field(default_factory=list)
    #: what Nova cannot do with the VM until then, and other remarks
    notes: list[str] = field(default_factory=list)
    #: the root disk's name in Nova's records (None: /dev/<its target>). Nova derives
    #: the next device name from it at every volume attach, so it must be one Nova
    #: can parse (/dev/sda, /dev/vda; not vSphere's scsi0:0)
    root_device_name: str | None = None


@dataclass(frozen=True)
class HostTarget:
    """The VM a host step acts on."""

    uuid: str
    name: str
    host_uri: str
    #: on release: the ids of the VM's volumes os-onboard recorded (now released)
    volume_ids: tuple[str, ...] = ()


class Adoption(abc.ABC):
    """The hypervisor side of adoption for one kind of hypervisor."""

    #: the host step keys this driver executes (a plan naming another is refused)
    step_keys: frozenset[str] = frozenset()
    #: those of them that follow the VM's volumes (run again when phase 2 records a
    #: disk added out of band; idempotent like every host step)
    volume_step_keys: frozenset[str] = frozenset()
    #: seconds a guest must stay off before phase 2 records it SHUTOFF
    #: (reconcile/tolerate/power.py): libvirt's Nova turns a quick restart seen
    #: through a STOPPED record into a force-stop (its lifecycle events)
    shutdown_grace: float = 20.0
    #: whether a VM that is off still says where it is (libvirt: no - a shut-off
    #: domain may be defined on several hosts, only a running one is placed)
    placed_when_off: bool = False
    #: whether the VM's name on the hypervisor is the name people give it (vSphere:
    #: yes, a rename in vCenter is a rename of the server); libvirt: no - Nova names
    #: the domains it redefines ``instance-<n>``, which is no rename of the server
    vm_name_is_display_name: bool = False
    #: whether the root disk stays part of the VM even where a backend could make it a
    #: volume (vSphere: the VM's root is its own; Nova's VMware driver powers and
    #: reboots the VM in place, and a boot volume would change what a rebuild does)
    root_stays_in_vm: bool = False

    def nic_refusal(self, nic: Nic) -> str | None:
        """Why this NIC cannot become a Neutron port Nova's driver plugs (None: it can)."""
        return None

    def compute_node(self, host: Host, vm: Vm) -> str | None:
        """The Nova compute node (hypervisor hostname) that manages ``vm`` of ``host``
        (None: no node can; the plan says why). One node per host by default."""
        return host.hostname

    def covers_node(self, host: Host, node: str) -> bool:
        """Whether reading ``host`` shows every VM of compute node ``node`` (so a VM
        recorded there and not seen is gone, not elsewhere)."""
        return node == host.hostname

    def vm_refusals(self, host: Host, vm: Vm) -> list[str]:
        """Why this VM cannot be adopted on this hypervisor, beyond the generic rules
        (devices, power state, owners); each reason is shown in the plan."""
        return []

    def disk_may_be_volume(self, disk: Disk, is_root: bool) -> bool:
        """Whether a disk of an adopted VM that no volume records is drift (disk-added).
        Network and block disks are; a file on a hypervisor's filesystem is no Cinder
        volume (adoption keeps such disks, e.g. a local root, out of the records)."""
        return disk.source_kind != "file"

    def unrecorded_disk_fate(self) -> str:
        """What becomes of a local disk kept out of Nova's records (``local_disks: keep``)."""
        return "Nova's driver does not know it"

    def keep_local_root(self, vm: Vm, disk: Disk) -> KeptRoot | None:
        """How Nova keeps ``vm``'s local root ``disk`` where it is (None: it cannot)."""
        return None

    @abc.abstractmethod
    def outline(self, vm: Vm, root: Disk | None, volume_sources: list[str]) -> AdoptionOutline:
        """Extra steps, image properties, rebuild changes and notes for one VM.

        :param volume_sources: the backend names of the VM's disks that become
            Cinder volumes (Cinder's manage may rename them).
        """

    def check_options(self, keys: set[str], options: HostOptions) -> None:
        """Refuse, before anything is written, an apply whose steps ``keys`` lack settings.

        :raises ConfigError: a setting those steps need is missing.
        """
        return None

    def execute(self, key: str, target: HostTarget, params: dict[str, Any],
                results: dict[str, dict], options: HostOptions) -> dict:
        """Run one host step (idempotent: a rerun finds its own work done).

        :param results: what the VM's earlier steps returned, by step key.
        :raises ConfigError: a step this driver does not know.
        """
        raise ConfigError(f"{type(self).__name__} has no host step {key!r}")

    def volumes_managed(self, target: HostTarget, results: dict[str, dict],
                        options: HostOptions) -> dict:
        """Cinder managed these volumes (``results`` of volume steps, by key): make the
        hypervisor side follow (e.g. a renamed backend object). Idempotent."""
        return {}

    def release(self, target: HostTarget, live_vm: Vm | None,
                options: HostOptions) -> tuple[list[str], list[str]]:
        """Undo this driver's host-side records of an adopted VM on ``unmanage``;
        never touches the VM itself. Returns (what was removed, what was kept and why)."""
        return [], []

    def current_names(self, options: HostOptions) -> dict[str, str]:
        """Disk sources an earlier adoption had renamed -> their names now."""
        return {}
