"""What every tolerate executor shares: the cloud, Nova's helper, the VM as found.

An executor gets a :class:`Context` and one drift, writes the records that
make OpenStack follow the VM, and returns an :class:`Outcome` whose detail
says what it wrote (the audit log keeps it beside the drift's before/after).
Executors that add records (a port, a volume, a flavor) reuse ``apply``'s
steps on a one-VM plan made by the planner, so a NIC or disk found later is
recorded exactly as it would have been at adoption.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from os_onboard.apply.steps import ApplyEnv
from os_onboard.cloud.base import Cloud
from os_onboard.cloud.nova_helper import run_helper
from os_onboard.drivers.adoption import Adoption
from os_onboard.exceptions import CloudError
from os_onboard.inventory.models import HostInventory, Inventory, Vm
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan, read_cloud_view
from os_onboard.plan.cloudview import CloudView
from os_onboard.plan.model import Plan, Step, StepKind, VmPlan
from os_onboard.reconcile.drift import Drift, adoption_of, compute_node, covers_node, live_vms
from os_onboard.state.journal import Journal
from os_onboard.state.statuses import DriftAction

#: (uuid, kind, actual) -> when a pass first saw this drift, of those in a row
SeenSince = Callable[[str, str, str], datetime | None]


@dataclass
class Outcome:
    drift: Drift
    action: DriftAction  # a plain string is turned into its member
    detail: str = ""
    recheck_in: float | None = None  # deferred: seconds until it may be decided
    #: failed: the error was temporary (the pass queues the drift and the watcher
    #: retries with backoff); a permanent failure waits for the next period
    temporary: bool = True

    def __post_init__(self) -> None:
        self.action = DriftAction(self.action)


@dataclass
class Context:
    cloud: Cloud
    hypervisors: list[dict]                      # cloud.hypervisors() as the pass read it
    inventory: Inventory | None = None           # what the pass discovered
    mapping: Mapping | None = None               # needed to record new NICs, disks, shapes
    nova_python: str | None = None
    nova_config: list[str] = field(default_factory=list)
    host_options: dict[str, Any] = field(default_factory=dict)  # the drivers' settings
    renames: dict[str, str] = field(default_factory=dict)  # disk sources renamed by adoption
    seen_since: SeenSince | None = None
    #: seconds off before SHUTOFF is recorded; None: the VM's driver decides
    shutdown_grace: float | None = None
    #: (command, items) -> results: a watcher's resident helpers; None = one process a call
    run_helpers: Callable[[str, list[dict]], list[dict]] | None = None
    journal: Journal | None = None               # the state store's plans (adopt policy)
    state_url: str = ""                          # for apply's lock (adopt policy)
    _view: CloudView | None = field(default=None, repr=False)  # see cloud_view()

    def seen_for(self, drift: Drift, now: datetime | None = None) -> float:
        """Seconds since a pass first saw this drift as it is (0: this pass)."""
        first = self.seen_since(drift.uuid, drift.kind.value, drift.after) \
            if self.seen_since else None
        return ((now or datetime.now(UTC)) - first).total_seconds() if first else 0.0

    @property
    def providers(self) -> dict[str, str]:
        return {h["node"]: h["uuid"] for h in self.hypervisors}

    def helper(self, item: dict, command: str = "update") -> dict:
        """One item through a Nova-side helper; its error becomes a CloudError."""
        if self.run_helpers is not None:
            [result] = self.run_helpers(command, [item])
        else:
            [result] = run_helper(command, [], self.nova_python, self.nova_config,
                                  stdin=[item])
        if "error" in result:
            raise CloudError(f"Nova-side helper {command}: {result['error']}")
        return result

    def vm(self, uuid: str) -> tuple[str, Vm] | None:
        """(host URI, VM) of the running (else any) domain with this UUID."""
        found = self._live(uuid)
        return (found[0].host.uri, found[1]) if found else None

    def grace_for(self, uuid: str) -> float:
        """How long this VM must stay off before SHUTOFF is recorded."""
        if self.shutdown_grace is not None:
            return self.shutdown_grace
        found = self._live(uuid)
        adoption = adoption_of(found[0]) if found else None
        return (adoption or Adoption).shutdown_grace

    def compute_host(self, uuid: str) -> str:
        """The nova-compute host the VM runs under (for the network cache helper)."""
        found = self._live(uuid)
        if found is None:
            return ""
        node = compute_node(*found)
        return next((h["service_host"] for h in self.hypervisors if h["node"] == node),
                    node)

    def host_uri_of(self, service_host: str) -> str | None:
        """The URI of the inventory host whose compute node nova-compute ``service_host`` runs."""
        nodes = {h["node"] for h in self.hypervisors if h["service_host"] == service_host}
        hosts = self.inventory.hosts if self.inventory else []
        return next((h.host.uri for h in hosts if any(covers_node(h, n) for n in nodes)),
                    None)

    def _live(self, uuid: str) -> tuple[HostInventory, Vm] | None:
        return live_vms(self.inventory).get(uuid) if self.inventory else None

    def apply_env(self) -> ApplyEnv:
        return ApplyEnv(cloud=self.cloud, host_options=self.host_options,
                        hypervisors={h["node"]: h for h in self.hypervisors})

    def cloud_view(self) -> CloudView:
        """OpenStack's state as a plan reads it: read once per pass, and again after a
        write (:meth:`forget_view`), so many VMs waiting under the adopt policy cost one
        read a pass, not one each."""
        if self._view is None:
            assert self.mapping is not None
            self._view = read_cloud_view(self.cloud, self.mapping)
        return self._view

    def forget_view(self) -> None:
        """Something may have been written: the next plan reads OpenStack again."""
        self._view = None

    def plan_one(self, uuid: str, *, as_new: bool = False) -> tuple[Plan, VmPlan]:
        """The plan adoption would make for this VM now (blocked or not);
        ``as_new``: as if Nova did not know its UUID."""
        if self.mapping is None or self.inventory is None:
            raise CloudError("recording a new VM, NIC, disk or shape needs the mapping: pass "
                             "--mapping (the file 'plan' used)")
        view = self.cloud_view()
        if as_new:  # every record gets its step
            view = dataclasses.replace(view, servers={
                k: v for k, v in view.servers.items() if k != uuid})
        plan = build_plan(self.inventory, 0, view, self.mapping, only={uuid},
                          renames=self.renames)
        if not plan.vms:
            raise CloudError(f"VM {uuid} was not discovered in this pass")
        return plan, plan.vms[0]

    def plan_as_new(self, uuid: str) -> tuple[Plan, VmPlan]:
        """The plan adoption would make for this VM now, as if it were not adopted.

        Its steps are what the VM's records should be; executors take the
        ones their drift is about (a port, a volume, the flavor).
        """
        plan, vm_plan = self.plan_one(uuid, as_new=True)
        if vm_plan.blocked:
            raise CloudError("the planner blocks this VM now: " + "; ".join(vm_plan.blocked))
        return plan, vm_plan

    def planned_step(self, uuid: str, kind: StepKind, param: str, value: str,
                     what: str) -> tuple[VmPlan, Step]:
        """The step adoption would plan now for one device (``param`` == ``value``)."""
        _plan, vm_plan = self.plan_as_new(uuid)
        step = next((s for s in vm_plan.steps
                     if s.kind is kind and s.params[param] == value), None)
        if step is None:
            raise CloudError(f"the planner makes no {what}")
        return vm_plan, step

