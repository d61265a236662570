"""``os-onboard plan``, ``apply`` and ``unmanage``: the adoption commands."""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

import yaml
from cliff.command import Command
from cliff.lister import Lister

from os_onboard.apply.release import unmanage
from os_onboard.apply.runner import Applier, ApplyOptions, apply_lock
from os_onboard.apply.steps import ApplyEnv
from os_onboard.cli.common import state_store, with_epilog
from os_onboard.cli.progress import ProgressBar
from os_onboard.cli.remote import add_url_option, api, run_job
from os_onboard.cloud.openstack import OpenStackCloud
from os_onboard.discovery.runner import discover_hosts
from os_onboard.drivers.registry import available_drivers
from os_onboard.exceptions import ConfigError, StateStoreError
from os_onboard.mapping.model import load_mapping
from os_onboard.plan.builder import build_plan, read_cloud_view
from os_onboard.plan.model import Plan
from os_onboard.plan.render import render_plan
from os_onboard.state.journal import Journal

INSTANCES_PATH_ENV = "OS_ONBOARD_INSTANCES_PATH"
CONFIG_DIRS_ENV = "OS_ONBOARD_LIBVIRT_CONFIG_DIRS"

PLAN_EPILOG = """\
The plan is made from the newest inventory snapshot (or --snapshot), the
mapping file and OpenStack's current state, and saved in the state store;
'apply' executes it. Nothing is written to OpenStack or any hypervisor here.

  + create   a record os-onboard will write
  = exists   already there (adopted earlier, or a flavor that fits)
  ! blocked  the VM gets no record at all, and the line says why: MAC or IP
             already used in Neutron, IP outside every mapped subnet, UUID
             already known to Nova, a disk no backend serves, a device Nova
             cannot represent, a host without nova-compute, no owner rule, a
             disk Cinder's manageable list lacks (backends with cross_check)

Per VM the plan also lists what Nova would change if it ever regenerates the
domain (stop/start, hard reboot, migration), so that is decided knowingly.

examples:
  os-onboard plan --mapping mapping.yaml
  os-onboard plan --mapping mapping.yaml --vm lab-vm1 --vm lab-vm2
  os-onboard plan --mapping mapping.yaml -f json > plan.json
"""

APPLY_EPILOG = """\
Executes a saved plan (the newest by default) as journaled steps: ports,
volumes (Cinder manage + attachment, in-use), the instance directory link,
the Nova records (through os-onboard's Nova-side helper), the Placement
allocation and Nova's network cache. Rerunning is a no-op for what is done
and resumes what is not (also after a crash or kill -9). A plan not yet
started is refused when OpenStack changed since it was made, and every VM is
read again from its hypervisor (read-only) before anything is written for it.

Nothing on a running guest changes. Host-side writes: the link
<instances_path>/<uuid>/disk to the legacy root disk (so a Nova rebuild boots
the same disk); see docs/hypervisor-writes.md.

examples:
  os-onboard apply
  os-onboard apply 12 --parallel 8 -f json
"""

UNMANAGE_EPILOG = """\
Releases adopted VMs from OpenStack; the VMs keep running untouched. The Nova
records are purged (never soft-deleted: Nova reaps running domains of deleted
instances), then the ports are deleted and the volumes unmanaged (marked
detached in Cinder's database, never an attachment delete that would tear
down a disk in use). Also the way to roll back a failed apply of a VM.

examples:
  os-onboard unmanage lab-vm1
  os-onboard unmanage fb86c71b-8534-4241-8547-1ef4f01f8849 --host vm
"""


def add_cloud_options(parser: Any) -> None:
    parser.add_argument("--nova-python", metavar="PATH",
                        help="Python of Nova's environment, for the Nova-side helper "
                             "(env OS_ONBOARD_NOVA_PYTHON)")
    parser.add_argument("--nova-config", action="append", default=[], metavar="FILE",
                        help="Nova configuration file, repeatable (env OS_ONBOARD_NOVA_CONFIG)")
    parser.add_argument("--instances-path", metavar="DIR",
                        default=os.environ.get(INSTANCES_PATH_ENV),
                        help="nova-compute's instances_path on the hosts "
                             f"(env {INSTANCES_PATH_ENV})")
    add_config_dir_option(parser)


def add_config_dir_option(parser: Any) -> None:
    parser.add_argument("--libvirt-config-dir", action="append", metavar="DIR",
                        help="a hypervisor host's libvirt config dir (/etc/libvirt), where the "
                             "rename map for the migrate hook lives; repeat for every host a "
                             f"VM may migrate to (env {CONFIG_DIRS_ENV}, colon-separated)")


def config_dirs(parsed_args: Any) -> list[str]:
    return parsed_args.libvirt_config_dir or [
        d for d in os.environ.get(CONFIG_DIRS_ENV, "").split(":") if d]


