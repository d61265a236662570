"""``os-onboard job list|show|cancel``: the jobs of ``os-onboard serve``.

Jobs live in the state store, so these work on the server's store directly
(``--state-url``, e.g. its MariaDB) or through its API (``--url``).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from cliff.lister import Lister
from cliff.show import ShowOne

from os_onboard.cli.common import state_store
from os_onboard.cli.remote import add_url_option, api
from os_onboard.exceptions import ConfigError

if TYPE_CHECKING:
    from os_onboard.state.jobs import JobStore

COLUMNS = ("ID", "Kind", "State", "Progress", "Owner", "Attempts", "Created", "Created by")
SHOWN = (*COLUMNS, "Cancel requested", "Error", "Params", "Per item", "Result")


def _progress(job: dict[str, Any]) -> str:
    progress = job["progress"]
    if "total" in progress:
        return f"{progress.get('done', 0)}/{progress['total']}"
    return str(progress.get("step", ""))


def _row(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["id"], job["kind"], job["state"], _progress(job), job["owner"],
            job["attempts"], job["created_at"], job["created_by"])


def _shown(job: dict[str, Any]) -> tuple[Any, ...]:
    items = job["progress"].get("vms") or job["progress"].get("hosts") or {}
    return (*_row(job), job["cancel_requested"], job["error"],
            json.dumps(job["params"], sort_keys=True)[:2000],
            "\n".join(f"{k}: {v}" for k, v in items.items()),
            json.dumps(job["result"], sort_keys=True)[:4000])


def _jobs(app: Any) -> JobStore:
    """The local store's jobs (imported here: the module is loaded by every command,
    cli/main.py registers it)."""
    from os_onboard.state.jobs import JobStore

    return JobStore(state_store(app))


def _local_job(app: Any, ident: str) -> dict[str, Any]:
    job = _jobs(app).get(ident)
    if job is None:
        raise ConfigError(f"no job {ident!r}")
    return job.as_dict()


class ListJobs(Lister):
    """List jobs (discover, plan, apply, unmanage, drift), newest first."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("--state", choices=["queued", "running", "succeeded", "failed",
                                                "cancelled"], help="only jobs in this state")
        parser.add_argument("--limit", type=int, default=50, help="at most this many")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        if parsed_args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        remote = api(self.app, parsed_args)
        if remote is not None:
            query = {"limit": str(parsed_args.limit)}
            if parsed_args.state:
                query["state"] = parsed_args.state
            jobs = remote.call("GET", "/v1/jobs", query=query)["jobs"]
        else:
            jobs = [j.as_dict() for j in _jobs(self.app).list(
                parsed_args.limit, None, parsed_args.state)]
        return COLUMNS, [_row(j) for j in jobs]


class ShowJob(ShowOne):
    """Show one job: its progress per host or VM, its result or error."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("job", help="job id")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            job = remote.call("GET", f"/v1/jobs/{urllib.parse.quote(parsed_args.job)}")["job"]
        else:
            job = _local_job(self.app, parsed_args.job)
        return SHOWN, _shown(job)


class CancelJob(ShowOne):
    """Cancel a job: a queued one at once; a running apply between VMs (the VMs
    started finish), a discovery after its current batch of hosts."""

    auth_required = False

    def get_parser(self, prog_name: str) -> Any:
        parser = super().get_parser(prog_name)
        parser.add_argument("job", help="job id")
        add_url_option(parser)
        return parser

    def take_action(self, parsed_args: Any) -> tuple[Any, Any]:
        remote = api(self.app, parsed_args)
        if remote is not None:
            job = remote.cancel(parsed_args.job)
        else:
            found = _jobs(self.app).cancel(parsed_args.job)
            if found is None:
                raise ConfigError(f"no job {parsed_args.job!r}")
            job = found.as_dict()
        return SHOWN, _shown(job)
