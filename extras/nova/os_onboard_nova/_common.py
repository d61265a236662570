"""What every helper command shares: Nova's configuration, the admin context, cells.

Nova's imports are deferred so that ``--help`` works anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("--config-file", action="append", required=True,
                   help="nova.conf with the API and cell database connections")
    return p


def boot(config_files: list[str]) -> tuple[Any, Any, Any]:
    """Load Nova's config and objects; return (CONF, context module, objects module)."""
    from nova import config, context, objects

    config.parse_args(["os_onboard_nova"] + [a for f in config_files
                                              for a in ("--config-file", f)])
    objects.register_all()
    return config.CONF, context, objects


def cell_for_host(ctxt: Any, objects: Any, host: str) -> Any:
    """The cell of a compute host (its host mapping), else the only real cell."""
    from nova import exception

    try:
        return objects.HostMapping.get_by_host(ctxt, host).cell_mapping
    except exception.HostMappingNotFound:
        cells = [c for c in objects.CellMappingList.get_all(ctxt) if not c.is_cell0()]
        if len(cells) != 1:
            raise RuntimeError(f"host {host} is not mapped to a cell; run "
                               "'nova-manage cell_v2 discover_hosts'") from None
        return cells[0]


def _batches() -> Any:
    """The JSON lists on stdin: one per line (a caller feeding batch after batch
    to one process), or one document over several lines."""
    first = sys.stdin.readline()
    try:
        yield json.loads(first)
    except json.JSONDecodeError:
        yield json.loads(first + sys.stdin.read())
        return
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


def run_batch(handler: Callable[..., dict], args: argparse.Namespace,
              workers: int = 1, prepare: Callable[[list[dict]], Any] | None = None) -> int:
    """Read JSON lists of items on stdin, handle each item, print one JSON list per list.

    Each list is answered on one line as soon as it is done (flushed), so a
    caller may keep one process - and Nova's seconds of imports - for many
    batches, writing the next list when it likes; EOF ends the process.
    One item's failure does not stop the others: its result is
    ``{"uuid": …, "error": "…"}`` and the exit status stays 0, so the caller
    journals every VM's outcome. ``workers`` > 1 handles items in threads
    (for handlers that mostly wait on other services' APIs). With
    ``prepare``, ``handler(item, prepare(items))``: what a whole list needs
    is read once (a failed prepare fails the process: nothing was written).
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(item: dict, prepared: Any) -> dict:
        try:
            return handler(item) if prepare is None else handler(item, prepared)
        except Exception as exc:  # the caller journals it per VM
            return {"uuid": item.get("uuid"), "error": f"{type(exc).__name__}: {exc}"}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for items in _batches():
            prepared = prepare(items) if prepare is not None else None
            results = list(pool.map(lambda item, p=prepared: one(item, p), items))
            print(json.dumps(results), flush=True)
    return 0


def serve(prog: str, doc: str, handler: Callable[..., dict], argv: list[str] | None,
          workers: int = 1, prepare: Callable[..., Any] | None = None) -> int:
    """The whole ``main`` of a batch helper: config, Nova's objects, one item at a time.

    ``handler(item, conf, context, objects)`` handles one item; with
    ``prepare(items, conf, context, objects)``, its result is the handler's
    fifth argument.
    """
    args = parser(prog, doc).parse_args(sys.argv[1:] if argv is None else argv)
    conf, context, objects = boot(args.config_file)
    if prepare is None:
        return run_batch(lambda item: handler(item, conf, context, objects), args, workers)
    return run_batch(lambda item, prepared: handler(item, conf, context, objects, prepared),
                     args, workers,
                     prepare=lambda items: prepare(items, conf, context, objects))
