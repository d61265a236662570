"""``apply``: execute a saved plan as journaled, resumable steps.

Order: shared records (flavors, images, networks) one by one; then the VMs
in chunks, through a pipeline (``Applier._pipeline``): ports (Neutron's bulk
create), volumes and the instance directory (VMs in parallel, bounded);
then the chunk's Nova records and network cache, by one ``adopt`` helper
process that serves every chunk (Nova's imports cost seconds, paid once,
while the first ports are made); then Placement (bulk). While one chunk is
in Nova, the next one's ports are made. A first attempt of a step goes in
bulk; a resumed one, or one whose bulk request failed, goes alone with a
look-up first. A step whose error is temporary (``OnboardError.temporary``)
is tried again in place, with backoff, as a resume. A VM whose step fails
stops there (its later steps are not attempted) and the others go on; a
rerun resumes every VM from its journal.

Safety checks before any write:

* a plan not yet started is refused when OpenStack moved under it (the
  fingerprint of the state it was made from changed);
* every VM is read again from its hypervisor (read-only): one that moved to
  another host or changed power state since the plan is skipped - recording
  a stale power state is how Nova's power sync ends up stopping a live guest.

One apply at a time per state store (an exclusive file lock).

Cancel (``cancelled``, asked before the shared steps and before each chunk
of VMs starts): a VM already started in this run is carried to its end, so
cancelling never leaves a VM half-recorded; the VMs not started end
``cancelled``, with nothing written for them, and applying the plan again
goes on from the journal. With the pipeline, "started" is per chunk: the
chunks being prepared when the cancel is seen (at most two, 20 VMs) finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from os_onboard.apply import steps as ex
from os_onboard.apply.bulk import PIPELINE_CHUNK, BulkWrites
from os_onboard.apply.lock import apply_lock
from os_onboard.apply.outcome import ApplyOptions, Progress, VmOutcome, vm_done
from os_onboard.cloud.helper_stream import HelperStream
from os_onboard.discovery.runner import discover_hosts
from os_onboard.exceptions import ConfigError, OnboardError, StalePlanError
from os_onboard.plan.cloudview import CloudView, Scope
from os_onboard.plan.model import Op, Plan, SharedKind, SharedStep, StepKind, VmPlan
from os_onboard.retry import retry_temporary
from os_onboard.state.journal import Journal, StepState
from os_onboard.state.statuses import StepStatus, VmStatus

SHARED = ""  # the journal's vm_uuid of shared steps
#: Tries of a step that fails with a temporary error, and the first delay (s).
STEP_ATTEMPTS = 3
STEP_RETRY_FIRST = 1.0


class Applier(BulkWrites):
    def __init__(self, plan_id: int, plan: Plan, journal: Journal, env: ex.ApplyEnv,
                 options: ApplyOptions, progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.plan_id, self.plan, self.journal, self.env = plan_id, plan, journal, env
        self.options = options
        self.progress = progress or (lambda done, total, note: None)
        #: asked between VMs (before a chunk starts): True stops the apply there
        self.cancelled = cancelled or (lambda: False)
        self._cancel_seen = False
        self.when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.outcomes: dict[str, VmOutcome] = {}
        self._done = 0
        self._total = len(plan.shared) + sum(len(v.steps) for v in plan.vms)
        # The journal, read once and kept in step with every record() (the
        # database stays the truth across runs; this saves a read per step).
        self._steps: dict[tuple[str, str], StepState] = {}
        self._lock = threading.Lock()
        self._stream: HelperStream | None = None  # the adopt helper, while the pipeline runs

    # -- entry point ---------------------------------------------------------------
    def run(self) -> list[VmOutcome]:
        first_run = not self.journal.started(self.plan_id)
        self._steps = self.journal.steps(self.plan_id)
        check = first_run and self.options.check_fingerprint
        # One read of OpenStack's state: all of it when the plan's basis is checked.
        view = (CloudView.read(self.env.cloud, set(), set()) if check
                else CloudView(hypervisors=self.env.cloud.hypervisors()))
        self.env.hypervisors = {h["node"]: h for h in view.hypervisors}
        self.env.default_user_id = self.env.cloud.current_ids()[1]
        if check:
            scope = Scope.from_dict(self.plan.basis) if self.plan.basis else None
            current = view.fingerprint(scope)
            if current != self.plan.cloud_fingerprint:
                raise StalePlanError(
                    f"plan {self.plan_id} is stale: OpenStack changed since it was made "
                    f"(state {self.plan.cloud_fingerprint} -> {current}); run "
                    "'os-onboard plan' again")
        journal = self._steps
        for vm in self.plan.vms:
            outcome = VmOutcome(vm.uuid, vm.name)
            if vm.op is Op.BLOCKED:
                outcome.status, outcome.detail = VmStatus.BLOCKED, "; ".join(vm.blocked)
            elif vm.op is Op.EXISTS:
                outcome.status, outcome.detail = VmStatus.ALREADY, "already adopted"
            self.outcomes[vm.uuid] = outcome
        todo = [v for v in self.plan.vms if v.op is Op.CREATE and not vm_done(journal, v)]
        for vm in self.plan.vms:
            if vm.op is Op.CREATE and vm not in todo:
                self.outcomes[vm.uuid].status = VmStatus.ADOPTED
                self.outcomes[vm.uuid].detail = "done in an earlier run"
                self._done += len(vm.steps)
        if not todo:
            return list(self.outcomes.values())
        self._check_host_options(todo)
        self._recheck_hypervisors(todo)
        todo = [v for v in todo if self.outcomes[v.uuid].status == VmStatus.PENDING]
        if self._cancel(todo):
            return list(self.outcomes.values())
        self._run_shared()
        self._pipeline(todo)
        # Per VM: resumed allocations, and those of a bulk write that failed.
        self._parallel(todo, self._allocation)
        # Only where the adopt run above did not rebuild the cache (a resume).
        self._batch(todo, StepKind.NETWORK_CACHE, "network_cache",
                    lambda vms: [{"uuid": v.uuid, "host": v.host} for v in vms])
        for vm in todo:
            outcome = self.outcomes[vm.uuid]
            if outcome.status == VmStatus.PENDING:
                outcome.status = VmStatus.ADOPTED
        return list(self.outcomes.values())

    # -- cancel --------------------------------------------------------------------
    def _cancel(self, vms: list[VmPlan]) -> bool:
        """When a cancel was asked: ``vms`` (none started in this run) end
        cancelled, and every later stage skips them (it takes pending VMs only)."""
        if not self._cancel_seen:
            try:
                self._cancel_seen = bool(self.cancelled())
            except OnboardError:  # cannot tell (e.g. the store briefly down): go on
                return False
        if not self._cancel_seen:
            return False
        for vm in vms:
            outcome = self.outcomes[vm.uuid]
            if outcome.status != VmStatus.PENDING:
                continue
            done = sum(1 for s in vm.steps if self._step_state(vm, s.key) == StepStatus.DONE)
            outcome.status = VmStatus.CANCELLED
            outcome.detail = (f"apply cancelled before this VM started ({done} of "
                              f"{len(vm.steps)} steps journaled); apply the plan again to go "
                              "on")
        return True

    def _prepare_chunk(self, vms: list[VmPlan]) -> list[VmPlan]:
        """A chunk starts only if no cancel was asked (the stop point between VMs)."""
        if self._cancel(vms):
            return vms
        return super()._prepare_chunk(vms)

    # -- checks --------------------------------------------------------------------
    def _recheck_hypervisors(self, vms: list[VmPlan]) -> None:
        inventory = discover_hosts(sorted({v.host_uri for v in vms}))
        live = {vm.uuid: (host.host, vm) for host in inventory.hosts for vm in host.vms}
        for vm in vms:
            done_server = self._step_state(vm, "server") == StepStatus.DONE
            where = live.get(vm.uuid)
            node = ex.adoption_of(vm).compute_node(*where) if where else None
            if where is None:
                reason = f"not found on {vm.host_uri} any more"
            elif where[0].uri != vm.host_uri:
                reason = f"moved to {where[0].uri}"
            elif node != vm.node and not done_server:  # e.g. vMotion to another cluster
                reason = f"moved to compute node {node}"
            elif where[1].power_state != vm.power_state and not done_server:
                reason = (f"power state is {where[1].power_state} now, {vm.power_state} in "
                          "the plan")
            else:
                continue
            self.outcomes[vm.uuid].status = VmStatus.SKIPPED
            self.outcomes[vm.uuid].detail = (f"VM changed since the plan ({reason}); run "
                                             "'os-onboard discover' and 'plan' again")

    def _step_state(self, vm: VmPlan | None, key: str) -> str | None:
        state = self._steps.get((vm.uuid if vm else SHARED, key))
        return state.status if state else None

    def _record(self, uuid: str, key: str, status: StepStatus, result: dict | None = None,
                error: str = "") -> None:
        self.journal.record(self.plan_id, uuid, key, status, result, error)
        with self._lock:
            old = self._steps.get((uuid, key))
            kept = result if result is not None else (old.result if old else {})
            self._steps[(uuid, key)] = StepState(status, kept, error)

    # -- shared records ----------------------------------------------------------
    def _run_shared(self) -> None:
        recorded = self._steps
        for step in self.plan.shared:
            state = recorded.get((SHARED, step.key))
            if state and state.status == StepStatus.DONE:
                self.env.shared[step.key] = state.result
            else:
                self._record(SHARED, step.key, StepStatus.STARTED)
                try:
                    result = self._shared(step)
                except OnboardError as exc:
                    self._record(SHARED, step.key, StepStatus.FAILED,
                                        error=str(exc))
                    raise
                self._record(SHARED, step.key, StepStatus.DONE, result)
                self.env.shared[step.key] = result
            self._tick(step.key)

    def _shared(self, step: SharedStep) -> dict:
        p, cloud = step.params, self.env.cloud
        if step.kind is SharedKind.FLAVOR:
            if step.op is Op.EXISTS:
                found = [f for f in cloud.flavors() if f["id"] == p["id"]]
                if not found:
                    raise StalePlanError(f"flavor {p['name']} is gone; plan again")
                return found[0]
            projects = p["projects"] or [None]
            for project in projects:
                made = cloud.create_flavor(p["name"], p["vcpus"], p["ram"], p["disk"], project,
                                           "os-onboard: shape of adopted VMs")
            return {**made, "vcpus": p["vcpus"], "ram": p["ram"], "disk": p["disk"]}
        if step.kind is SharedKind.IMAGE:
            found = cloud.image_by_name(p["name"])
            if found and found["status"] == "active":
                return found
            if p["file"] is None:
                return cloud.create_image_record(p["name"], {"os_onboard_placeholder": "true"})
            return cloud.upload_image(p["name"], p["file"], p["disk_format"], {})
        if step.kind is SharedKind.NETWORK:
            net = next((n for n in cloud.networks() if n["name"] == p["name"]), None)
            if net is None:
                net = cloud.create_network(p["name"], p["physical_network"],
                                           p["network_type"], p.get("segment"), None)
            if not any(s["name"] == p["subnet"] for s in cloud.subnets()):
                cloud.create_subnet(p["subnet"], net["id"], p["cidr"], p.get("gateway"))
            return {"id": net["id"], "name": p["name"]}
        raise ConfigError(f"unknown shared step {step.kind}")

    # -- per-VM steps --------------------------------------------------------------
    def _parallel(self, vms: list[VmPlan], fn: Callable[[VmPlan], None]) -> None:
        ready = [v for v in vms if self.outcomes[v.uuid].status == VmStatus.PENDING]
        with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
            list(pool.map(fn, ready))

    def _results(self, vm: VmPlan) -> dict[str, dict]:
        with self._lock:
            return {key: state.result for (uuid, key), state in self._steps.items()
                    if uuid == vm.uuid}

    def _execute(self, vm: VmPlan, key: str, fn: Callable[[bool], dict]) -> bool:
        """Run one step unless done; journal it; False when it failed."""
        state = self._step_state(vm, key)
        if state == StepStatus.DONE:
            self._tick(f"{vm.name} {key}")
            return True
        # A step never started cannot have left a record behind: executors skip
        # their look-up then (one request less per record on a first apply).
        resume = state is not None
        self._record(vm.uuid, key, StepStatus.STARTED)
        try:
            # A temporary error (a service down, an answer lost) is retried here
            # with backoff, as a resume: the lost answer may hide a record made.
            result = retry_temporary(lambda attempt: fn(resume or attempt > 1),
                                     f"{vm.name} {key}", STEP_ATTEMPTS, STEP_RETRY_FIRST)
        except OnboardError as exc:
            self._fail(vm, key, str(exc))
            return False
        self._record(vm.uuid, key, StepStatus.DONE, result)
        self.outcomes[vm.uuid].steps_done += 1
        self._tick(f"{vm.name} {key}")
        return True

    def _fail(self, vm: VmPlan, key: str, error: str, detail: dict | None = None) -> None:
        self._record(vm.uuid, key, StepStatus.FAILED, detail, error=error)
        outcome = self.outcomes[vm.uuid]
        outcome.status = VmStatus.FAILED
        outcome.detail = (f"{key}: {error} (rerun 'os-onboard apply' to resume, or "
                          f"'os-onboard unmanage {vm.name}' to undo)")

    # -- the pipeline ------------------------------------------------------------------
    def _flavor(self, vm: VmPlan) -> dict:
        server = next(s for s in vm.steps if s.kind is StepKind.SERVER)
        return self.env.shared[server.params["flavor"]]

    def _local_steps(self, vm: VmPlan) -> None:
        for step in vm.steps:
            if step.kind is StepKind.PORT:
                ok = self._execute(vm, step.key,
                                   lambda r, s=step: ex.ensure_port(self.env, vm, s, r))
            elif step.kind is StepKind.VOLUME:
                ok = self._execute(vm, step.key,
                                   lambda r, s=step: ex.ensure_volume(self.env, vm, s, self.when))
            elif step.kind is StepKind.HOST:
                ok = self._execute(vm, step.key, lambda r, s=step: ex.ensure_host_step(
                    self.env, vm, s, self._results(vm)))
            else:
                continue
            if not ok:
                if step.kind is StepKind.VOLUME:
                    self._renames_so_far(vm)
                return

    def _check_host_options(self, todo: list[VmPlan]) -> None:
        """Each driver refuses, before anything is written, host steps it lacks settings for."""
        by_host: dict[str, tuple[VmPlan, set[str]]] = {}
        for vm in todo:
            _first, keys = by_host.setdefault(vm.host_uri, (vm, set()))
            keys.update(s.key for s in vm.steps if s.kind is StepKind.HOST)
        for first, keys in by_host.values():
            if keys:
                ex.adoption_of(first).check_options(keys, self.env.host_options)

    def _renames_so_far(self, vm: VmPlan) -> None:
        """A volume failed after Cinder managed (and renamed) others of the VM:
        the rename map and the persistent definition follow those now, so the
        VM stays restartable whether the operator resumes or rolls back. The
        step itself stays undone; the rerun makes it whole."""
        try:
            done = ex.volumes_managed(self.env, vm, self._results(vm))
        except OnboardError as exc:
            self.outcomes[vm.uuid].detail += (
                f"; the renames of its managed volumes are not recorded yet: {exc}")
            return
        if done.get("renames"):
            self.outcomes[vm.uuid].detail += (
                "; the volumes Cinder renamed so far are in the rename map and the "
                "persistent definition")

    def _allocation(self, vm: VmPlan) -> None:
        step = next(s for s in vm.steps if s.kind is StepKind.ALLOCATION)
        flavor = self._flavor(vm)
        user = step.params["user_id"] or self.env.default_user_id
        self._execute(vm, step.key, lambda r: ex.ensure_allocation(
            self.env, vm, flavor, step.params["project_id"], user, r))

    def _tick(self, note: str) -> None:
        self._done += 1
        self.progress(self._done, self._total, note)


__all__ = ["PIPELINE_CHUNK", "Applier", "ApplyOptions", "StalePlanError", "VmOutcome",
           "apply_lock", "vm_done"]
