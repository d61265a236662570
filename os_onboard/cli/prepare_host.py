"""``os-onboard prepare-host``: register a hypervisor with Nova before nova-compute starts."""

from __future__ import annotations

from typing import Any

from cliff.show import ShowOne

from os_onboard.cli.common import with_epilog
from os_onboard.cloud.nova_helper import run_helper

EPILOG = """\
A brand-new nova-compute refuses to start on a hypervisor that already runs
domains ("My hypervisor has existing instances, but I appear to be a new
service..."). This command writes what Nova expects to find from an earlier
start: the nova-compute Service row in the host's cell, and the node identity
file <state-path>/compute_id. Run it once per legacy host, then start
nova-compute there: it creates the compute node and ignores the domains it
has no instance for. Nothing on the hypervisor is touched. Idempotent.

It runs os-onboard's Nova-side helper (extras/nova, installed beside Nova)
with Nova's Python and configuration, where Nova's databases are reachable.

example:
  os-onboard prepare-host --nova-python /opt/nova/bin/python \\
      --nova-config /etc/nova/nova.conf --host hv01 --state-path /var/lib/nova
"""


class PrepareHost(ShowOne):
    """Register a hypervisor host with Nova so its first nova-compute start is safe."""

    auth_required = False  # under `openstack`: talks to Nova's databases, not its API

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--host", required=True,
                            help="the host name nova-compute will use ([DEFAULT] host)")
        parser.add_argument("--state-path", required=True, metavar="DIR",
                            help="nova-compute's [DEFAULT] state_path on that host")
        parser.add_argument("--cell", help="cell name (default: the only non-cell0 cell)")
        parser.add_argument("--nova-python", metavar="PATH",
                            help="Python of Nova's environment (env OS_ONBOARD_NOVA_PYTHON)")
        parser.add_argument("--nova-config", action="append", default=[], metavar="FILE",
                            help="Nova configuration file, repeatable "
                                 "(env OS_ONBOARD_NOVA_CONFIG, colon-separated)")
        return with_epilog(parser, EPILOG)

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        args = ["--host", parsed_args.host, "--state-path", parsed_args.state_path]
        if parsed_args.cell:
            args += ["--cell", parsed_args.cell]
        result = run_helper("prepare_host", args, parsed_args.nova_python,
                            parsed_args.nova_config)
        keys = ("host", "cell", "service_id", "service_version", "service_created",
                "compute_id", "compute_id_created")
        return keys, tuple(result.get(k) for k in keys)
