"""The mapping file: how discovered VMs land in OpenStack (pure; no I/O beyond reading it).

The operator writes one YAML file::

    owners:                          # first match wins
      - match: {host: "qemu+ssh://hv01*", name: "web-*"}
        project: web
        user: web-admin
      - match: {metadata: {"http://example.com/cmdb/1": "*team-db*"}}
        project: databases
    networks:                        # libvirt network / bridge / VLAN -> Neutron
      - match: {network: onboard-lab}
        neutron_network: onboard-lab
        subnet: onboard-lab-v4
      - match: {bridge: br-prod, vlan: 105}
        neutron_network: prod-105
        create: {physical_network: physnet1, segment: 105, cidr: 198.51.5.0/24}
    backends:                        # where disks become Cinder volumes
      - name: ceph-legacy
        cinder_host: lab@ceph-legacy#ceph-legacy
        driver: rbd
        options: {rbd_pool: legacy}
        cross_check: true            # plan blocks a disk Cinder's manageable list lacks
    flavors: {policy: reuse-or-create, prefix: adopted}
    local_disks: block               # or keep: data disks on local files stay outside Nova
    policies:                        # reconcile/watch per group of hosts (first match wins)
      - hosts: "qemu+ssh://hv-prod-*"
        policy: report
      - hosts: "hv-wave1-*"          # the URI or the hostname
        policy: tolerate
        kinds: {vm-gone: report}

Patterns are shell-style (``fnmatch``). Networks created on request get DHCP
off: the legacy segment already has its DHCP server, and a second one would
hand out conflicting leases.
"""

from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Nic, Vm
from os_onboard.mapping.resolvers.base import BackendConfig
from os_onboard.yamlfile import read_yaml


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the file is an error, not a no-op


class OwnerMatch(_Model):
    host: str = "*"
    name: str = "*"
    metadata: dict[str, str] = Field(default_factory=dict, description="namespace -> pattern")

    def matches(self, host_uri: str, vm: Vm) -> bool:
        return (fnmatchcase(host_uri, self.host) and fnmatchcase(vm.name, self.name)
                and all(fnmatchcase(vm.metadata.get(ns, ""), pattern)
                        for ns, pattern in self.metadata.items()))


class OwnerRule(_Model):
    match: OwnerMatch = Field(default_factory=OwnerMatch)
    project: str
    user: str | None = None


class NetworkMatch(_Model):
    network: str | None = None
    bridge: str | None = None
    vlan: int | None = Field(default=None, ge=1, le=4094)

    def matches(self, nic: Nic) -> bool:
        return ((self.network is None or fnmatchcase(nic.network or "", self.network))
                and (self.bridge is None or fnmatchcase(nic.bridge or "", self.bridge))
                and (self.vlan is None or nic.vlan == [self.vlan]))


class ProviderNetwork(_Model):
    """A provider network os-onboard may create; always with DHCP off."""

    physical_network: str
    network_type: Literal["flat", "vlan"] = "flat"
    segment: int | None = Field(default=None, ge=1, le=4094)
    cidr: str
    gateway: str | None = None

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a network address: {exc}") from exc


class NetworkRule(_Model):
    match: NetworkMatch
    neutron_network: str
    subnet: str | None = None
    create: ProviderNetwork | None = None


class PolicyGroup(_Model):
    """``reconcile``/``watch`` policy for a group of hosts (os_onboard.reconcile.policy)."""

    hosts: str = Field(description="shell pattern on the host's libvirt URI or hostname")
    policy: Literal["report", "tolerate"]
    kinds: dict[str, Literal["report", "tolerate", "adopt"]] = Field(
        default_factory=dict, description="per kind of drift, e.g. {power-changed: report}; "
                                          "'adopt' for not-adopted only")


class FlavorPolicy(_Model):
    policy: Literal["reuse-or-create", "reuse-only"] = "reuse-or-create"
    prefix: str = "adopted"


class Mapping(_Model):
    owners: list[OwnerRule] = Field(min_length=1)
    networks: list[NetworkRule] = Field(default_factory=list)
    backends: list[BackendConfig] = Field(default_factory=list)
    flavors: FlavorPolicy = Field(default_factory=FlavorPolicy)
    policies: list[PolicyGroup] = Field(
        default_factory=list,
        description="reconcile/watch policies per group of hosts, first match wins; "
                    "hosts no group names take --policy/--kind-policy")
    local_disks: Literal["block", "keep"] = Field(
        default="block",
        description="non-root local file disks, which Cinder cannot manage here: block the "
                    "VM (default) or keep them outside Nova's records (a Nova rebuild then "
                    "drops them from the domain; the plan says so per disk)")

    @field_validator("backends")
    @classmethod
    def _unique_backend_names(cls, value: list[BackendConfig]) -> list[BackendConfig]:
        names = [b.name for b in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(duplicates)}")
        return value

    def owner_for(self, host_uri: str, vm: Vm) -> OwnerRule | None:
        """The first owner rule matching the VM, or None (the planner blocks it)."""
        return next((r for r in self.owners if r.match.matches(host_uri, vm)), None)

    def network_for(self, nic: Nic) -> NetworkRule | None:
        return next((r for r in self.networks if r.match.matches(nic)), None)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file.

    :raises ConfigError: unreadable, not YAML, or not a valid mapping; the
        message names the file and each offending field.
    """
    data = read_yaml(path, "mapping file")
    try:
        return Mapping.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors())
        raise ConfigError(f"mapping file {path} is invalid: {problems}") from exc
