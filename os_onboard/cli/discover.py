"""``os-onboard discover``: read hypervisors (read-only) and save an inventory snapshot."""

from __future__ import annotations

import gc
import io
import logging
import sys
from pathlib import Path
from typing import Any

from cliff.lister import Lister

from os_onboard.cli.common import add_view_option, state_store, with_epilog
from os_onboard.cli.progress import ProgressBar
from os_onboard.cli.remote import add_url_option, api, only_vm_view, run_job, snapshot_inventory
from os_onboard.cli.views import VIEWS
from os_onboard.discovery.runner import RunOptions, discover_hosts
from os_onboard.discovery.targets import load_hosts_file
from os_onboard.drivers.base import DiscoveryOptions
from os_onboard.exceptions import ConfigError
from os_onboard.inventory import dump_inventory
from os_onboard.serve.client import Client

LOG = logging.getLogger(__name__)

EPILOG = """\
Every connection is read-only (libvirt openReadOnly): discovery cannot change
anything on a host. A host that is unreachable or slower than --timeout is
reported and the others go on. Per-VM problems (malformed XML, a domain that
vanished while being read) are listed with --by problem.

URIs are libvirt URIs: qemu:///system, qemu+ssh://root@hv1/system,
qemu+tls://hv2/system, test:///default.

examples:
  os-onboard discover qemu:///system
  os-onboard discover --hosts hosts.yaml -f json > inventory.json
  os-onboard discover qemu+ssh://root@hv1/system --by storage
  os-onboard discover test:///default --no-save -f yaml
"""


class Discover(Lister):
    """Discover VMs, disks and NICs on hypervisor hosts, without changing anything."""

    # Under `openstack`, no cloud login is needed: hypervisors are read directly.
    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("uris", nargs="*", metavar="URI", help="hypervisor URI to read")
        parser.add_argument("--hosts", metavar="FILE",
                            help="YAML file listing host URIs (under 'hosts:')")
        add_view_option(parser)
        parser.add_argument("--workers", type=int, default=16, metavar="N",
                            help="hosts read at the same time (default: 16)")
        parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                            help="give up on a host after this long (default: 60)")
        parser.add_argument("--address-source", action="append", choices=["lease", "arp"],
                            metavar="SOURCE",
                            help="where guest IPs come from: 'lease' (default; DHCP leases of "
                                 "libvirt networks) and/or 'arp' (host neighbour table); "
                                 "repeat to use several")
        parser.add_argument("--no-storage", action="store_true",
                            help="skip storage pools, volumes and host block devices")
        parser.add_argument("--no-save", action="store_true",
                            help="do not save the inventory in the state store")
        parser.add_argument("--output-file", metavar="FILE",
                            help="also write the full inventory document (JSON) to FILE")
        add_url_option(parser)
        return with_epilog(parser, EPILOG)

    def produce_output(self, parsed_args: Any, column_names: Any, data: Any) -> int:
        """cliff's output through a buffer: its formatters write token by token
        (json.dump: ~30 writes per disk), each a system call when stdout is
        unbuffered (PYTHONUNBUFFERED, containers): 3.1 million for 10,000 VMs."""
        out = self.app.stdout
        binary = getattr(out, "buffer", None) if isinstance(out, io.TextIOWrapper) else None
        if binary is None:  # a stream the caller gave: used as it is
            return int(super().produce_output(parsed_args, column_names, data))
        out.flush()
        buffered = io.TextIOWrapper(binary, encoding=out.encoding, errors=out.errors)
        buffered._CHUNK_SIZE = 1 << 16  # type: ignore[attr-defined]  # bytes per write
        self.app.stdout = buffered
        try:
            return int(super().produce_output(parsed_args, column_names, data))
        finally:
            self.app.stdout = out
            try:
                buffered.flush()
            finally:
                buffered.detach()  # the binary stream stays open: it is stdout's

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        uris = list(parsed_args.uris)
        if parsed_args.hosts:
            uris += load_hosts_file(parsed_args.hosts)
        remote = api(self.app, parsed_args)
        if remote is not None:
            return self._through(remote, uris, parsed_args)
        if not uris:
            raise ConfigError("name at least one host URI, or a hosts file with --hosts")
        if parsed_args.workers < 1 or parsed_args.timeout <= 0:
            raise ConfigError("--workers must be at least 1 and --timeout positive")
        options = RunOptions(
            workers=parsed_args.workers,
            host_timeout=parsed_args.timeout,
            discovery=DiscoveryOptions(
                address_sources=tuple(parsed_args.address_source or ("lease",)),
                storage=not parsed_args.no_storage,
            ),
        )
        bar = ProgressBar("discover")
        try:
            inventory = discover_hosts(
                uris, options,
                progress=lambda host, done, total: bar.update(done, total, host.host.uri))
        finally:
            bar.close()
        # The inventory lives until the command exits: keep the cyclic GC from
        # rescanning it each time rendering allocates (10,000 VMs, -f json:
        # ~3 CPU-s of collections otherwise).
        gc.freeze()
        for problem in inventory.problems:
            LOG.warning("%s %s%s: %s", problem.severity.value, problem.host,
                        f" {problem.vm}" if problem.vm else "", problem.message)
        if parsed_args.output_file:
            Path(parsed_args.output_file).write_text(dump_inventory(inventory))
        vms = sum(len(h.vms) for h in inventory.hosts)
        summary = (f"{len(inventory.hosts)} host(s), {vms} VM(s), "
                   f"{len(inventory.problems)} problem(s)")
        if not parsed_args.no_save:
            snapshot = state_store(self.app).save_snapshot(inventory)
            summary = f"inventory snapshot {snapshot}: {summary}"
        print(summary, file=sys.stderr)
        return VIEWS[parsed_args.by](inventory)

    def _through(self, remote: Client, uris: list[str], parsed_args: Any) -> tuple[Any, Any]:
        """A discovery job of the server: registered hosts only (the URIs or names
        given, else all of them); the snapshot it saved, VM by VM."""
        if parsed_args.no_save or parsed_args.output_file:
            raise ConfigError("--no-save and --output-file are local only: a discovery job "
                              "saves a snapshot on the server")
        only_vm_view(parsed_args.by)
        body = {"hosts": uris} if uris else {}
        job = run_job(remote, "/v1/discoveries", body, "discovery")
        if job["state"] != "succeeded":
            raise ConfigError(f"discovery job {job['id']} {job['state']}")
        result = job["result"]
        print(f"inventory snapshot {result['snapshot']} (on the server): {result['hosts']} "
              f"host(s), {result['vms']} VM(s), {result['problems']} problem(s)",
              file=sys.stderr)
        _, inventory = snapshot_inventory(remote, result["snapshot"])
        return VIEWS[parsed_args.by](inventory)