def host_options(parsed_args: Any) -> dict[str, Any]:
    """The drivers' settings from the command line (libvirt's, today)."""
    return {"instances_path": getattr(parsed_args, "instances_path", None),
            "libvirt_config_dirs": config_dirs(parsed_args)}


def current_names(options: dict[str, Any]) -> dict[str, str]:
    """Every adoption-capable driver's renamed disk sources (old -> current name)."""
    names: dict[str, str] = {}
    for driver in available_drivers().values():
        if driver.adoption is not None:
            names.update(driver.adoption.current_names(options))
    return names


def cloud(app: Any) -> OpenStackCloud:
    """The cloud of --os-cloud / OS_CLOUD (clouds.yaml), as the openstack CLI does."""
    return OpenStackCloud(getattr(app.options, "cloud", None) or os.environ.get("OS_CLOUD"))


class MakePlan(Command):
    """Plan the adoption of discovered VMs into OpenStack (writes nothing)."""

    auth_required = False  # under `openstack`: reads clouds.yaml itself

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--mapping", required=True, metavar="FILE",
                            help="the mapping file (owners, networks, backends, flavors)")
        parser.add_argument("--snapshot", type=int, metavar="ID",
                            help="inventory snapshot (default: the newest)")
        parser.add_argument("--vm", action="append", default=[], metavar="NAME|UUID",
                            help="plan only this VM; repeatable")
        parser.add_argument("-f", "--format", choices=["text", "json", "yaml"], default="text",
                            help="text (default, for people), or the plan document")
        parser.add_argument("--verbose-rebuild", action="store_true",
                            help="list rebuild changes for blocked and adopted VMs too")
        add_config_dir_option(parser)
        add_url_option(parser)
        return with_epilog(parser, PLAN_EPILOG)

    def take_action(self, parsed_args: Any) -> int:
        remote = api(self.app, parsed_args)
        if remote is not None:
            # The mapping as this machine reads it (errors found here, before a job);
            # the server plans with its own OpenStack credentials and saves the plan.
            mapping = load_mapping(parsed_args.mapping)
            job = run_job(remote, "/v1/plans", {
                "mapping": mapping.model_dump(mode="json"), "snapshot": parsed_args.snapshot,
                "vms": parsed_args.vm}, "plan")
            if job["state"] != "succeeded":
                raise ConfigError(f"plan job {job['id']} {job['state']}")
            plan_id = job["result"]["plan"]
            plan = Plan.model_validate(remote.call("GET", f"/v1/plans/{plan_id}")["plan"])
            if parsed_args.vm and not plan.vms:
                raise ConfigError(f"snapshot {plan.snapshot_id} has no VM named "
                                  + ", ".join(parsed_args.vm))
            self._print(plan, plan_id, parsed_args)
            print(f"saved as plan {plan_id} on the server; run 'os-onboard apply {plan_id} "
                  "--url ...' to execute it", file=sys.stderr)
            return 0
        store = state_store(self.app)
        snapshot_id, inventory = store.load_snapshot(parsed_args.snapshot)
        mapping = load_mapping(parsed_args.mapping)
        view = read_cloud_view(cloud(self.app), mapping)
        renames = current_names(host_options(parsed_args))
        plan = build_plan(inventory, snapshot_id, view, mapping,
                          only=set(parsed_args.vm) or None,
                          mapping_file=os.path.abspath(parsed_args.mapping), renames=renames)
        if parsed_args.vm and not plan.vms:
            raise ConfigError(f"snapshot {snapshot_id} has no VM named "
                              + ", ".join(parsed_args.vm))
        plan_id = Journal(store).save_plan(plan)
        self._print(plan, plan_id, parsed_args)
        print(f"saved as plan {plan_id}; run 'os-onboard apply {plan_id}' to execute it",
              file=sys.stderr)
        return 0

    @staticmethod
    def _print(plan: Plan, plan_id: int, parsed_args: Any) -> None:
        if parsed_args.format == "json":
            print(plan.model_dump_json(indent=2))
        elif parsed_args.format == "yaml":
            print(yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False))
        else:
            print(render_plan(plan, plan_id, verbose=parsed_args.verbose_rebuild))


