"""Close the rename trap for one domain: rename map entry + persistent definition.

Why each write is live-safe:

* the map entry (``renamemap.add``) is a file only the hook reads, when a
  domain arrives by migration or restore;
* the persistent redefinition (``api.redefine_persistent_config``) changes
  only what libvirt will use at the next cold start of the domain; the
  running QEMU keeps its open image and its live definition.

The map entry is written first: a live migration that starts between the two
steps already finds the new name on the destination.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from os_onboard.drivers.libvirt import api
from os_onboard.drivers.libvirt.hostwrite import renamemap
from os_onboard.drivers.libvirt.hostwrite.renames import rewrite_disk_sources


def redefine_with_renames(uri: str, uuid: str, renames: Mapping[str, str]) -> bool:
    """Rewrite the disk sources of the domain's persistent definition; True if it changed."""
    return api.redefine_persistent_config(
        uri, uuid, lambda xml: rewrite_disk_sources(xml, renames))


def apply_renames(uri: str, uuid: str, renames: Mapping[str, str],
                  config_dirs: list[str | os.PathLike[str]]) -> bool:
    """Record ``renames`` in the map of every host in ``config_dirs`` (the domain
    may be migrated to any of them), then redefine the domain on ``uri``."""
    for config_dir in config_dirs:
        renamemap.add(renamemap.map_path(config_dir), renames)
    return redefine_with_renames(uri, uuid, renames)
