"""Where a vSphere endpoint is and how to log in to it (pure: no pyVmomi, no network).

A vSphere URI names the endpoint and the user, never the password::

    vsphere://USER@HOST[:PORT]/[?insecure=1][&scheme=http]

The password comes from the environment (``VSPHERE_PASSWORD``) or from
os-onboard's config file, so that it never appears on a command line (``ps``
shows those to every user), in shell history, in logs or in an inventory.
os-onboard had no config file before this driver; it is YAML at
``$OS_ONBOARD_CONFIG``, else ``$XDG_CONFIG_HOME/os-onboard/config.yaml``
(``~/.config/os-onboard/config.yaml``)::

    vsphere:
      passwords:
        vcenter.example.com: "…"        # by host
        10.0.0.5:8443: "…"              # or host:port when a host has several

TLS certificates are verified (chain against the system's CAs or
``$SSL_CERT_FILE``, and the host name), also on the loopback, unless the URI
says ``insecure=1``: the switch is named for what it does, and every
connection made with it logs a warning. ``scheme=http`` is for API
simulators, which serve plain HTTP (a warning too unless the host is the
loopback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from os_onboard.exceptions import ConfigError

SCHEME = "vsphere"
PASSWORD_ENV = "VSPHERE_PASSWORD"
_TRUE = {"1", "true", "yes", "on"}
_SWITCHES = {"insecure", "scheme"}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    protocol: str = "https"  # "https" or "http"
    insecure: bool = False  # skip TLS certificate verification

    @property
    def display(self) -> str:
        """The endpoint for messages: user, host and port, no password."""
        return f"{SCHEME}://{self.user}@{self.host}:{self.port}/"


def parse_uri(uri: str) -> Endpoint:
    """Parse a ``vsphere://`` URI.

    :raises ConfigError: not a vsphere URI, no user, a password in the URI,
        or an unknown query switch. Messages never repeat the URI, which may
        hold a password.
    """
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or not parts.hostname:
        raise ConfigError("a vSphere URI looks like vsphere://USER@HOST[:PORT]/")
    if parts.password is not None:
        raise ConfigError(f"vsphere://{parts.username}@{parts.hostname}/: a password in the URI "
                          f"is refused; set {PASSWORD_ENV} or put it in os-onboard's config file")
    if not parts.username:
        raise ConfigError(f"vsphere://{parts.hostname}/: name the user, vsphere://USER@HOST/")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - _SWITCHES)
    if unknown:
        raise ConfigError(f"vsphere URI: unknown switch(es) {', '.join(unknown)} "
                          f"(known: insecure=1, scheme=http)")
    protocol = query.get("scheme", "https").lower()
    if protocol not in ("http", "https"):
        raise ConfigError(f"vsphere URI: scheme must be http or https, not {protocol!r}")
    try:
        port = parts.port or (443 if protocol == "https" else 80)
    except ValueError as exc:  # a non-numeric port
        raise ConfigError(f"vsphere URI: bad port ({exc})") from exc
    return Endpoint(host=parts.hostname, port=port, user=parts.username, protocol=protocol,
                    insecure=query.get("insecure", "").lower() in _TRUE)


def config_path() -> Path:
    explicit = os.environ.get("OS_ONBOARD_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "os-onboard" / "config.yaml"


def find_password(endpoint: Endpoint) -> str:
    """The password for ``endpoint``: ``$VSPHERE_PASSWORD``, else the config file.

    :raises ConfigError: no password anywhere, or an unreadable config file.
    """
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    path = config_path()
    passwords = _config_passwords(path)
    for key in (f"{endpoint.host}:{endpoint.port}", endpoint.host):
        if passwords.get(key):
            return str(passwords[key])
    raise ConfigError(f"no password for {endpoint.display}: set {PASSWORD_ENV} or add "
                      f"vsphere.passwords.{endpoint.host} to {path}")


def _config_passwords(path: Path) -> dict[str, object]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        # The YAML error text can quote the file's lines, passwords included.
        raise ConfigError(f"{path} is not valid YAML (line "
                          f"{getattr(getattr(exc, 'problem_mark', None), 'line', -1) + 1})"
                          ) from None
    section = (data or {}).get("vsphere") if isinstance(data, dict) else None
    passwords = section.get("passwords") if isinstance(section, dict) else None
    if passwords is None:
        return {}
    if not isinstance(passwords, dict):
        raise ConfigError(f"{path}: vsphere.passwords must map host names to passwords")
    return {str(k): v for k, v in passwords.items()}
