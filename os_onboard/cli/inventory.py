"""``os-onboard inventory list|show`` and ``os-onboard schema``."""

from __future__ import annotations

import json
from typing import Any

from cliff.command import Command
from cliff.lister import Lister

from os_onboard.cli.common import add_view_option, state_store
from os_onboard.cli.views import VIEWS
from os_onboard.inventory.models import Inventory


class ListSnapshots(Lister):
    """List the inventory snapshots saved by 'discover', newest first."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--limit", type=int, default=50, help="at most this many")
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        snapshots = state_store(self.app).list_snapshots(parsed_args.limit)
        return (("ID", "Created", "Hosts", "VMs", "Problems"),
                [(s.id, s.created_at.isoformat(), s.hosts, s.vms, s.problems)
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
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        _, inventory = state_store(self.app).load_snapshot(parsed_args.snapshot)
        return VIEWS[parsed_args.by](inventory)


class Schema(Command):
    """Print the JSON schema of the inventory document."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def take_action(self, parsed_args: Any) -> int:
        print(json.dumps(Inventory.model_json_schema(), indent=2))
        return 0
