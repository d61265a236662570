"""The inventory: what discovery saw on the hypervisors, as pure typed data.

No I/O happens here. Every later stage (plan, apply, reconcile) reads these
models; the JSON form is versioned by :data:`SCHEMA_VERSION` and its JSON
schema is printed by ``os-onboard schema``.

Units are explicit in field names (``_mib``, ``_bytes``) because operators
compare these numbers against Nova flavors and Cinder sizes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Bumped on any incompatible change of the document layout (major) or on
#: additions (minor). Readers accept any 1.x document.
SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    # Unknown keys are an error: an inventory is a contract, not a bag.
    model_config = ConfigDict(extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        # pydantic keeps, per instance, the set of the fields given to it: half of
        # an inventory's memory (8 MB of 16 per 1,000 libvirt VMs). Nothing here
        # asks which fields were given (no exclude_unset, no model_fields_set), so
        # every instance of a class shares one set of all its field names (setting
        # a field adds a name already in it).
        object.__setattr__(self, "__pydantic_fields_set__", _all_fields(type(self)))


@cache
def _all_fields(cls: type[BaseModel]) -> set[str]:
    return set(cls.model_fields)


class PowerState(StrEnum):
    """Power state as Nova would name it, mapped from the hypervisor's."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # shutting down, still has a process
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    SUSPENDED = "suspended"  # guest suspended to RAM (pmsuspended)
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class Firmware(StrEnum):
    BIOS = "bios"
    UEFI = "uefi"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    ERROR = "error"  # the object is missing or incomplete in the inventory
    WARNING = "warning"  # the object is complete, something is worth a look


class Problem(_Model):
    """A per-item error or warning. Discovery reports these; it never crashes."""

    severity: Severity
    code: str = Field(description="stable machine-readable code, e.g. 'domain-vanished'")
    message: str
    host: str | None = Field(default=None, description="host URI")
    vm: str | None = Field(default=None, description="VM name or UUID")


class Host(_Model):
    uri: str
    kind: str = Field(description="hypervisor kind: the name of the driver that read it "
                                  "(libvirt, vsphere, …)")
    hostname: str | None = None
    uuid: str | None = Field(default=None, description="host UUID (SMBIOS or libvirt host_uuid)")
    hypervisor: str | None = Field(default=None, description="e.g. QEMU, Test, VMware ESX")
    hypervisor_version: str | None = None
    cpu_model: str | None = None
    cpus: int | None = None
    memory_mib: int | None = None


class CpuTopology(_Model):
    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1


class BackingFile(_Model):
    format: str | None = None
    source_kind: str
    source: str | None = None


class DiskIdentifiers(_Model):
    """Every identifier the hypervisor side knows for a disk.

    These are what a storage array or Cinder can be asked about: a WWN or
    SCSI page-83 designator identifies a LUN on a SAN; the serial is what the
    guest sees; ``by_id`` are the host's /dev/disk/by-id names.
    """

    serial: str | None = None
    wwn: str | None = Field(default=None, description="WWN presented to the guest (<wwn>)")
    scsi_page83: str | None = Field(default=None, description="SCSI VPD page 0x83 id, e.g. naa.…")
    vendor: str | None = None
    product: str | None = None
    by_id: list[str] = Field(default_factory=list)


class Disk(_Model):
    device: str = Field(description="disk, cdrom, lun or floppy")
    bus: str | None = None
    target: str
    format: str | None = Field(default=None, description="qcow2, raw, …")
    source_kind: str = Field(
        description="file, block, volume, network-rbd, network-iscsi, network-<protocol>, none"
    )
    source: str | None = Field(
        default=None,
        description="path; rbd 'pool/image'; iscsi 'iqn…/lun'; volume 'pool/volume'",
    )
    source_hosts: list[str] = Field(default_factory=list)
    capacity_bytes: int | None = None
    allocation_bytes: int | None = None
    backing_chain: list[BackingFile] = Field(default_factory=list)
    read_only: bool = False
    shareable: bool = False
    boot_order: int | None = None
    identifiers: DiskIdentifiers = Field(default_factory=DiskIdentifiers)
    controller: str | None = Field(default=None, description="e.g. 'scsi0:1' (vSphere)")
    thin: bool | None = Field(default=None, description="thin-provisioned (vSphere)")
    disk_uuid: str | None = Field(default=None, description="vSphere backing uuid")


class AddressSource(StrEnum):
    DHCP_LEASE = "dhcp-lease"
    GUEST_AGENT = "guest-agent"
    METADATA = "metadata"  # static configuration recorded in the domain metadata
    ARP = "arp"
    GUEST_TOOLS = "guest-tools"  # VMware Tools


class IpAddress(_Model):
    family: str = Field(description="ipv4 or ipv6")
    address: str
    prefix: int | None = None
    source: AddressSource


