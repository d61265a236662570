"""The command line through an ``os-onboard serve`` (``--url`` or ``$OS_ONBOARD_URL``).

The commands that have a ``--url`` run the same work as a job of the server
(discover, plan, apply, unmanage, drift) or read its store (inventory, jobs,
hosts), with the user's own Keystone token (:func:`keystone_token`: ``$OS_TOKEN``,
else ``--os-cloud``/``$OS_CLOUD`` in clouds.yaml, else the ``OS_*`` variables).
A job's progress goes to stderr while the command waits; Ctrl-C asks the
server to cancel the job (a second Ctrl-C leaves it running there).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Host, HostInventory, HostStatus, Inventory, Vm
from os_onboard.serve.client import Client, keystone_token

URL_ENV = "OS_ONBOARD_URL"


def add_url_option(parser: Any) -> None:
    parser.add_argument("--url", default=os.environ.get(URL_ENV), metavar="URL",
                        help="work through an os-onboard server (e.g. http://host:8799) "
                             "instead of locally, with your Keystone token ($OS_TOKEN, else "
                             f"--os-cloud/OS_CLOUD or OS_* credentials; env {URL_ENV})")


def api(app: Any, parsed_args: Any) -> Client | None:
    """The server's client when ``--url`` is given, else None (work locally)."""
    url = getattr(parsed_args, "url", None)
    if not url:
        return None
    cloud = getattr(app.options, "cloud", None)
    return Client(url, lambda: keystone_token(cloud))


def _say(job: dict[str, Any]) -> None:
    progress = job["progress"]
    where = ""
    if "total" in progress:
        where = f" {progress.get('done', 0)}/{progress['total']}"
    last = progress.get("last") or progress.get("step") or ""
    print(f"job {job['id'][:8]} {job['state']}{where}{' ' + last if last else ''}",
          file=sys.stderr, flush=True)


def run_job(client: Client, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    """Start a job, follow it to its end; the job as it ended.

    :raises ConfigError: the job failed (its error is the message).
    """
    job = client.start(path, body)
    print(f"{what}: job {job['id']} ({client.url}/v1/jobs/{job['id']})", file=sys.stderr,
          flush=True)
    try:
        job = client.wait(job["id"], _say)
    except KeyboardInterrupt:
        client.cancel(job["id"])
        print(f"cancel of job {job['id']} requested: waiting for it to stop "
              "(Ctrl-C again leaves it running on the server)", file=sys.stderr, flush=True)
        job = client.wait(job["id"], _say)
    if job["state"] == "failed" and job["error"]:
        raise ConfigError(f"job {job['id']} failed: {job['error']}")
    return job


def snapshot_inventory(client: Client, snapshot: str | int | None) -> tuple[int, Inventory]:
    """A snapshot's hosts and VMs as the API lists them (no problems or conflicts:
    the API gives their counts only)."""
    ref = "latest" if snapshot is None else str(snapshot)
    summary = client.call("GET", f"/v1/snapshots/{ref}")["snapshot"]
    hosts = {h["uri"]: HostInventory(host=Host(uri=h["uri"], kind=h["kind"]),
                                     status=HostStatus(h["status"]))
             for h in summary["hosts"]}
    for item in client.pages(f"/v1/snapshots/{summary['id']}/vms", "vms",
                             marker=lambda vm: vm["uuid"]):
        uri = item.pop("host")
        hosts[uri].vms.append(Vm.model_validate(item))
    return summary["id"], Inventory(hosts=list(hosts.values()))


def only_vm_view(by: str) -> None:
    if by != "vm":
        raise ConfigError("through --url only --by vm is shown (the API lists a snapshot's "
                          "VMs; problems and conflicts are counted in GET /v1/snapshots/ID)")
