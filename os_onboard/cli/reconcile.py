"""``os-onboard drift``, ``reconcile`` and ``history``: keep OpenStack true."""

from __future__ import annotations

import glob
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cliff.command import Command
from cliff.lister import Lister

from os_onboard.cli.adoption import add_cloud_options, cloud, current_names, host_options
from os_onboard.cli.common import state_store, with_epilog
from os_onboard.cli.remote import add_url_option, api, run_job
from os_onboard.cloud.openstack import OpenStackCloud
from os_onboard.discovery.runner import discover_hosts
from os_onboard.exceptions import CloudError, ConfigError, OnboardError
from os_onboard.mapping.model import PolicyGroup, load_mapping
from os_onboard.reconcile.loop import PassReport, watch
from os_onboard.reconcile.passes import PassResult, Stores, reconcile_pass
from os_onboard.reconcile.pending import Records
from os_onboard.reconcile.policy import ADOPT, POLICIES, Policies, parse_policies
from os_onboard.reconcile.records import adopted_servers
from os_onboard.reconcile.resident import ResidentHelpers, Reused
from os_onboard.reconcile.tolerate import Context, Tolerator
from os_onboard.serve.client import Client
from os_onboard.state.audit import AuditLog
from os_onboard.state.credentials import export_for_drivers, export_registered
from os_onboard.state.drift_queue import DriftQueue
from os_onboard.state.hosts import HostRegistry, ManagedHost
from os_onboard.state.journal import Journal
from os_onboard.state.records_cache import RecordsCache

EPILOG = """\
Level-triggered: each pass reads the hypervisors (read-only) and the records
of every adopted server, and compares. Kinds of drift: host-changed (an
out-of-band live migration), power-changed, nic-added, nic-removed,
ip-changed, disk-added, disk-removed, resized, renamed (vSphere: the VM's
name differs from the one last taken from it), vm-gone, not-adopted.

Policies: 'report' writes nothing to OpenStack and records the drift in the
audit log; 'tolerate' makes OpenStack follow the VM where that is safe:
host-changed (instance host/node, allocation, port bindings, volume
connectors), power-changed (a shutdown once it lasted --shutdown-grace),
nic-added/-removed and ip-changed (ports, VIFs, cache), disk-added/-removed
(volume managed - a vSphere VMDK recorded in place - + attached + BDM, or
detached in the records only), resized (flavor, allocation), renamed (the
display name; a rename through OpenStack is no drift, and when both sides
renamed, the hypervisor's name wins and the audit keeps the overwritten one),
vm-gone (records purged as 'unmanage' does, once the host answered twice in a
row without the VM); not-adopted
is reported under either. New NICs, disks and shapes need --mapping (the
plan's).

'adopt', for not-adopted only (--kind-policy not-adopted=adopt, or in a
group's kinds): a VM found on a managed host is adopted as 'plan' and 'apply'
would, with --mapping (its owner rules decide which VMs; a blocked plan is
reported with its reasons), under apply's lock, resumed when it stopped
halfway; a running VM whose NICs show no IP yet waits up to 60 s for its
leases. Never a server Nova booted itself (not drift at all), nor a VM
released with 'unmanage' (the operator let it go).

Per group of hosts: the mapping file's 'policies' list, first match wins, by
a shell pattern on the host's URI or hostname (a vanished VM: the host
OpenStack records); hosts no group names take --policy and --kind-policy:
  policies:
    - hosts: "qemu+ssh://hv-prod-*"
      policy: report
    - hosts: "hv-wave1-*"
      policy: tolerate
      kinds: {vm-gone: report}
Every pass's findings and actions go to the audit log ('os-onboard history').

Hosts: the URIs given; else the registered hosts ('os-onboard host add', with
--group LABEL: only those labelled so), and 'watch' follows the registry while
it runs. A 'discover' of an unregistered URI is a one-off: it changes nothing
here. With no host registered, the hosts of the newest inventory snapshot
are used, with a warning (deprecated: register them).

A policy group whose 'hosts' is 'group:LABEL' names the registered hosts
carrying that label:
  policies:
    - hosts: "group:prod"
      policy: report

examples:
  os-onboard drift
  os-onboard reconcile --policy tolerate --mapping mapping.yaml
  os-onboard reconcile --policy tolerate --kind-policy power-changed=report
  os-onboard watch --policy tolerate --kind-policy not-adopted=adopt --mapping mapping.yaml
  os-onboard history lab-vm1
"""


