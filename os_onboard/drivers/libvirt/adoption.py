"""The libvirt side of adoption: what Nova's libvirt driver needs beside the records.

Two host steps, both named in the plan:

* ``domain-definition`` (after the volumes): Cinder's manage renames an RBD
  image under the running guest; the rename map and the persistent
  definition follow (:mod:`os_onboard.drivers.libvirt.hostwrite`, the one
  write path of this driver to libvirt). The live domain is not touched.
* ``instance-dir`` (a local-file root disk): ``<instances_path>/<uuid>/disk``
  links to the legacy root file, so a Nova rebuild boots the same disk.

Also what a Nova rebuild of the domain would change, the ``image_*``
properties Nova rebuilds it from, and why libvirt would refuse a Nova live
migration before that first rebuild.
"""

from __future__ import annotations

from typing import Any

from os_onboard.drivers.adoption import (
    Adoption,
    AdoptionOutline,
    HostOptions,
    HostStep,
    HostTarget,
    KeptRoot,
)
from os_onboard.drivers.libvirt import instance_dir
from os_onboard.drivers.libvirt.rebuild import live_migration_limits, rebuild_changes, sysmeta
from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Disk, Nic, Vm

DOMAIN_DEFINITION = "domain-definition"
INSTANCE_DIR = "instance-dir"


def config_dirs(options: HostOptions) -> list[str]:
    """Every host's libvirt config dir (where the rename maps and the hook live)."""
    return list(options.get("libvirt_config_dirs") or [])


class LibvirtAdoption(Adoption):
    step_keys = frozenset({DOMAIN_DEFINITION, INSTANCE_DIR})

    def nic_refusal(self, nic: Nic) -> str | None:
        if nic.source_kind in ("network", "bridge"):
            return None
        return (f"NIC {nic.mac.lower()} is {nic.source_kind}: only NICs on a bridge or "
                "libvirt network can be bound to a Neutron port here")

    def unrecorded_disk_fate(self) -> str:
        return "a Nova rebuild (stop/start, hard reboot, migration) drops it from the domain"

    def keep_local_root(self, vm: Vm, disk: Disk) -> KeptRoot | None:
        if disk.source_kind != "file":
            return None
        return KeptRoot(steps=(HostStep(
            key=INSTANCE_DIR,
            summary=f"link <instances_path>/{vm.uuid}/disk -> {disk.source} "
                    f"({disk.format}) so a Nova rebuild boots the same disk",
            params={"source": disk.source, "format": disk.format or "raw",
                    "kernel": vm.boot.kernel, "initrd": vm.boot.initrd}),))

    def outline(self, vm: Vm, root: Disk | None, volume_sources: list[str]) -> AdoptionOutline:
        steps = []
        if any(volume_sources):
            steps.append(HostStep(
                key=DOMAIN_DEFINITION,
                summary="hypervisor-side: the persistent definition names the volume(s) as "
                        "Cinder renamed them (the live domain is untouched), and each host's "
                        "rename map lets a plain 'virsh migrate' follow",
                params={"sources": volume_sources}))
        return AdoptionOutline(steps=steps, system_metadata=sysmeta(vm, root),
                               rebuild_changes=rebuild_changes(vm, root),
                               notes=live_migration_limits(vm))

    def check_options(self, keys: set[str], options: HostOptions) -> None:
        if DOMAIN_DEFINITION in keys and not config_dirs(options):
            raise ConfigError("Cinder will rename volumes of VMs in this plan: give every "
                              "host's libvirt config dir (--libvirt-config-dir, env "
                              "OS_ONBOARD_LIBVIRT_CONFIG_DIRS) for the rename map")

    def execute(self, key: str, target: HostTarget, params: dict[str, Any],
                results: dict[str, dict], options: HostOptions) -> dict:
        if key == DOMAIN_DEFINITION:
            return self.volumes_managed(target, results, options)
        if key == INSTANCE_DIR:
            return instance_dir.ensure(options.get("instances_path"), target.uuid, params)
        return super().execute(key, target, params, results, options)

    def volumes_managed(self, target: HostTarget, results: dict[str, dict],
                        options: HostOptions) -> dict:
        """Close the rename trap (see hostwrite): map first, then the definition."""
        from os_onboard.drivers.libvirt.hostwrite.persistent import apply_renames

        # Both the name the live domain shows and the one its persistent definition
        # may name after an earlier adoption map to the name Cinder gave it now.
        renames = {old: r["renamed_to"] for r in results.values() if r.get("renamed_to")
                   for old in r.get("renamed_from") or [] if old != r["renamed_to"]}
        if not renames:
            return {"renames": {}, "redefined": False}
        dirs = config_dirs(options)
        if not dirs:
            raise ConfigError("Cinder renamed this VM's volumes: give every host's libvirt "
                              "config dir (--libvirt-config-dir) so the rename map can be "
                              "written")
        changed = apply_renames(target.host_uri, target.uuid, renames, dirs)
        return {"renames": renames, "redefined": changed}

    def release(self, target: HostTarget, live_vm: Vm | None,
                options: HostOptions) -> tuple[list[str], list[str]]:
        return instance_dir.release(options.get("instances_path"), target.uuid, live_vm)

    def current_names(self, options: HostOptions) -> dict[str, str]:
        from os_onboard.drivers.libvirt.hostwrite import renamemap

        return renamemap.load_all(config_dirs(options))


