"""Read the list of hosts to discover from a hosts file (YAML).

::

    hosts:
      - qemu+ssh://root@hv01.example.com/system
      - uri: qemu+tls://hv02.example.com/system
        group: rack-2          # free-form labels are kept for later stages

At most :data:`MAX_HOSTS` hosts; the file itself is bounded by
:data:`~os_onboard.yamlfile.MAX_YAML_BYTES` (read_yaml).
"""

from __future__ import annotations

from pathlib import Path

from os_onboard.exceptions import ConfigError
from os_onboard.yamlfile import read_yaml

#: Most hosts one hosts file may list. Discovery reads 16 hosts at a time, a few
#: seconds each: 10,000 hosts is already an hour-long run and an inventory of
#: ~100,000 VMs, more than one plan should hold; a longer list is more likely a wrong
#: file (or generated garbage) than an estate, and is refused before anything starts.
MAX_HOSTS = 10_000


def load_hosts_file(path: str | Path) -> list[str]:
    """Return the host URIs listed in ``path``.

    :raises ConfigError: unreadable file, bad YAML, entries without a URI, or
        more than :data:`MAX_HOSTS` entries.
    """
    data = read_yaml(path, "hosts file")
    entries = data.get("hosts") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"hosts file {path} must contain a non-empty list under 'hosts:'")
    if len(entries) > MAX_HOSTS:
        raise ConfigError(f"hosts file {path} lists {len(entries):,} hosts, over the limit of "
                          f"{MAX_HOSTS:,}: split it")
    uris = []
    for index, entry in enumerate(entries, start=1):
        uri = entry.get("uri") if isinstance(entry, dict) else entry
        if not isinstance(uri, str) or "://" not in uri:
            shown = repr(entry)
            shown = shown if len(shown) <= 200 else shown[:199] + "…"
            raise ConfigError(f"hosts file {path}, entry {index}: expected a URI, got {shown}")
        uris.append(uri)
    return uris
