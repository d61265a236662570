"""``os-onboard inventory list|show`` and ``os-onboard schema``."""

from __future__ import annotations

import json
from typing import Any

from cliff.command import Command
from cliff.lister import Lister

from os_onboard.cli.common import add_view_option, state_store
from os_onboard.cli.remote import add_url_option, api, only_vm_view, snapshot_inventory
from os_onboard.cli.views import VIEWS
from os_onboard.inventory.models import Inventory


class ListSnapshots(Lister):
    """List the inventory snapshots saved by 'discover', newest first."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--limit", type=int, default=50, help="at most this many")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        columns = ("ID", "Created", "Hosts", "VMs", "Problems")
        remote = api(self.app, parsed_args)
        if remote is not None:
            found = remote.call("GET", "/v1/snapshots",
                                query={"limit": str(parsed_args.limit)})["snapshots"]
            return columns, [(s["id"], s["created_at"], s["hosts"], s["vms"], s["problems"])
                             for s in found]
        snapshots = state_store(self.app).list_snapshots(parsed_args.limit)
        return (columns, [(s.id, s.created_at.isoformat(), s.hosts, s.vms, s.problems)
                          for s in snapshots])


class ShowInventory(Lister):
    """Show a saved inventory snapshot (the newest by default)."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--snapshot", type=int, metavar="ID",
                            help="snapshot id from 'inventory list' (default: newest)")
        add_view_option(parser)
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            only_vm_view(parsed_args.by)
            _, inventory = snapshot_inventory(remote, parsed_args.snapshot)
        else:
            _, inventory = state_store(self.app).load_snapshot(parsed_args.snapshot)
        return VIEWS[parsed_args.by](inventory)


class Schema(Command):
    """Print the JSON schema of the inventory document."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def take_action(self, parsed_args: Any) -> int:
        print(json.dumps(Inventory.model_json_schema(), indent=2))
        return 0
