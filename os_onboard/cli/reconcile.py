"""``os-onboard drift``, ``reconcile`` and ``history``: keep OpenStack true."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from cliff.command import Command
from cliff.lister import Lister

from os_onboard.cli.adoption import add_cloud_options, cloud
from os_onboard.cli.common import state_store, with_epilog
from os_onboard.discovery.runner import discover_hosts
from os_onboard.exceptions import ConfigError
from os_onboard.reconcile.drift import find_drift
from os_onboard.reconcile.loop import watch
from os_onboard.reconcile.records import adopted_servers
from os_onboard.reconcile.tolerate import POLICIES, Tolerator, parse_policies
from os_onboard.state.journal import AuditEntry, AuditLog

EPILOG = """\
Level-triggered: each pass reads the hypervisors (read-only) and the records
of every adopted server, and compares. Kinds of drift: host-changed (an
out-of-band live migration), power-changed, nic-added, nic-removed,
ip-changed, disk-removed, resized, vm-gone, not-adopted.

Policies: 'report' writes nothing to OpenStack and records the drift in the
audit log; 'tolerate' makes OpenStack follow the VM where that is safe
(today: host-changed - Nova instance host/node, Placement allocation, port
bindings - and pause/unpause), and reports the rest with the reason.
Every pass's findings and actions go to the audit log ('os-onboard history').

Hosts: the URIs given, else those of the newest inventory snapshot.

examples:
  os-onboard drift
  os-onboard reconcile --policy tolerate
  os-onboard reconcile --policy tolerate --kind-policy power-changed=report
  os-onboard history lab-vm1
"""


def _hosts(app: Any, uris: list[str]) -> list[str]:
    if uris:
        return uris
    _sid, inventory = state_store(app).load_snapshot()
    return [h.host.uri for h in inventory.hosts]


def _pass(app: Any, parsed_args: Any, policies: dict | None, cause: str) -> list[tuple]:
    connection = cloud(app)
    inventory = discover_hosts(_hosts(app, parsed_args.uris))
    hypervisors = connection.hypervisors()
    hosts = {h["node"]: h["service_host"] for h in hypervisors}
    drifts = find_drift(inventory, adopted_servers(connection), hosts)
    audit = AuditLog(state_store(app))
    rows = []
    tolerator = Tolerator(connection, hypervisors, parsed_args.nova_python,
                          parsed_args.nova_config) if policies else None
    for drift in drifts:
        if tolerator is None:
            action, detail = "reported", "drift: nothing written"
        else:
            outcome = tolerator.apply(drift, policies[drift.kind])
            action, detail = outcome.action, outcome.detail
        audit.add(AuditEntry(datetime.now(UTC), drift.uuid, drift.name, drift.kind.value,
                             drift.before, drift.after, cause, action, detail))
        rows.append((drift.name, drift.uuid, drift.kind.value, drift.before, drift.after,
                     action, detail))
    return rows


def _common_options(parser: Any, policies: bool = True) -> Any:
    parser.add_argument("uris", nargs="*", metavar="URI",
                        help="hypervisor URIs (default: the newest snapshot's hosts)")
    if policies:
        parser.add_argument("--policy", choices=POLICIES, default="report",
                            help="for every kind of drift (default: report)")
        parser.add_argument("--kind-policy", action="append", default=[],
                            metavar="KIND=POLICY", help="override for one kind; repeatable")
    add_cloud_options(parser)
    return with_epilog(parser, EPILOG)


COLUMNS = ("VM", "UUID", "Kind", "Recorded", "Actual", "Action", "Detail")


class Drift(Lister):
    """Show how the hypervisors differ from OpenStack's records (writes nothing)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        return _common_options(super().get_parser(prog_name), policies=False)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        return COLUMNS, _pass(self.app, parsed_args, None, "drift command")


class Reconcile(Lister):
    """One reconcile pass: compare, then report or tolerate each drift by policy."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        return _common_options(super().get_parser(prog_name))

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        policies = parse_policies(parsed_args.policy, parsed_args.kind_policy)
        return COLUMNS, _pass(self.app, parsed_args, policies, "reconcile pass")


class Watch(Command):
    """Reconcile continuously: on every hypervisor event, and periodically."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = _common_options(super().get_parser(prog_name))
        parser.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                            help="periodic full pass (default 60 s); events wake it sooner")
        return parser

    def take_action(self, parsed_args: Any) -> int:
        policies = parse_policies(parsed_args.policy, parsed_args.kind_policy)
        uris = _hosts(self.app, parsed_args.uris)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

        def one_pass(cause: str) -> None:
            for row in _pass(self.app, parsed_args, policies, cause):
                print(" | ".join(str(c) for c in (row[0], row[2], row[3], "->", row[4],
                                                  row[5], row[6])), flush=True)

        print(f"watching {len(uris)} host(s), policy {parsed_args.policy}, "
              f"full pass every {parsed_args.interval:.0f} s", file=sys.stderr, flush=True)
        watch(uris, one_pass, stop, interval=parsed_args.interval)
        return 0


class History(Lister):
    """The audit log: drift seen and what was written, newest first."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("vm", nargs="?", metavar="NAME|UUID", help="one VM only")
        parser.add_argument("--limit", type=int, default=200)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        if parsed_args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        entries = AuditLog(state_store(self.app)).entries(parsed_args.vm, parsed_args.limit)
        return (("At", "VM", "Kind", "Recorded", "Actual", "Cause", "Action", "Detail"),
                [(e.at.isoformat(timespec="seconds"), e.vm_name, e.kind, e.before, e.after,
                  e.cause, e.action, e.detail) for e in entries])
