"""The job runner: each replica claims queued (or abandoned) jobs and runs them.

Jobs live in the state store (:mod:`os_onboard.state.jobs`), so any replica
may run any job and a job outlives the replica that started it: a runner
beats every few seconds; a job whose beat stopped (its replica was killed)
is claimed again by a live replica and resumed from what it had recorded.

A discovery job reads its hosts in small batches (the pool of
:func:`discover_hosts` inside each); after each batch it records each host's
status (the job's per-host progress) and keeps the host inventories read
(the job's items, one row each), and looks at the cancel flag. Resuming reads only the
hosts not read yet; the snapshot is saved when all are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from os_onboard.discovery.runner import RunOptions, discover_hosts
from os_onboard.exceptions import OnboardError
from os_onboard.inventory.conflicts import find_conflicts
from os_onboard.inventory.leases import join_leases_across_hosts
from os_onboard.inventory.models import HostInventory, Inventory
from os_onboard.state.credentials import export_registered
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.jobs import Job, JobState, JobStore
from os_onboard.state.store import StateStore

LOG = logging.getLogger(__name__)
BATCH = 8


class JobContext:
    def __init__(self, jobs: JobStore, job: Job, owner: str) -> None:
        self.jobs, self.job, self.owner = jobs, job, owner

    def beat(self, progress: dict[str, Any] | None = None,
             result: dict[str, Any] | None = None) -> bool:
        """False when the job was taken over by another replica (this one was
        presumed dead): the kind then stops without finishing it."""
        return self.jobs.beat(self.job.id, self.owner, progress, result)

    def cancel_requested(self) -> bool:
        now = self.jobs.get(self.job.id)
        return now is None or now.cancel_requested


def run_discover(store: StateStore, ctx: JobContext, options: RunOptions | None = None
                 ) -> tuple[JobState | None, dict[str, Any]]:
    """:returns: the final state and result; None when the job was taken over."""
    hosts: list[str] = ctx.job.params["hosts"]
    status: dict[str, str] = dict(ctx.job.progress.get("hosts", {}))
    read = {uri: HostInventory.model_validate_json(doc)
            for uri, doc in ctx.jobs.items(ctx.job.id).items()}
    todo = [h for h in hosts if h not in read]
    export_registered(HostRegistry(store), todo)  # credentials references, resolved now
    if ctx.job.attempts > 1:
        LOG.info("job %s resumed (attempt %d): %d of %d hosts left", ctx.job.id,
                 ctx.job.attempts, len(todo), len(hosts))

    def progress() -> dict[str, Any]:
        return {"total": len(hosts), "done": len(read), "hosts": status}

    for start in range(0, len(todo), BATCH):
        if ctx.cancel_requested():
            return JobState.CANCELLED, {"partial_hosts": len(read)}
        batch = todo[start:start + BATCH]
        for uri in batch:
            status[uri] = "reading"
        if not ctx.beat(progress()):
            return None, {}
        inventory = discover_hosts(batch, options)
        # read-only and idempotent: a runner presumed dead that still writes
        # here writes what the next reading would
        ctx.jobs.save_items(ctx.job.id, {h.host.uri: h.model_dump_json()
                                         for h in inventory.hosts})
        for host in inventory.hosts:
            read[host.host.uri] = host
            status[host.host.uri] = host.status.value
        if not ctx.beat(progress()):
            return None, {}
    inventory = Inventory(hosts=[read[h] for h in hosts])
    join_leases_across_hosts(inventory)
    inventory.conflicts = find_conflicts(inventory)
    if not ctx.beat(progress()):  # the last look before writing the snapshot
        return None, {}
    snapshot = store.save_snapshot(inventory)
    ctx.jobs.drop_items(ctx.job.id)
    return JobState.SUCCEEDED, {"snapshot": snapshot, "hosts": len(inventory.hosts),
                                "vms": sum(len(h.vms) for h in inventory.hosts),
                                "problems": len(inventory.problems)}


#: what runs a job of a kind: (store, context) -> (final state or None, result)
Kind = Callable[[StateStore, JobContext], tuple[JobState | None, dict[str, Any]]]
KINDS: dict[str, Kind] = {
    "discover": run_discover,
}


class JobRunner:
    """Claims and runs jobs on background threads until :meth:`stop`."""

    def __init__(self, store: StateStore, owner: str, workers: int = 2,
                 stale_after: float = 20.0, poll: float = 0.5,
                 kinds: dict[str, Kind] | None = None) -> None:
        self.store, self.owner = store, owner
        self.kinds = kinds if kinds is not None else dict(KINDS)
        self.jobs = JobStore(store)
        self.stale_after, self.poll = stale_after, poll
        self._slots = threading.Semaphore(workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)

    def start(self) -> JobRunner:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=self.poll):
                continue
            try:
                job = self.jobs.claim(self.owner, self.stale_after)
            except OnboardError as exc:
                LOG.warning("cannot claim jobs: %s", exc)
                job = None
            if job is None:
                self._slots.release()
                self._stop.wait(self.poll)
                continue
            threading.Thread(target=self._run, args=(job,), name=f"job-{job.id[:8]}",
                             daemon=True).start()

    def _run(self, job: Job) -> None:
        ctx = JobContext(self.jobs, job, self.owner)
        beating = threading.Event()

        def ticker() -> None:  # a batch may outlast the takeover time: beat meanwhile
            while not beating.wait(max(0.5, self.stale_after / 4)):
                if not self.jobs.beat(job.id, self.owner):
                    return

        threading.Thread(target=ticker, daemon=True, name="job-beat").start()
        LOG.info("job %s (%s) started, attempt %d", job.id, job.kind, job.attempts)
        state: JobState | None
        try:
            kind = self.kinds.get(job.kind)
            if kind is None:
                state, result, error = JobState.FAILED, {}, f"unknown job kind {job.kind!r}"
            else:
                state, result = kind(self.store, ctx)
                error = ""
        except OnboardError as exc:
            state, result, error = JobState.FAILED, {}, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            LOG.exception("job %s failed", job.id)
            state, result, error = JobState.FAILED, {}, f"internal error: {exc}"
        finally:
            beating.set()
            self._slots.release()
        if state is None:
            LOG.warning("job %s was taken over by another replica", job.id)
            return
        self.jobs.finish(job.id, self.owner, state, result, error)
        LOG.info("job %s %s", job.id, state.value)
