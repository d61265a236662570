"""The part of OpenStack's state a plan depends on, read once, fingerprinted.

The planner is pure: it gets a :class:`CloudView` (plain data) instead of a
connection, so its rules are unit-tested without a cloud. The fingerprint
covers exactly what the plan's decisions rest on (ports, servers, compute
nodes, flavors, networks); ``apply`` reads it again and refuses a plan whose
basis moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class CloudReader(Protocol):
    """What the planner reads: a subset of :class:`os_onboard.cloud.base.Cloud`, named
    here because the planner sits below the cloud layer (any Cloud, real or fake, has it)."""

    def hypervisors(self) -> list[dict]: ...
    def servers(self) -> dict[str, dict]: ...
    def ports(self, **filters: Any) -> list[dict]: ...
    def networks(self) -> list[dict]: ...
    def subnets(self) -> list[dict]: ...
    def flavors(self) -> list[dict]: ...
    def project_id(self, name_or_id: str) -> str | None: ...
    def user_id(self, name_or_id: str) -> str | None: ...
    def manageable_volumes(self, host: str) -> list[dict]: ...


@dataclass(frozen=True)
class Scope:
    """What of OpenStack's state one plan's decisions rest on."""

    all: bool = False
    macs: frozenset[str] = frozenset()
    ips: frozenset[str] = frozenset()
    uuids: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    flavors: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Scope:
        return cls(all=True)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(getattr(self, k)) for k in ("macs", "ips", "uuids", "nodes",
                                                      "flavors")}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Scope:
        return cls(**{k: frozenset(v) for k, v in data.items()})


@dataclass
class CloudView:
    hypervisors: list[dict] = field(default_factory=list)
    servers: dict[str, dict] = field(default_factory=dict)
    ports: list[dict] = field(default_factory=list)
    networks: list[dict] = field(default_factory=list)
    subnets: list[dict] = field(default_factory=list)
    flavors: list[dict] = field(default_factory=list)
    projects: dict[str, str | None] = field(default_factory=dict)  # name -> id (None: unknown)
    users: dict[str, str | None] = field(default_factory=dict)
    #: Cinder's manageable list per cinder-volume host, for the backends that want it
    manageable: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def read(cls, cloud: CloudReader, projects: set[str], users: set[str],
             manageable_hosts: Iterable[str] = ()) -> CloudView:
        return cls(hypervisors=cloud.hypervisors(), servers=cloud.servers(),
                   ports=cloud.ports(), networks=cloud.networks(), subnets=cloud.subnets(),
                   flavors=cloud.flavors(),
                   projects={p: cloud.project_id(p) for p in sorted(projects)},
                   users={u: cloud.user_id(u) for u in sorted(users)},
                   manageable={h: cloud.manageable_volumes(h)
                               for h in sorted(set(manageable_hosts))})

    def fingerprint(self, scope: Scope | None = None) -> str:
        """A hash of the state a plan relies on; with ``scope``, only the parts
        that concern its VMs (another team's new port must not make it stale)."""
        scope = scope or Scope.everything()

        def wanted(port: dict) -> bool:
            return scope.all or port["mac"] in scope.macs or port["device_id"] in scope.uuids \
                or any(ip["ip_address"] in scope.ips for ip in port["fixed_ips"])

        basis = {
            "hypervisors": sorted((h["node"], h["uuid"], h.get("service_host") or "",
                                   h.get("state") or "") for h in self.hypervisors
                                  if scope.all or h["node"] in scope.nodes),
            "servers": sorted(u for u in self.servers if scope.all or u in scope.uuids),
            "ports": sorted((p["id"], p["mac"], p["device_id"],
                             sorted(ip["ip_address"] for ip in p["fixed_ips"]))
                            for p in self.ports if wanted(p)),
            "networks": sorted((n["id"], n["name"]) for n in self.networks),
            "subnets": sorted((s["id"], s["cidr"]) for s in self.subnets),
            "flavors": sorted((f["id"], f["vcpus"], f["ram"], f["disk"]) for f in self.flavors
                              if scope.all or f["name"] in scope.flavors),
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]

    def hypervisor(self, node: str | None) -> dict | None:
        return next((h for h in self.hypervisors if node and h["node"] == node), None)

    def network(self, name_or_id: str) -> dict | None:
        return next((n for n in self.networks if name_or_id in (n["id"], n["name"])), None)

    def subnet(self, name_or_id: str) -> dict | None:
        return next((s for s in self.subnets if name_or_id in (s["id"], s["name"])), None)
