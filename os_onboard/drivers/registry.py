"""Find hypervisor drivers through the ``os_onboard.drivers`` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from os_onboard.drivers.base import HypervisorDriver
from os_onboard.exceptions import ConfigError

GROUP = "os_onboard.drivers"


@cache
def available_drivers() -> dict[str, type[HypervisorDriver]]:
    """Every installed driver, by its hypervisor kind."""
    drivers: dict[str, type[HypervisorDriver]] = {}
    for ep in entry_points(group=GROUP):
        driver = ep.load()
        if driver.name != ep.name:  # the kind is the driver's word; the entry point must agree
            raise ConfigError(f"entry point {GROUP}:{ep.name} names driver {driver.name!r}")
        drivers[ep.name] = driver
    return drivers


def driver_for(uri: str) -> type[HypervisorDriver]:
    """Return the driver that handles ``uri``.

    :raises ConfigError: no installed driver understands the URI.
    """
    for cls in available_drivers().values():
        if cls.handles(uri):
            return cls
    names = ", ".join(sorted(available_drivers())) or "none installed"
    try:  # the message never repeats a password typed into the URI
        password = urlsplit(uri).password
    except ValueError:
        password = None
    shown = uri.replace(f":{password}@", ":***@") if password else uri
    raise ConfigError(f"no hypervisor driver understands {shown!r} (drivers: {names})")


def driver_named(kind: str) -> type[HypervisorDriver]:
    """Return the driver of a hypervisor kind (``Host.kind`` of an inventory).

    :raises ConfigError: no installed driver has that kind.
    """
    try:
        return available_drivers()[kind]
    except KeyError:
        names = ", ".join(sorted(available_drivers())) or "none installed"
        raise ConfigError(f"no hypervisor driver of kind {kind!r} (drivers: {names})") from None
