"""The vSphere driver's one write path: the extraConfig keys Nova's VMware driver needs.

Nova's VMware driver finds the disk of an attached volume in its VM by
``config.extraConfig["volume-<volume id>"]`` = the disk's uuid (written by its
own attach; read by ``volumeops._get_volume_uuid`` at detach, with no fallback:
without the key a detach through Nova fails with DiskNotFound). A disk os-onboard
records in place as a volume was never attached by Nova, so the key is written
here, once per disk, as a plan step; ``unmanage`` removes it again (an empty
value removes a key on vCenter).

Live-safe: one ``ReconfigVM_Task`` whose spec holds only ``extraConfig`` - no
device, CPU, memory or power change; the keys are not ``guestinfo.*``, so the
guest cannot read them. Nothing else in os-onboard writes to vCenter (Cinder's
backing VMs are made by the Cinder-side helper with Cinder's own code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from os_onboard.drivers.vsphere.api import reconfigure_extra_config
from os_onboard.drivers.vsphere.endpoint import Endpoint


def set_extra_config(endpoint: Endpoint, password: str, instance_uuid: str,
                     keys: Mapping[str, str]) -> dict[str, str]:
    """Give the VM these extraConfig values ("" removes a key); write only what differs.

    :returns: the keys written, with their new values (empty: nothing was needed).
    :raises HostWriteError: the VM is not found, or vCenter refused the change.
    """
    def differing(options: list[Any]) -> dict[str, str]:
        now = effective(options)
        return {k: v for k, v in keys.items() if now.get(k, "") != v}

    _name, written = reconfigure_extra_config(endpoint, password, instance_uuid, differing)
    return written


def effective(options: list[Any]) -> dict[str, str]:
    """extraConfig as vCenter shows it: the last value of a key wins, "" is no key
    (govmomi's simulator appends each write instead of replacing the key)."""
    values: dict[str, str] = {}
    for option in options:
        values[option.key] = "" if option.value is None else str(option.value)
    return {k: v for k, v in values.items() if v != ""}
