"""Which policy a drift gets: per group of hosts, per kind of drift.

An estate rarely wants one rule everywhere: production hypervisors may only
be reported on while a migration wave's hosts are tolerated. The mapping
file's ``policies`` groups name hosts by a shell pattern on the libvirt URI
or the hostname; the first group that matches the host a VM runs on (for a
vanished VM: the host OpenStack records) decides, its ``kinds`` before its
``policy``. Hosts no group names take the command line's ``--policy`` and
``--kind-policy``.

``adopt`` is a third policy for one kind only, ``not-adopted``: a VM found on
a managed host is adopted as ``plan`` + ``apply`` would (``tolerate`` leaves
that kind reported: adopting is a bigger step than following a change, so
it is asked for by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from os_onboard.exceptions import ConfigError
from os_onboard.mapping.model import PolicyGroup
from os_onboard.reconcile.drift import DriftKind

POLICIES = ("report", "tolerate")
ADOPT = "adopt"  # not-adopted only


@dataclass(frozen=True)
class HostGroup:
    pattern: str
    kinds: Mapping[DriftKind, str]

    def matches(self, uri: str | None, hostname: str | None) -> bool:
        return any(name is not None and fnmatchcase(name, self.pattern)
                   for name in (uri, hostname))


@dataclass(frozen=True)
class Policies:
    default: Mapping[DriftKind, str]
    groups: tuple[HostGroup, ...] = field(default=())

    def of(self, kind: DriftKind, uri: str | None = None, hostname: str | None = None) -> str:
        """The policy for a drift of ``kind`` on the host ``uri``/``hostname``."""
        group = next((g for g in self.groups if g.matches(uri, hostname)), None)
        return (group.kinds if group else self.default)[kind]


def parse_policies(default: str, overrides: Sequence[str],
                   groups: Iterable[PolicyGroup] = ()) -> Policies:
    """``--policy tolerate --kind-policy power-changed=report`` and the mapping
    file's host groups -> :class:`Policies`."""
    if default not in POLICIES:
        raise ConfigError(f"policy must be one of {', '.join(POLICIES)}, not {default!r}")
    fallback = dict.fromkeys(DriftKind, default)
    for item in overrides:
        name, _, policy = item.partition("=")
        where = f"--kind-policy {item!r}"
        kind = _kind(name, where)
        fallback[kind] = _policy(kind, policy, where)
    return Policies(fallback, tuple(_group(g) for g in groups))


def _group(group: PolicyGroup) -> HostGroup:
    kinds = dict.fromkeys(DriftKind, group.policy)
    where = f"policies: hosts {group.hosts!r}"
    for name, policy in group.kinds.items():
        kind = _kind(name, where)
        kinds[kind] = _policy(kind, policy, where)
    return HostGroup(group.hosts, kinds)


def _policy(kind: DriftKind, policy: str, where: str) -> str:
    if policy == ADOPT and kind is DriftKind.NOT_ADOPTED:
        return policy
    if policy not in POLICIES:
        allowed = POLICIES + ((ADOPT,) if kind is DriftKind.NOT_ADOPTED else ())
        raise ConfigError(f"{where}: policy must be one of {', '.join(allowed)} "
                          f"for {kind.value}, not {policy!r}"
                          + (f" ({ADOPT!r} is for {DriftKind.NOT_ADOPTED.value} only)"
                             if policy == ADOPT else ""))
    return policy


def _kind(name: str, where: str) -> DriftKind:
    try:
        return DriftKind(name)
    except ValueError:
        kinds = ", ".join(k.value for k in DriftKind)
        raise ConfigError(f"{where}: kind must be one of {kinds}, not {name!r}") from None