class ApplyPlan(Lister):
    """Execute a saved plan: adopt its VMs into OpenStack, resumably."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("plan_id", nargs="?", type=int, metavar="PLAN",
                            help="plan id (default: the newest)")
        parser.add_argument("--parallel", type=int, default=4, metavar="N",
                            help="VMs worked on at once (default 4)")
        add_cloud_options(parser)
        add_url_option(parser)
        return with_epilog(parser, APPLY_EPILOG)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        columns = ("VM", "UUID", "Status", "Steps", "Detail")
        remote = api(self.app, parsed_args)
        if remote is not None:
            plan_id = parsed_args.plan_id
            if plan_id is None:  # the server's newest, as locally
                plan_id = remote.call("GET", "/v1/plans/latest")["id"]
            job = run_job(remote, "/v1/applies", {"plan": plan_id,
                                                  "parallel": parsed_args.parallel}, "apply")
            vms = job["result"].get("vms", [])
            counts = Counter(v["status"] for v in vms)
            print(f"plan {plan_id}: job {job['state']}; "
                  + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
            self._failed = job["state"] != "succeeded"
            return columns, [(v["name"], v["uuid"], v["status"], v["steps"], v["detail"])
                             for v in vms]
        store = state_store(self.app)
        journal = Journal(store)
        plan_id, plan = journal.load_plan(parsed_args.plan_id)
        options = ApplyOptions(parallel=parsed_args.parallel,
                               nova_python=parsed_args.nova_python,
                               nova_config=parsed_args.nova_config)
        env = ApplyEnv(cloud=cloud(self.app), host_options=host_options(parsed_args))
        bar = ProgressBar(f"apply {plan_id}")
        with apply_lock(store.url):
            try:
                outcomes = Applier(plan_id, plan, journal, env, options, bar.update).run()
            finally:
                bar.close()
        counts = Counter(o.status for o in outcomes)
        print(f"plan {plan_id}: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
              file=sys.stderr)
        rows = [(o.name, o.uuid, o.status, o.steps_done, o.detail) for o in outcomes]
        self._failed = counts["failed"] > 0
        return columns, rows

    def run(self, parsed_args: Any) -> int:
        self._failed = False
        code = super().run(parsed_args)
        return code or (1 if self._failed else 0)


class Unmanage(Lister):
    """Release adopted VMs from OpenStack without touching them."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("vms", nargs="+", metavar="NAME|UUID",
                            help="VM names or UUIDs (names from the newest snapshot)")
        parser.add_argument("--host", help="nova-compute host, when Nova no longer knows "
                                           "the server (cleaning up a failed apply)")
        add_cloud_options(parser)
        add_url_option(parser)
        return with_epilog(parser, UNMANAGE_EPILOG)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        columns = ("VM", "UUID", "Status", "Removed", "Kept", "Error")
        remote = api(self.app, parsed_args)
        if remote is not None:
            job = run_job(remote, "/v1/unmanages", {"vms": parsed_args.vms,
                                                    "host": parsed_args.host}, "unmanage")
            self._failed = job["state"] != "succeeded"
            return columns, [(r["name"], r["uuid"], r["status"], "\n".join(r["removed"]),
                              "\n".join(r["kept"]), r["error"])
                             for r in job["result"].get("vms", [])]
        store = state_store(self.app)
        try:
            _sid, inventory = store.load_snapshot()
            known = {vm.name: (vm.uuid, host.host.uri) for host in inventory.hosts
                     for vm in host.vms}
            known.update({uuid: (uuid, uri) for uuid, uri in known.values()})
        except StateStoreError:  # no snapshot: UUIDs only
            known = {}
        connection = cloud(self.app)
        hypervisors = {h["node"]: h["service_host"] for h in connection.hypervisors()}
        targets = [known.get(name, (name, None)) for name in parsed_args.vms]
        # Each host read once, now (read-only): where the VMs run and what they use.
        now = discover_hosts(sorted({uri for _, uri in targets if uri}))
        live = {vm.uuid: (host.host.hostname, vm, host.host.uri) for host in now.hosts
                for vm in host.vms}
        hostnames = {host.host.uri: host.host.hostname for host in now.hosts}
        rows = []
        failed = False
        with apply_lock(store.url):
            volumes = connection.volumes()  # once for all the VMs named
            for name, (uuid, uri) in zip(parsed_args.vms, targets, strict=True):
                # where it runs now, else the host the snapshot saw it on
                hostname, vm, uri = live.get(uuid, (hostnames.get(uri or ""), None, uri))
                host = parsed_args.host or hypervisors.get(hostname or "")
                result = unmanage(connection, uuid, host=host, host_uri=uri,
                                  host_options=host_options(parsed_args),
                                  nova_python=parsed_args.nova_python,
                                  nova_config=parsed_args.nova_config, live_vm=vm,
                                  volumes=volumes)
                if not result.error:
                    Journal(store).forget_vm(uuid)
                failed |= bool(result.error)
                rows.append((name, uuid, "failed" if result.error else "released",
                             "\n".join(result.removed), "\n".join(result.kept),
                             result.error))
        self._failed = failed
        return columns, rows

    def run(self, parsed_args: Any) -> int:
        self._failed = False
        code = super().run(parsed_args)
        return code or (1 if self._failed else 0)
