"""``os-onboard host add|list|show|remove``: the registry of managed hosts.

Local (the state store) by default; with ``--url`` (or ``$OS_ONBOARD_URL``)
through an ``os-onboard serve`` and its API, with the user's Keystone token
(:mod:`os_onboard.cli.remote`)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from cliff.command import Command
from cliff.lister import Lister
from cliff.show import ShowOne

from os_onboard.cli.common import state_store
from os_onboard.cli.remote import add_url_option, api
from os_onboard.exceptions import ConfigError
from os_onboard.serve.client import Client
from os_onboard.state.hosts import HostRegistry, ManagedHost

COLUMNS = ("ID", "Name", "URI", "Groups", "Credentials")


def _row(host: ManagedHost) -> tuple[Any, ...]:
    return (host.id, host.name, host.uri, ",".join(host.groups), host.credentials_ref)


def registry(app: Any) -> HostRegistry:
    return HostRegistry(state_store(app))


def _api_row(host: dict[str, Any]) -> tuple[Any, ...]:
    return (host["id"], host["name"], host["uri"], ",".join(host["groups"]),
            host["credentials_ref"])


def _api_find(client: Client, ident: str) -> dict[str, Any]:
    """A host by id or name (path), or by URI (the list's filter)."""
    if "/" in ident:
        found = client.call("GET", "/v1/hosts", query={"uri": ident})["hosts"]
        if not found:
            raise ConfigError(f"no registered host {ident!r}")
        return found[0]
    return client.call("GET", f"/v1/hosts/{urllib.parse.quote(ident, safe='')}")["host"]


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
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            body = {"uri": parsed_args.uri, "groups": parsed_args.group,
                    "credentials_ref": parsed_args.credentials}
            if parsed_args.name:
                body["name"] = parsed_args.name
            return COLUMNS, _api_row(remote.call("POST", "/v1/hosts", body)["host"])
        host = registry(self.app).add(parsed_args.uri, parsed_args.name, parsed_args.group,
                                      parsed_args.credentials)
        return COLUMNS, _row(host)


class ListHosts(Lister):
    """List the managed hosts."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--group", metavar="LABEL", help="only hosts with this label")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            rows, query = [], {"limit": "1000"}
            if parsed_args.group:
                query["group"] = parsed_args.group
            while True:
                page = remote.call("GET", "/v1/hosts", query=query)
                rows += [_api_row(h) for h in page["hosts"]]
                if "next" not in page:
                    return COLUMNS, rows
                query["marker"] = str(page["hosts"][-1]["id"])
        return COLUMNS, [_row(h) for h in registry(self.app).list(parsed_args.group)]


class ShowHost(ShowOne):
    """Show one managed host (by URI, name or id)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("host", help="URI, name or id")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            return COLUMNS, _api_row(_api_find(remote, parsed_args.host))
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
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> int:
        remote = api(self.app, parsed_args)
        if remote is not None:
            found = _api_find(remote, parsed_args.host)
            remote.call("DELETE", f"/v1/hosts/{found['id']}")
            self.app.stdout.write(f"removed host {found['name']} ({found['uri']})\n")
            return 0
        host = registry(self.app).remove(parsed_args.host)
        self.app.stdout.write(f"removed host {host.name} ({host.uri})\n")
        return 0


class CheckHosts(Lister):
    """Check that each managed host's credentials reference resolves here
    (the secret is read, never shown)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("hosts", nargs="*", metavar="HOST",
                            help="URI, name or id (default: every registered host)")
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        from os_onboard.state.credentials import PASSWORD_VARIABLES, problem

        reg = registry(self.app)
        hosts = reg.list() if not parsed_args.hosts else [
            reg.get(h) or _missing(h) for h in parsed_args.hosts]
        rows = []
        for host in hosts:
            why = problem(host.credentials_ref)
            used = PASSWORD_VARIABLES.get(host.uri.partition("://")[0])
            if not host.credentials_ref:
                state = "none"
            elif why:
                state = why
            else:
                state = (f"resolves (given to the driver as {used})" if used else
                         "resolves (not used: this driver logs in its own way, e.g. SSH keys)")
            rows.append((host.name, host.uri, host.credentials_ref, state))
        self._bad = any(r[3] not in ("none",) and not r[3].startswith("resolves") for r in rows)
        return ("Name", "URI", "Credentials", "Here"), rows

    def run(self, parsed_args: Any) -> int:
        self._bad = False
        code = super().run(parsed_args)
        return code or (1 if self._bad else 0)


def _missing(ident: str) -> ManagedHost:
    raise ConfigError(f"no registered host {ident!r}")
