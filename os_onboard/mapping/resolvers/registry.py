"""Resolvers by driver kind (``os_onboard.volume_resolvers`` entry points), and the
choice of one backend for a disk among several."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

from os_onboard.exceptions import ConfigError, ResolutionError
from os_onboard.inventory.models import Disk, HostInventory
from os_onboard.mapping.resolvers.base import (
    RANK,
    BackendConfig,
    BackendReference,
    Confidence,
    Lookup,
    ManageableVolume,
    VolumeResolver,
)

GROUP = "os_onboard.volume_resolvers"


@cache
def available_resolvers() -> dict[str, type[VolumeResolver]]:
    """Every installed resolver class, by kind (the entry-point name)."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def resolver_for(config: BackendConfig, *, lookup: Lookup | None = None,
                 manageable: Iterable[ManageableVolume] | None = None) -> VolumeResolver:
    """Build the resolver of ``config.driver`` for one backend.

    :raises ConfigError: no resolver of that kind is installed, or the
        resolver rejects the configuration.
    """
    cls = available_resolvers().get(config.driver)
    if cls is None:
        kinds = ", ".join(sorted(available_resolvers())) or "none installed"
        raise ConfigError(f"backend {config.name!r}: no volume resolver {config.driver!r} "
                          f"(installed: {kinds})")
    return cls(config, lookup=lookup, manageable=manageable)


def wants_manageable_list(config: BackendConfig) -> bool:
    """Whether planning for this backend needs Cinder's manageable list."""
    cls = available_resolvers().get(config.driver)
    return config.cross_check or bool(cls and cls.needs_manageable)


def resolve_disk(disk: Disk, host: HostInventory | None,
                 resolvers: Iterable[VolumeResolver]) -> BackendReference | None:
    """The reference of ``disk`` on the one backend that holds it.

    Every resolver is asked. The strongest claim wins (LISTED, DERIVED,
    PLAUSIBLE); two equally strong best claims are ambiguous. A LISTED or
    DERIVED claim outweighs other backends' errors (e.g. a sibling array's
    lookup not knowing the volume); a PLAUSIBLE guess does not.

    :returns: None when no backend claims the disk (a local file, a pool no
        backend serves).
    :raises ResolutionError: errors without a firm claim, or an ambiguous claim.
    """
    claims: list[BackendReference] = []
    errors: list[str] = []
    for resolver in resolvers:
        try:
            found = resolver.resolve(disk, host)
        except ResolutionError as exc:
            errors.append(f"{resolver.config.name}: {exc}")
            continue
        if found is not None:
            claims.append(found)
    best = max((RANK[c.confidence] for c in claims), default=0)
    if errors and best < RANK[Confidence.DERIVED]:
        raise ResolutionError(f"disk {disk.target}: " + "; ".join(errors))
    top = [c for c in claims if RANK[c.confidence] == best]
    if len(top) > 1:
        names = ", ".join(f"{c.backend} ({c.confidence})" for c in top)
        raise ResolutionError(f"disk {disk.target} is claimed by several backends: {names}; "
                              "pin them (naa_prefix, monitors, hypervisor_hosts)")
    return top[0] if top else None
