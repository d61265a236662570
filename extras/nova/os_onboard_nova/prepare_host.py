"""Register a hypervisor host with Nova *before* its nova-compute first starts.

A brand-new nova-compute refuses to start on a hypervisor that already runs
domains (``ComputeManager._sanity_check_new_host``: "My hypervisor has
existing instances, but I appear to be a new service…"). That check runs only
when no Service row exists for the host. Pre-creating the ``nova-compute``
Service row in the host's cell and the node identity file
(``<state_path>/compute_id``, which Nova requires once a Service row of the
current version exists) makes the first start an ordinary restart: Nova then
creates the ComputeNode with that UUID and ignores domains it has no
instance record for. Nothing on the hypervisor is touched.

Idempotent: an existing Service row or identity file is kept.

    python -m os_onboard_nova.prepare_host --config-file nova.conf \\
        --host HOST --state-path /var/lib/nova [--cell cell1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="os_onboard_nova.prepare_host",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", action="append", required=True,
                        help="nova.conf with the API and cell database connections")
    parser.add_argument("--host", required=True, help="nova-compute's [DEFAULT] host")
    parser.add_argument("--state-path", required=True,
                        help="nova-compute's [DEFAULT] state_path on that host")
    parser.add_argument("--cell", help="cell name (default: the only non-cell0 cell)")
    return parser.parse_args(argv)


def _cell(ctxt, objects, name: str | None):
    cells = [c for c in objects.CellMappingList.get_all(ctxt) if not c.is_cell0()]
    if name:
        cells = [c for c in cells if c.name == name]
    if len(cells) != 1:
        names = ", ".join(c.name or c.uuid for c in cells) or "none"
        raise SystemExit(f"prepare-host: need exactly one cell (found: {names}); use --cell")
    return cells[0]


def prepare(args: argparse.Namespace) -> dict:
    # Nova's imports are deferred so that --help works anywhere.
    from nova import config, context, objects
    from nova.virt import node

    config.parse_args(["os_onboard_nova"] + [a for f in args.config_file
                                              for a in ("--config-file", f)])
    config.CONF.set_override("state_path", args.state_path)
    objects.register_all()
    ctxt = context.get_admin_context()
    cell = _cell(ctxt, objects, args.cell)
    result = {"host": args.host, "cell": cell.name, "service_created": False,
              "compute_id_created": False}
    with context.target_cell(ctxt, cell) as cctxt:
        service = objects.Service.get_by_host_and_binary(cctxt, args.host, "nova-compute")
        if service is None:
            service = objects.Service(cctxt, host=args.host, binary="nova-compute",
                                      topic="compute", report_count=0, disabled=False)
            service.create()
            result["service_created"] = True
        result["service_id"] = service.id
        result["service_version"] = service.version
    identity = os.path.join(args.state_path, node.COMPUTE_ID_FILE)
    if os.path.exists(identity):
        with open(identity) as fh:
            result["compute_id"] = fh.read().strip()
    else:
        os.makedirs(args.state_path, exist_ok=True)
        from oslo_utils import uuidutils

        result["compute_id"] = uuidutils.generate_uuid()
        node.write_local_node_uuid(result["compute_id"])
        result["compute_id_created"] = True
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        result = prepare(args)
    except SystemExit:
        raise
    except Exception as exc:  # one line for the caller; Nova's own errors included
        print(f"prepare-host: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