class Nic(_Model):
    mac: str
    model: str | None = None
    source_kind: str = Field(description="network, bridge, direct, hostdev, user, …")
    network: str | None = None
    bridge: str | None = None
    portgroup: str | None = None
    portgroup_key: str | None = Field(default=None, description="vSphere dvPortgroup key")
    vlan: list[int] = Field(default_factory=list, description="VLAN tags; several = trunk")
    target: str | None = Field(default=None, description="host-side tap/macvtap name")
    driver: dict[str, str] | None = Field(
        default=None,
        description="attributes of the NIC's <driver> element ({} for a bare one, None for "
                    "none): libvirt's migration ABI check compares its presence")
    link_up: bool = True
    addresses: list[IpAddress] = Field(default_factory=list)


class Caveat(_Model):
    """A device OpenStack cannot represent as-is; listed so nothing is dropped."""

    kind: str = Field(description="e.g. hostdev-pci, hostdev-usb, tpm, mdev, nvdimm")
    detail: str
    reason: str


class BootConfig(_Model):
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    boot_devices: list[str] = Field(default_factory=list)


class Location(_Model):
    """Where a VM sits in a vCenter inventory (libvirt VMs have none)."""

    datacenter: str | None = None
    cluster: str | None = None
    cluster_id: str | None = Field(
        default=None, description="the cluster's managed object id (e.g. domain-c7): Nova's "
                                  "VMware driver names its compute node after it")
    host: str | None = None
    resource_pool: str | None = None
    folder: str | None = None


class Vm(_Model):
    uuid: str = Field(description="libvirt domain UUID; vSphere config.instanceUuid")
    name: str
    bios_uuid: str | None = Field(default=None, description="SMBIOS UUID when it differs")
    guest_os: str | None = None
    location: Location | None = None
    title: str | None = None
    description: str | None = None
    power_state: PowerState
    state_reason: str | None = None
    domain_id: int | None = Field(default=None, description="hypervisor's runtime id, if running")
    persistent: bool = True
    vcpus: int
    max_vcpus: int | None = None
    cpu_topology: CpuTopology | None = None
    cpu_mode: str | None = None
    cpu_model: str | None = None
    memory_mib: int
    current_memory_mib: int | None = None
    arch: str | None = None
    machine_type: str | None = None
    firmware: Firmware = Firmware.UNKNOWN
    virt_type: str | None = Field(default=None, description="kvm, qemu, test, vmx, …")
    boot: BootConfig = Field(default_factory=BootConfig)
    uptime_seconds: int | None = None
    metadata: dict[str, str] = Field(
        default_factory=dict, description="libvirt <metadata> children, by XML namespace"
    )
    disks: list[Disk] = Field(default_factory=list)
    nics: list[Nic] = Field(default_factory=list)
    caveats: list[Caveat] = Field(default_factory=list)


class StorageVolume(_Model):
    name: str
    path: str | None = None
    key: str | None = None
    format: str | None = None
    capacity_bytes: int | None = None
    allocation_bytes: int | None = None


class StoragePool(_Model):
    name: str
    uuid: str | None = None
    type: str = Field(description="libvirt pool type: dir, logical, rbd, iscsi, …")
    active: bool = True
    source: str | None = Field(default=None, description="rbd pool, VG name, iSCSI IQN, …")
    source_hosts: list[str] = Field(default_factory=list)
    target_path: str | None = None
    capacity_bytes: int | None = None
    allocation_bytes: int | None = None
    volumes: list[StorageVolume] = Field(default_factory=list)


class BlockDevice(_Model):
    """A SCSI/LUN block device the host itself sees (libvirt node device)."""

    name: str = Field(description="node device name, e.g. block_sda_…")
    path: str | None = Field(default=None, description="/dev/sdX")
    bus: str | None = None
    drive_type: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    scsi_page83: str | None = None
    wwn: str | None = None
    by_id: list[str] = Field(default_factory=list)
    size_bytes: int | None = None


class Lease(_Model):
    """A DHCP lease held by the hypervisor's own DHCP server for a network."""

    mac: str
    address: IpAddress


class Network(_Model):
    name: str
    bridge: str | None = None
    forward_mode: str | None = None
    active: bool = True
    dhcp: bool = False
    subnets: list[str] = Field(default_factory=list)
    leases: list[Lease] = Field(default_factory=list)


class HostStatus(StrEnum):
    OK = "ok"
    PARTIAL = "partial"  # reached, but some objects could not be read
    UNREACHABLE = "unreachable"


class HostInventory(_Model):
    host: Host
    status: HostStatus = HostStatus.OK
    discovered_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_ms: int | None = None
    vms: list[Vm] = Field(default_factory=list)
    networks: list[Network] = Field(default_factory=list)
    storage_pools: list[StoragePool] = Field(default_factory=list)
    block_devices: list[BlockDevice] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)


class Conflict(_Model):
    """An identifier that should be unique but is not (a MAC on two VMs, …)."""

    kind: str = Field(description="duplicate-mac, duplicate-uuid")
    value: str
    members: list[str] = Field(description="'<host uri> <vm name>' of each holder")
    detail: str | None = None


class Inventory(_Model):
    schema_version: str = SCHEMA_VERSION
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    hosts: list[HostInventory] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)

    def iter_vms(self):
        """Yield ``(host_inventory, vm)`` for every VM of every host."""
        for host in self.hosts:
            for vm in host.vms:
                yield host, vm

    @property
    def problems(self) -> list[Problem]:
        return [p for h in self.hosts for p in h.problems]
