"""The only module that imports ``libvirt``.

Everything libvirt-specific that the rest of the driver needs (opening a
read-only connection, constants, error classification) is re-exported here,
so that the dependency has one seam and tests can see exactly what is used.
Connections are opened with ``openReadOnly``: libvirtd then refuses every
mutating call with VIR_ERR_OPERATION_DENIED, whatever our code does. The one
exception is :func:`redefine_persistent_config`, os-onboard's only libvirt
write (used by ``os_onboard.drivers.libvirt.hostwrite`` after Cinder renamed a disk's image),
which opens its own read-write connection for that single call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libvirt

from os_onboard.exceptions import (
    ConfigError,
    DiscoveryError,
    HostUnreachable,
    ObjectVanished,
    ReadOnlyViolation,
)

LibvirtError = libvirt.libvirtError
LOG = logging.getLogger(__name__)

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


def warn_if_insecure(uri: str) -> bool:
    """Log a warning when ``uri`` turns off libvirt's TLS verification; True then.

    ``qemu+tls://`` verifies the server's certificate against libvirt's CA
    (``/etc/pki/CA/cacert.pem``, or ``pkipath=``) and its host name by
    default; ``no_verify=1`` is libvirt's own switch to skip that. os-onboard
    passes URIs to libvirt as given, so it only says so, once per connection.
    """
    parts = urlsplit(uri)
    values = parse_qs(parts.query, keep_blank_values=True).get("no_verify", [])
    if not values or values[-1].strip() in ("", "0"):
        return False
    LOG.warning("%s://%s: TLS certificate verification is off (no_verify=%s in the URI): "
                "anyone on the path can impersonate the host", parts.scheme,
                parts.hostname or "", values[-1])
    return True


def check_uri(uri: str) -> None:
    """Refuse a password typed into a libvirt URI; warn about ``no_verify``.

    libvirt reads no password from a URI: the whole ``user:secret`` part is
    its user name, which goes on, e.g. onto ssh's command line (``ps`` shows
    it to every user). Authentication is by SSH keys, SASL or libvirt's
    ``auth.conf``. The message names the user and host, never the password.

    :raises ConfigError: a password in the URI.
    """
    parts = urlsplit(uri)
    if parts.password is not None:
        raise ConfigError(f"{parts.scheme}://{parts.username}@{parts.hostname or ''}/: a "
                          "password in a libvirt URI is refused (libvirt would pass it on "
                          "as part of the user name); use SSH keys, SASL or libvirt's "
                          "auth.conf")
    warn_if_insecure(uri)


def open_read_only(uri: str) -> Any:
    """Open a read-only connection, or raise :class:`HostUnreachable`."""
    check_uri(uri)
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        raise HostUnreachable(f"cannot connect to {uri}: {exc.get_error_message()}") from exc
    if conn is None:  # old bindings returned None instead of raising
        raise HostUnreachable(f"cannot connect to {uri}")
    return conn


def redefine_persistent_config(uri: str, uuid: str, transform: Callable[[str], str]) -> bool:
    """Replace the *persistent* definition of domain ``uuid`` by ``transform(its XML)``.

    os-onboard's only libvirt write. It reads the inactive (next-boot) XML
    with secrets (VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, so an RBD
    disk's ``<auth>`` survives) and, if ``transform`` changed it, defines it
    again (virDomainDefineXML). For a running domain libvirt stores that as
    the definition for the next start only: the live definition, the QEMU
    process and the guest are not touched. A transient domain has no
    persistent definition and is refused (defining one would make it
    persistent, which is not ours to decide). Returns True when it redefined.

    The read-write connection is opened for this call only and closed again.
    """
    check_uri(uri)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HostUnreachable(f"cannot connect to {uri}: {exc.get_error_message()}") from exc
    try:
        dom = conn.lookupByUUIDString(uuid)
        if not dom.isPersistent():
            raise ConfigError(f"{uri}: domain {dom.name()} ({uuid}) is transient: "
                              "it has no persistent definition to update")
        old = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        new = transform(old)
        if new == old:
            return False
        conn.defineXML(new)
        return True
    except libvirt.libvirtError as exc:
        raise translate(exc, f"{uri}: redefine domain {uuid}") from exc
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()


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


# -- change feed (used by events.py) ---------------------------------------------------

#: Lifecycle events and their details by name, so events.py needs no libvirt import.
LIFECYCLE_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
#: The "migrated" detail of the events that have one (values differ per event).
MIGRATED_DETAIL = {
    "started": libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED,
    "stopped": libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED,
    "suspended": libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED,
    "resumed": libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED,
}


def _detail_names() -> dict[str, dict[int, str]]:
    """e.g. {"stopped": {3: "migrated", ...}} from the VIR_DOMAIN_EVENT_<EVENT>_<DETAIL> names."""
    names: dict[str, dict[int, str]] = {}
    for event in LIFECYCLE_EVENTS.values():
        prefix = f"VIR_DOMAIN_EVENT_{event.upper()}_"
        names[event] = {getattr(libvirt, k): k[len(prefix):].lower().replace("_", "-")
                        for k in dir(libvirt) if k.startswith(prefix)}
    return names


LIFECYCLE_DETAILS = _detail_names()

_event_loop_lock = threading.Lock()
_event_loop_started = False


def start_event_loop() -> None:
    """Register libvirt's default event loop and run it on a daemon thread (once).

    Events, keepalive and close callbacks are dispatched by this loop; it must
    be registered before the connections that use it are opened.
    """
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


class EventConnection:
    """A read-only connection that reports domain events to plain callbacks.

    ``on_lifecycle(name, uuid, event, detail)``, ``on_device(name, uuid, added, alias)``
    and ``on_close(reason)`` run on the event-loop thread: keep them short.
    """

    def __init__(self, uri: str, on_lifecycle: Any, on_device: Any, on_close: Any,
                 keepalive: tuple[int, int] = (5, 3)) -> None:
        start_event_loop()
        self.conn = open_read_only(uri)
        self._ids: list[int] = []
        try:
            # A peer that stops answering for interval * count seconds is closed.
            self.conn.setKeepAlive(*keepalive)
            self.conn.registerCloseCallback(lambda _c, reason, _o: on_close(reason), None)
            self._ids.append(self.conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                lambda _c, dom, event, detail, _o: on_lifecycle(
                    dom.name(), dom.UUIDString(), event, detail), None))
            for added, event_id in ((True, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED),
                                    (False, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED)):
                self._ids.append(self.conn.domainEventRegisterAny(
                    None, event_id,
                    lambda _c, dom, alias, _o, added=added: on_device(
                        dom.name(), dom.UUIDString(), added, alias), None))
        except libvirt.libvirtError as exc:
            self.close()
            raise translate(exc, f"{uri}: register for events") from exc

    def close(self) -> None:
        for callback_id in self._ids:
            with contextlib.suppress(libvirt.libvirtError):
                self.conn.domainEventDeregisterAny(callback_id)
        self._ids = []
        with contextlib.suppress(libvirt.libvirtError):
            self.conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            self.conn.close()