DEPRECATED_SNAPSHOT_HOSTS = (
    "no managed host is registered: using the hosts of the newest inventory snapshot "
    "(deprecated: a one-off 'discover' changes them; register the hosts to act on with "
    "'os-onboard host add URI')")


def _hosts(app: Any, parsed_args: Any) -> list[str]:
    """The hosts a pass reads: the URIs given, else the registered ones (of
    ``--group``), else - deprecated, with a warning - the newest snapshot's."""
    if parsed_args.uris:
        if parsed_args.group:
            raise ConfigError("--group selects registered hosts: give URIs or --group, "
                              "not both")
        return list(parsed_args.uris)
    registry = HostRegistry(state_store(app))
    registered = registry.list(parsed_args.group)
    if registered:
        export_for_drivers(registered)  # their credentials references, resolved now
        return [h.uri for h in registered]
    if parsed_args.group:
        raise ConfigError(f"no registered host has the group label {parsed_args.group!r} "
                          "('os-onboard host list')")
    _sid, inventory = state_store(app).load_snapshot()
    print(f"warning: {DEPRECATED_SNAPSHOT_HOSTS}", file=sys.stderr, flush=True)
    return [h.host.uri for h in inventory.hosts]


def _pass(app: Any, parsed_args: Any, policies: Policies | None, cause: str,
          kept: Kept | None = None, uris: list[str] | None = None) -> PassResult:
    """One pass over ``uris`` (default: :func:`_hosts`); ``kept`` is what a
    watcher reuses across passes (else made anew)."""
    inventory = discover_hosts(uris if uris is not None else _hosts(app, parsed_args))
    store = state_store(app)
    audit = AuditLog(store)
    connection = kept.connection if kept else Reused(lambda: cloud(app))

    def read_records() -> Records:
        try:
            hypervisors = connection.get().hypervisors()
            servers, others = adopted_servers(connection.get())
        except CloudError:
            connection.reset()  # e.g. Keystone restarted: authenticate again next pass
            raise
        return Records(servers, {h["node"]: h["service_host"] for h in hypervisors},
                       hypervisors, others)

    def tolerator_for(records: Records) -> Tolerator:
        ctx = _context(parsed_args, connection.get(), records.hypervisors, inventory, audit)
        ctx.run_helpers = kept.helpers.run if kept else None
        ctx.journal, ctx.state_url = Journal(store), store.url
        return Tolerator(ctx)

    return reconcile_pass(inventory, read_records,
                          Stores(DriftQueue(store), audit, RecordsCache(store)),
                          cause, policies, tolerator_for if policies else None)


@dataclass
class Kept:
    """A watcher's cloud connection and resident Nova helpers (os_onboard.reconcile.resident)."""

    connection: Reused[OpenStackCloud]
    helpers: ResidentHelpers


def _context(parsed_args: Any, connection: OpenStackCloud, hypervisors: list[dict],
             inventory: Any, audit: AuditLog) -> Context:
    options = host_options(parsed_args)
    return Context(cloud=connection, hypervisors=hypervisors, inventory=inventory,
                   mapping=load_mapping(parsed_args.mapping) if parsed_args.mapping else None,
                   nova_python=parsed_args.nova_python, nova_config=parsed_args.nova_config,
                   host_options=options, renames=current_names(options),
                   seen_since=lambda uuid, kind, after: _seen_since(audit, uuid, kind, after),
                   shutdown_grace=parsed_args.shutdown_grace)


def _policies(app: Any, parsed_args: Any) -> Policies:
    """--policy/--kind-policy, after the mapping file's host groups (``group:LABEL``
    patterns read as the registered hosts with that label)."""
    groups = load_mapping(parsed_args.mapping).policies if parsed_args.mapping else []
    if any(g.hosts.startswith(LABEL_PREFIX) for g in groups):
        groups = labelled_groups(groups, HostRegistry(state_store(app)).list())
    policies = parse_policies(parsed_args.policy, parsed_args.kind_policy, groups)
    if ADOPT in policies.default.values() and not parsed_args.mapping:
        # Found out at start, not as a failure queued and retried every pass.
        raise ConfigError("the policy not-adopted=adopt needs --mapping (owners, networks, "
                          "backends: what 'plan' uses)")
    return policies


LABEL_PREFIX = "group:"


