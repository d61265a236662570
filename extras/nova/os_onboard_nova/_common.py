"""What every helper command shares: Nova's configuration, the admin context, cells.

Nova's imports are deferred so that ``--help`` works anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Where failed items' tracebacks go (default: beside os-onboard's state store).
LOG_ENV = "OS_ONBOARD_NOVA_LOG"


class Refusal(RuntimeError):
    """A failure whose message says all the operator needs: no traceback logged."""


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


def owner_context(context: Any, item: dict) -> Any:
    """An admin context acting for the item's owner, as Nova's API writes.

    Admin, so reads are not limited to the owner's project; with the owner's
    ids, because what Nova creates for "the context's project" (the default
    security group of ``instance_create``) must be the owner's, never a
    project-less one (see ``default_group``).
    """
    if not item.get("project_id") or not item.get("user_id"):
        raise ValueError(f"item {item.get('uuid')} has no project_id or user_id: Nova's "
                         "records are written for their owner")
    return context.RequestContext(user_id=item["user_id"], project_id=item["project_id"],
                                  is_admin=True, read_deleted="no", overwrite=False)


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


def log_path() -> Path:
    """``$OS_ONBOARD_NOVA_LOG``, else ``nova-helper.log`` in os-onboard's state
    directory (``$XDG_STATE_HOME/os-onboard``): the helper runs as the operator."""
    if os.environ.get(LOG_ENV):
        return Path(os.environ[LOG_ENV])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "os-onboard" / "nova-helper.log"


_log_lock = threading.Lock()


def log_failure(item: dict, text: str) -> str | None:
    """Append a failed item's traceback to :func:`log_path`; the path, or None
    when it cannot be written (the traceback then goes to stderr)."""
    path = log_path()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    entry = (f"{stamp} {Path(sys.argv[0]).stem or 'os_onboard_nova'} pid {os.getpid()} "
             f"item {item.get('uuid')}:\n{text.rstrip()}\n\n")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _log_lock:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                fh.write(entry)
        return str(path)
    except OSError:
        print(entry, file=sys.stderr, flush=True)
        return None


def failure(item: dict, exc: Exception) -> dict:
    """One item's failed result: the error on one line (the caller journals it)
    pointing at the logged traceback, which the result carries too."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, Refusal):
        return {"uuid": item.get("uuid"), "error": error}
    text = "".join(traceback.format_exception(exc))
    logged = log_failure(item, text)
    if logged:
        error += f" (traceback in {logged})"
    return {"uuid": item.get("uuid"), "error": error, "traceback": text}


def run_batch(handler: Callable[..., dict], args: argparse.Namespace,
              workers: int = 1, prepare: Callable[[list[dict]], Any] | None = None) -> int:
    """Read JSON lists of items on stdin, handle each item, print one JSON list per list.

    Each list is answered on one line as soon as it is done (flushed), so a
    caller may keep one process - and Nova's seconds of imports - for many
    batches, writing the next list when it likes; EOF ends the process.
    One item's failure does not stop the others: its result is
    ``{"uuid": …, "error": "…", "traceback": "…"}`` (see :func:`failure`) and
    the exit status stays 0, so the caller journals every VM's outcome.
    ``workers`` > 1 handles items in threads (for handlers that mostly wait on
    other services' APIs). With ``prepare``, ``handler(item, prepare(items))``:
    what a whole list needs is read once (a failed prepare fails the process:
    nothing was written).
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(item: dict, prepared: Any) -> dict:
        try:
            return handler(item) if prepare is None else handler(item, prepared)
        except Exception as exc:  # the caller journals it per VM
            return failure(item, exc)

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
