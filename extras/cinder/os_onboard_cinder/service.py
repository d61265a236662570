"""Start Cinder's code the way its services do, and run one command over JSON.

Every command reads a JSON list of items on stdin and prints one JSON result
per item; a failed item gets ``{"id": …, "error": "<Type>: <message>"}`` and
the others still run (the caller reports per volume).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

#: finish(item, cinder) -> result; ``cinder`` holds the modules started here
Handler = Callable[[dict, Any], dict]


def run(prog: str, description: str, handler: Handler, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config-file", action="append", required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cinder = start(args.config_file)
    results = []
    for item in json.load(sys.stdin):
        try:
            results.append(handler(item, cinder))
        except Exception as exc:  # reported per item
            results.append({"id": item.get("id"), "error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(results))
    return 0


def start(config_files: list[str]) -> SimpleNamespace:
    from cinder import objects

    objects.register_all()  # before any other cinder import: they use objects.* at import
    from cinder import context, db, quota, rpc
    from cinder.common import config  # noqa: F401  (registers options)
    from cinder.transfer import api as transfer_api
    from cinder.volume import volume_types
    from oslo_config import cfg

    cfg.CONF([a for f in config_files for a in ("--config-file", f)], project="cinder")
    rpc.init(cfg.CONF)
    return SimpleNamespace(objects=objects, context=context, db=db, quotas=quota.QUOTAS,
                           transfers=transfer_api.API(), volume_types=volume_types,
                           conf=cfg.CONF)