def labelled_groups(groups: list[PolicyGroup], hosts: list[ManagedHost]) -> list[PolicyGroup]:
    """The mapping's policy groups with each ``hosts: "group:LABEL"`` replaced,
    in place (first match still wins), by one group per registered host with
    that label, its URI as an exact pattern; a label no host carries matches
    nothing (said on stderr, since it is likely a typo or a host not added yet)."""
    out: list[PolicyGroup] = []
    for group in groups:
        if not group.hosts.startswith(LABEL_PREFIX):
            out.append(group)
            continue
        label = group.hosts.removeprefix(LABEL_PREFIX)
        uris = [h.uri for h in hosts if label in h.groups]
        if not uris:
            print(f"warning: policies: no registered host has the group label {label!r}",
                  file=sys.stderr, flush=True)
        out += [group.model_copy(update={"hosts": glob.escape(uri)}) for uri in uris]
    return out


def _seen_since(audit: AuditLog, uuid: str, kind: str, after: str) -> datetime | None:
    """When the passes first saw this drift, of its entries in a row (newest
    first, back to an entry of this VM and kind that said something else)."""
    first = None
    for entry in audit.entries(uuid, limit=50):
        if entry.kind != kind:
            continue
        if entry.after != after or entry.action == "tolerated":
            break
        first = entry.at
    if first is not None and first.tzinfo is None:  # SQLite drops the zone
        first = first.replace(tzinfo=UTC)
    return first


def _common_options(parser: Any, policies: bool = True) -> Any:
    parser.add_argument("uris", nargs="*", metavar="URI",
                        help="hypervisor URIs (default: the registered hosts, "
                             "'os-onboard host list')")
    parser.add_argument("--group", metavar="LABEL",
                        help="only the registered hosts with this group label")
    if policies:
        parser.add_argument("--policy", choices=POLICIES, default="report",
                            help="for every kind of drift on hosts no 'policies' group of "
                                 "the mapping names (default: report)")
        parser.add_argument("--kind-policy", action="append", default=[],
                            metavar="KIND=POLICY",
                            help="override for one kind; repeatable (not-adopted also "
                                 "takes 'adopt')")
        parser.add_argument("--mapping", metavar="FILE",
                            help="the mapping file: its 'policies' groups (per host), and "
                                 "what records new NICs, disks and shapes (ports, volumes, "
                                 "flavors as 'plan' makes them)")
        parser.add_argument("--shutdown-grace", type=float, default=None, metavar="SECONDS",
                            help="record a shutdown once the guest stayed off this long "
                                 "(default: the hypervisor driver's - libvirt 20, 0 with "
                                 "[workarounds] handle_virt_lifecycle_events=False; "
                                 "vSphere 0: Nova's VMware driver has no lifecycle events)")
    add_cloud_options(parser)
    return with_epilog(parser, EPILOG)


COLUMNS = ("VM", "UUID", "Kind", "Recorded", "Actual", "Action", "Detail")


class Drift(Lister):
    """Show how the hypervisors differ from OpenStack's records (writes nothing)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = _common_options(super().get_parser(prog_name), policies=False)
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            return COLUMNS, _drift_job(remote, parsed_args)
        return COLUMNS, _pass(self.app, parsed_args, None, "drift command").rows


def _drift_job(remote: Client, parsed_args: Any) -> list[tuple[str, ...]]:
    """``drift --url``: a drift job of the server over registered hosts (the URIs
    given, those of --group, else all); its rows as the local command prints them."""
    hosts = list(parsed_args.uris)
    if parsed_args.group:
        if hosts:
            raise ConfigError("--group selects registered hosts: give URIs or --group, "
                              "not both")
        hosts = [h["uri"] for h in remote.pages("/v1/hosts", "hosts",
                                                {"group": parsed_args.group})]
        if not hosts:
            raise ConfigError(f"no registered host has the group label {parsed_args.group!r}")
    job = run_job(remote, "/v1/drift-checks", {"hosts": hosts} if hosts else {}, "drift")
    if job["state"] != "succeeded":
        raise ConfigError(f"drift job {job['id']} {job['state']}")
    result = job["result"]
    print(f"drift (on the server): {result['summary']}", file=sys.stderr)
    return [tuple(row[c] for c in ("vm", "uuid", "kind", "recorded", "actual", "action",
                                   "detail")) for row in result["drift"]]


class Reconcile(Lister):
    """One reconcile pass: compare, then report or tolerate each drift by policy."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        return _common_options(super().get_parser(prog_name))

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        return COLUMNS, _pass(self.app, parsed_args, _policies(self.app, parsed_args),
                              "reconcile pass").rows


