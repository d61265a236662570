"""Find the discovery driver for a URI through the ``os_onboard.discovery`` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from os_onboard.discovery.base import DiscoveryDriver
from os_onboard.exceptions import ConfigError


@cache
def available_drivers() -> dict[str, type[DiscoveryDriver]]:
    drivers: dict[str, type[DiscoveryDriver]] = {}
    for ep in entry_points(group="os_onboard.discovery"):
        drivers[ep.name] = ep.load()
    return drivers


def driver_for(uri: str) -> type[DiscoveryDriver]:
    """Return the driver class that handles ``uri``.

    :raises ConfigError: no installed driver understands the URI.
    """
    for cls in available_drivers().values():
        if cls.handles(uri):
            return cls
    names = ", ".join(sorted(available_drivers())) or "none installed"
    raise ConfigError(f"no discovery driver understands {uri!r} (drivers: {names})")
