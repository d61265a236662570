"""``os-onboard install-hook``: the libvirt qemu hook that closes the rename trap."""

from __future__ import annotations

from typing import Any

from cliff.lister import Lister

from os_onboard.cli.common import with_epilog
from os_onboard.drivers.libvirt.hostwrite.install import (
    hook_path,
    install_migrate_hook,
    uninstall_migrate_hook,
)

EPILOG = """\
Cinder's manage renames a volume's backend object (RBD image -> volume-<id>)
under the running guest. 'apply' then redefines the domain's persistent
definition with the new name and records old -> new in a rename map beside
the hook. This hook lets the tools the VM had before keep working: on the
destination of a plain 'virsh migrate' (and on 'virsh restore') it rewrites
the incoming domain XML with the map. It does nothing for any other domain
or operation and never fails one.

Install it on every hypervisor host, then send libvirtd SIGHUP once (libvirt
notices a new hook script only then; running guests are not touched). An
existing hook that os-onboard did not write is never replaced.

examples:
  os-onboard install-hook --libvirt-config-dir /etc/libvirt && kill -HUP $(pidof libvirtd)
  os-onboard install-hook --remove --libvirt-config-dir /etc/libvirt
"""


class InstallHook(Lister):
    """Install (or remove) os-onboard's libvirt qemu hook for renamed volumes."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--libvirt-config-dir", action="append", required=True,
                            metavar="DIR", help="a host's libvirt config dir; repeatable")
        parser.add_argument("--remove", action="store_true", help="uninstall instead")
        return with_epilog(parser, EPILOG)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        rows = []
        for config_dir in parsed_args.libvirt_config_dir:
            if parsed_args.remove:
                state = "removed" if uninstall_migrate_hook(config_dir) else "absent"
            else:
                state = install_migrate_hook(config_dir)
            rows.append((str(hook_path(config_dir)), state))
        return ("Hook", "State"), rows
