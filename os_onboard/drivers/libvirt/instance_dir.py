"""``<instances_path>/<uuid>/``: where Nova's libvirt driver looks for an instance's disk.

Nova rebuilds a domain (stop/start, hard reboot) with its root disk at
``<instances_path>/<uuid>/disk``; finding it there, it keeps it instead of
creating a blank overlay. Adoption links that path to the legacy root file:
a new file beside the legacy disk; the disk itself is not opened or changed.
``unmanage`` removes the link again, unless the domain now runs from it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Vm


def ensure(instances_path: str | None, uuid: str, params: dict[str, Any]) -> dict:
    """The link and ``disk.info``; idempotent, refuses to replace what is not ours."""
    if not instances_path:
        raise ConfigError("this VM's root disk is a local file: give --instances-path "
                          "(nova-compute's [DEFAULT] instances_path)")
    directory = os.path.join(instances_path, uuid)
    link = os.path.join(directory, "disk")
    info_path = os.path.join(directory, "disk.info")
    try:  # an OSError (e.g. instances_path not writable) fails this VM, not the apply
        os.makedirs(directory, exist_ok=True)
        if os.path.islink(link):
            if os.readlink(link) != params["source"]:
                raise ConfigError(f"{link} already points to {os.readlink(link)}, not "
                                  f"{params['source']}")
        elif os.path.exists(link):
            raise ConfigError(f"{link} exists and is not os-onboard's link; refusing to "
                              "replace it")
        else:
            os.symlink(params["source"], link)
        tmp = f"{info_path}.tmp"
        with open(tmp, "w") as fh:
            json.dump({link: params["format"]}, fh)
        os.replace(tmp, info_path)
    except OSError as exc:
        raise ConfigError(f"instance directory {directory}: {exc}") from exc
    return {"directory": directory, "link": link, "target": params["source"]}


def release(instances_path: str | None, uuid: str,
            live_vm: Vm | None) -> tuple[list[str], list[str]]:
    """Remove the link (removed, kept): kept when the domain now runs from the directory."""
    if not instances_path:
        return [], []
    directory = os.path.join(instances_path, uuid)
    if not os.path.isdir(directory):
        return [], []
    used = live_vm is not None and any(
        (path or "").startswith(directory + os.sep)
        for path in [*(d.source for d in live_vm.disks), live_vm.boot.kernel,
                     live_vm.boot.initrd])
    if used:
        return [], [f"{directory} (the domain now runs from it: Nova rebuilt it)"]
    removed = []
    for name in ("disk", "disk.info"):
        path = os.path.join(directory, name)
        if os.path.islink(path) or (name == "disk.info" and os.path.exists(path)):
            os.unlink(path)
            removed.append(path)
    try:
        os.rmdir(directory)
        removed.append(directory)
    except OSError:
        return removed, [f"{directory} (not empty)"]
    return removed, []
