"""Read the list of hosts to discover from a hosts file (YAML).

::

    hosts:
      - qemu+ssh://root@hv01.example.com/system
      - uri: qemu+tls://hv02.example.com/system
        group: rack-2          # free-form labels are kept for later stages
"""

from __future__ import annotations

from pathlib import Path

from os_onboard.exceptions import ConfigError
from os_onboard.yamlfile import read_yaml


def load_hosts_file(path: str | Path) -> list[str]:
    """Return the host URIs listed in ``path``.

    :raises ConfigError: unreadable file, bad YAML, or entries without a URI.
    """
    data = read_yaml(path, "hosts file")
    entries = data.get("hosts") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"hosts file {path} must contain a non-empty list under 'hosts:'")
    uris = []
    for index, entry in enumerate(entries, start=1):
        uri = entry.get("uri") if isinstance(entry, dict) else entry
        if not isinstance(uri, str) or "://" not in uri:
            raise ConfigError(f"hosts file {path}, entry {index}: expected a URI, got {entry!r}")
        uris.append(uri)
    return uris
