"""vm-gone: the domain was undefined or destroyed out of band; its records go.

Removed exactly as ``unmanage`` removes them (apply/release.py): the
allocation, then the Nova records *purged* (a soft-deleted instance whose
UUID still runs somewhere is what Nova's ``running_deleted_instance_action=
reap`` powers off), then ports and volumes (marked detached in the database,
unmanaged: the backend keeps the data). Never a false vm-gone:

* only when every host of the pass was read (a VM on a host that did not
  answer is not gone), and
* only on the second pass in a row that finds it absent: the first defers
  and asks for another pass :data:`CONFIRM_AFTER` seconds later. One read
  that misses a VM (a vCenter re-registering it, a relocation seen half
  way) costs a few seconds, never the records. "In a row" is what the
  audit log keeps: an earlier pass's vm-gone row for this VM with nothing
  tolerated since (:attr:`Context.seen_since`); a watcher's pass that finds
  such a VM again writes a "seen again" row, which ends the run (passes.py).
"""

from __future__ import annotations

from os_onboard.apply.release import unmanage
from os_onboard.exceptions import CloudError
from os_onboard.inventory.models import HostStatus
from os_onboard.reconcile.drift import Drift
from os_onboard.reconcile.tolerate.base import Context, Outcome

#: seconds until the pass that confirms a VM is gone (the watcher runs it then)
CONFIRM_AFTER = 2.0


def gone(ctx: Context, drift: Drift) -> Outcome:
    unread = [h.host.uri for h in (ctx.inventory.hosts if ctx.inventory else [])
              if h.status != HostStatus.OK]
    if ctx.inventory is None or unread:
        return Outcome(drift, "deferred", "not every host was read ("
                       + (", ".join(unread) or "no inventory") + "): the VM may be there")
    if ctx.seen_for(drift) <= 0:
        return Outcome(drift, "deferred", "absent in this pass only: the records go if "
                       "the next pass finds it absent too", recheck_in=CONFIRM_AFTER)
    host = drift.before.removeprefix("on ")
    release = unmanage(ctx.cloud, drift.uuid, host=host, host_uri=ctx.host_uri_of(host),
                       host_options=ctx.host_options, nova_python=ctx.nova_python,
                       nova_config=ctx.nova_config)
    if release.error:
        raise CloudError(release.error)
    return Outcome(drift, "tolerated", "records removed: " + "; ".join(release.removed)
                   + ("; kept: " + "; ".join(release.kept) if release.kept else ""))
