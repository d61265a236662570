"""``os-onboard host add|list|show|remove``: the registry of managed hosts."""

from __future__ import annotations

from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from os_onboard.cli.common import state_store
from os_onboard.exceptions import ConfigError
from os_onboard.state.hosts import HostRegistry, ManagedHost

COLUMNS = ("ID", "Name", "URI", "Groups", "Credentials")


def _row(host: ManagedHost) -> tuple[Any, ...]:
    return (host.id, host.name, host.uri, ",".join(host.groups), host.credentials_ref)


def registry(app: Any) -> HostRegistry:
    return HostRegistry(state_store(app))


class AddHost(ShowOne):
    """Register a hypervisor endpoint as a managed host."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("uri", help="libvirt or vsphere URI (never with a password)")
        parser.add_argument("--name", help="unique name (default: the URI's host name)")
        parser.add_argument("--group", action="append", default=[], metavar="LABEL",
                            help="group label (repeatable), used by the mapping's policy "
                                 "groups")
        parser.add_argument("--credentials", default="", metavar="REF",
                            help="where the secret is: env:NAME, file:/PATH or config:KEY "
                                 "(never the secret itself)")
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        host = registry(self.app).add(parsed_args.uri, parsed_args.name, parsed_args.group,
                                      parsed_args.credentials)
        return COLUMNS, _row(host)


class ListHosts(Lister):
    """List the managed hosts."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--group", metavar="LABEL", help="only hosts with this label")
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        return COLUMNS, [_row(h) for h in registry(self.app).list(parsed_args.group)]


class ShowHost(ShowOne):
    """Show one managed host (by URI, name or id)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("host", help="URI, name or id")
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        host = registry(self.app).get(parsed_args.host)
        if host is None:
            raise ConfigError(f"no registered host {parsed_args.host!r}")
        return COLUMNS, _row(host)


class RemoveHost(Command):
    """Forget a managed host (its VMs and their OpenStack records are not touched)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("host", help="URI, name or id")
        return parser

    def take_action(self, parsed_args: Any) -> int:
        host = registry(self.app).remove(parsed_args.host)
        self.app.stdout.write(f"removed host {host.name} ({host.uri})\n")
        return 0
