"""A managed host's credentials reference, resolved when the host is read.

The registry (:mod:`.hosts`) keeps a *reference*: ``env:NAME`` (a variable of
the process that reads the host), ``file:/PATH`` (a file only that process's
user may read: mode 0600 or stricter) or ``config:KEY`` (``credentials: {KEY:
...}`` in os-onboard's config file, ``$OS_ONBOARD_CONFIG`` else
``~/.config/os-onboard/config.yaml``). :func:`resolve` turns it into the
secret at the moment of use, on the machine that reads the host, so a server
and an operator's laptop each resolve it their own way. No message here
repeats a secret, only the reference.

Handing the secret to a driver: the drivers take their secrets from their own
places, so :func:`export_for_drivers` puts it there - for ``vsphere://`` hosts
the driver's password variable (``VSPHERE_PASSWORD``) of this process. One
process holds one such variable, so two registered vCenters with different
secrets cannot be read by the same process: that is refused, never guessed.
``qemu+ssh`` hosts log in with SSH keys (ssh's own configuration): their
reference is checked (``os-onboard host check``) but not handed over.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

import yaml

from os_onboard.drivers.vsphere.endpoint import PASSWORD_ENV, SCHEME
from os_onboard.exceptions import ConfigError
from os_onboard.state.hosts import HostRegistry, ManagedHost, check_ref

#: URI scheme -> the environment variable its driver reads the password from
PASSWORD_VARIABLES = {SCHEME: PASSWORD_ENV}

_LOCK = threading.Lock()
_EXPORTED: dict[str, tuple[str, str]] = {}  # variable -> (secret, reference) set by us


def config_file() -> Path:
    explicit = os.environ.get("OS_ONBOARD_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "os-onboard" / "config.yaml"


def resolve(ref: str) -> str:
    """The secret ``ref`` points at, read now.

    :raises ConfigError: a reference of no known shape, or one that does not
        resolve here (unset variable, missing or group/world-readable file,
        no such key); the message names the reference, never a secret.
    """
    check_ref(ref)
    kind, _, where = ref.partition(":")
    if kind == "env":
        value = os.environ.get(where, "")
        if not value:
            raise ConfigError(f"credentials {ref}: the variable is not set in this process")
        return value
    if kind == "file":
        path = Path(where)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(f"credentials {ref}: the file may be read by others "
                                  f"(mode {stat.S_IMODE(mode):04o}; chmod 600 it)")
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"credentials {ref}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"credentials {ref}: the file is empty")
        return value
    path = config_file()
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise ConfigError(f"credentials {ref}: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        # the YAML error quotes lines of the file, secrets included
        raise ConfigError(f"credentials {ref}: {path} is not valid YAML") from None
    section = data.get("credentials") if isinstance(data, dict) else None
    value = section.get(where) if isinstance(section, dict) else None
    if not value:
        raise ConfigError(f"credentials {ref}: no key {where!r} under 'credentials' in {path}")
    return str(value)


def problem(ref: str) -> str:
    """Why ``ref`` does not resolve here ('' when it does, or there is none)."""
    if not ref:
        return ""
    try:
        resolve(ref)
    except ConfigError as exc:
        return str(exc)
    return ""


def export_for_drivers(hosts: Iterable[ManagedHost]) -> list[str]:
    """Put the secrets of ``hosts`` (those with a reference, of a driver that takes
    a password variable) where their drivers read them; the variables set.

    :raises ConfigError: a reference does not resolve, or two hosts (now or
        earlier in this process) need different secrets in one variable.
    """
    wanted: dict[str, tuple[str, str]] = {}
    for host in hosts:
        variable = PASSWORD_VARIABLES.get(host.uri.partition("://")[0])
        if variable is None or not host.credentials_ref:
            continue
        secret = resolve(host.credentials_ref)
        other = wanted.setdefault(variable, (secret, host.credentials_ref))
        if other[0] != secret:
            raise ConfigError(f"hosts with credentials {other[1]} and "
                              f"{host.credentials_ref} need different {variable} in one "
                              "process: read them from separate processes")
    with _LOCK:
        for variable, (secret, ref) in wanted.items():
            before = _EXPORTED.get(variable)
            if before is not None and before[0] != secret:
                raise ConfigError(f"credentials {ref}: this process holds {variable} from "
                                  f"{before[1]} already, a different secret")
            _EXPORTED[variable] = (secret, ref)
            os.environ[variable] = secret
    return sorted(wanted)


def export_registered(registry: HostRegistry, uris: Iterable[str]) -> list[str]:
    """:func:`export_for_drivers` for those of ``uris`` that are registered."""
    registered = {h.uri: h for h in registry.list()}
    return export_for_drivers(registered[u] for u in uris if u in registered)