class Watch(Command):
    """Reconcile continuously: on every hypervisor event, and periodically."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = _common_options(super().get_parser(prog_name))
        parser.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                            help="periodic full pass (default 60 s); events wake it sooner")
        parser.add_argument("--registry-poll", type=float, default=15.0, metavar="SECONDS",
                            help="following the registered hosts: look for hosts added or "
                                 "removed this often (default 15 s)")
        return parser

    def take_action(self, parsed_args: Any) -> int:
        policies = _policies(self.app, parsed_args)
        uris = _hosts(self.app, parsed_args)
        # Following the registry (no URIs given, some hosts registered): a host
        # added or removed while this runs is picked up within --registry-poll.
        following = not parsed_args.uris and bool(self._registered(parsed_args))
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

        kept = Kept(Reused(lambda: cloud(self.app)),
                    ResidentHelpers(parsed_args.nova_python, parsed_args.nova_config))

        def one_pass(hosts: list[str], cause: str) -> PassReport:
            if following:  # credentials references resolved at each pass (rotation)
                export_registered(HostRegistry(state_store(self.app)), hosts)
            result = _pass(self.app, parsed_args, policies, cause, kept, hosts)
            for row in result.rows:
                print(" | ".join(str(c) for c in (row[0], row[2], row[3], "->", row[4],
                                                  row[5], row[6])), flush=True)
            print(f"pass ({cause}): {result.summary()}", file=sys.stderr, flush=True)
            return PassReport(result.retry, result.recheck_in)

        try:
            while not stop.is_set():
                print(f"watching {len(uris)} host(s)"
                      + (" (the registered hosts)" if following else "")
                      + f", policy {parsed_args.policy}, full pass every "
                        f"{parsed_args.interval:.0f} s", file=sys.stderr, flush=True)
                this_round = threading.Event()
                changed: list[str] = []
                follower = threading.Thread(
                    target=self._follow, daemon=True, name="registry",
                    args=(parsed_args, uris if following else None, stop, this_round,
                          changed))
                follower.start()
                watch(uris, lambda cause, hosts=uris: one_pass(hosts, cause), this_round,
                      interval=parsed_args.interval)
                this_round.set()
                follower.join()
                if changed:
                    print(f"the registry changed: {len(changed)} host(s) now (was "
                          f"{len(uris)})", file=sys.stderr, flush=True)
                    uris = changed
        finally:
            kept.helpers.close()
        return 0

    def _registered(self, parsed_args: Any) -> list[str]:
        return [h.uri for h in HostRegistry(state_store(self.app)).list(parsed_args.group)]

    def _follow(self, parsed_args: Any, current: list[str] | None, stop: threading.Event,
                this_round: threading.Event, changed: list[str]) -> None:
        """End ``this_round`` on stop, or when the registered hosts differ from
        ``current`` (None: not following the registry), with the new ones in
        ``changed``. An emptied registry keeps the hosts watched (a pass over no
        host must not be run: nothing could be judged from it)."""
        due = time.monotonic() + parsed_args.registry_poll
        while not this_round.wait(0.5):
            if stop.is_set():
                break
            if current is None or time.monotonic() < due:
                continue
            due = time.monotonic() + parsed_args.registry_poll
            try:
                now = self._registered(parsed_args)
            except OnboardError as exc:  # the store briefly unreadable: look again later
                print(f"warning: cannot read the host registry: {exc}", file=sys.stderr,
                      flush=True)
                continue
            if now and sorted(now) != sorted(current):
                changed[:] = now
                break
            if not now:
                print("warning: no registered host left: still watching the "
                      f"{len(current)} host(s) of before", file=sys.stderr, flush=True)
        this_round.set()


class History(Lister):
    """The audit log: drift seen and what was written, newest first."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("vm", nargs="?", metavar="NAME|UUID", help="one VM only")
        parser.add_argument("--limit", type=int, default=200)
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        if parsed_args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        columns = ("At", "VM", "Kind", "Recorded", "Actual", "Cause", "Action", "Detail")
        remote = api(self.app, parsed_args)
        if remote is not None:
            query = {"limit": str(parsed_args.limit)}
            if parsed_args.vm:
                query["vm"] = parsed_args.vm
            return columns, [(e["at"][:19], e["vm_name"], e["kind"], e["before"], e["after"],
                              e["cause"], e["action"], e["detail"])
                             for e in remote.call("GET", "/v1/audit", query=query)["audit"]]
        entries = AuditLog(state_store(self.app)).entries(parsed_args.vm, parsed_args.limit)
        return (columns,
                [(e.at.isoformat(timespec="seconds"), e.vm_name, e.kind, e.before, e.after,
                  e.cause, e.action, e.detail) for e in entries])
