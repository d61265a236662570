"""The only module that imports ``libvirt``.

Everything libvirt-specific that the rest of the driver needs (opening a
read-only connection, constants, error classification) is re-exported here,
so that the dependency has one seam and tests can see exactly what is used.
Connections are *always* opened with ``openReadOnly``: libvirtd then refuses
every mutating call with VIR_ERR_OPERATION_DENIED, whatever our code does.
"""

from __future__ import annotations

from typing import Any

import libvirt

from os_onboard.exceptions import (
    DiscoveryError,
    HostUnreachable,
    ObjectVanished,
    ReadOnlyViolation,
)

LibvirtError = libvirt.libvirtError

# libvirt prints every error to stderr by default; we report them ourselves.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

STATS_FLAGS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BLOCK
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
)
LIST_TRANSIENT = libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT
NODE_DEVICES_STORAGE = libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE
ADDR_SOURCE_LEASE = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE
ADDR_SOURCE_ARP = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP
IP_ADDR_TYPE_IPV6 = libvirt.VIR_IP_ADDR_TYPE_IPV6

#: libvirt domain states -> inventory power states.
POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "unknown",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}

_VANISHED = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_NODE_DEVICE,
}
_UNSUPPORTED = {libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED}


def open_read_only(uri: str) -> Any:
    """Open a read-only connection, or raise :class:`HostUnreachable`."""
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        raise HostUnreachable(f"cannot connect to {uri}: {exc.get_error_message()}") from exc
    if conn is None:  # old bindings returned None instead of raising
        raise HostUnreachable(f"cannot connect to {uri}")
    return conn


def is_unsupported(exc: Exception) -> bool:
    """True when the driver behind the connection does not implement the call."""
    return isinstance(exc, libvirt.libvirtError) and exc.get_error_code() in _UNSUPPORTED


def translate(exc: Exception, what: str) -> Exception:
    """Turn a libvirtError into our error tree (returned, for ``raise … from``)."""
    if not isinstance(exc, libvirt.libvirtError):
        return exc
    code = exc.get_error_code()
    message = f"{what}: {exc.get_error_message()}"
    if code in _VANISHED:
        return ObjectVanished(message)
    if code == libvirt.VIR_ERR_OPERATION_DENIED:
        return ReadOnlyViolation(message)
    if code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT):
        return HostUnreachable(message)
    return DiscoveryError(message)
