"""The bulk half of ``apply``: VMs in chunks through a pipeline, records in bulk.

A chunk's ports go in Neutron bulk creates (while the previous chunk is in
Nova), its Nova records and network cache through one long-lived ``adopt``
helper, its allocations in one Placement request. A first attempt goes in
bulk; a step whose bulk request failed is retried alone, with a look-up
first, by the Applier (runner.py), which this mixes into.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from os_onboard.apply import steps as ex
from os_onboard.cloud.helper_stream import HelperStream
from os_onboard.cloud.nova_helper import run_helper
from os_onboard.exceptions import OnboardError
from os_onboard.plan.model import Step, StepKind, VmPlan
from os_onboard.state.statuses import StepStatus, VmStatus

if TYPE_CHECKING:
    from os_onboard.apply.outcome import ApplyOptions, VmOutcome

#: Largest bulk requests (items): Neutron creates a bulk in one transaction.
BULK_PORTS = 50
BULK_SMALLEST = 10  # below that, more requests in parallel do not pay
#: VMs per pipeline chunk, and chunks being prepared (ports, disks) at once.
PIPELINE_CHUNK = 10
PORT_REQUESTS_IN_FLIGHT = 2
BULK_ALLOCATIONS = 100


class BulkWrites:
    """The Applier's bulk writes; it provides the journal and per-VM methods used here."""

    options: ApplyOptions
    env: ex.ApplyEnv
    outcomes: dict[str, VmOutcome]
    _stream: HelperStream | None

    def _pipeline(self, vms: list[VmPlan]) -> None:
        """Chunks of VMs through ports + disks, then Nova, then Placement, overlapped.

        While chunk k+1's ports are made (Neutron), chunk k is adopted by one
        long-lived ``adopt`` helper (Nova), and chunk k-1's allocations are
        written (Placement). The helper is started first, so Nova's imports
        overlap with the first ports too. Within a VM the order of its steps
        is kept: the journal and resumes see the same steps as before.
        """
        chunks = [vms[i:i + PIPELINE_CHUNK] for i in range(0, len(vms), PIPELINE_CHUNK)]
        if any(self._step_state(vm, StepKind.SERVER.value) != StepStatus.DONE for vm in vms):
            try:
                self._stream = HelperStream("adopt", self.options.nova_python,
                                            self.options.nova_config)
            except OnboardError:
                self._stream = None  # the one-shot run says why, per VM
        in_flight = max(1, min(self.options.parallel, PORT_REQUESTS_IN_FLIGHT))
        try:
            with ThreadPoolExecutor(max_workers=in_flight) as local, \
                    ThreadPoolExecutor(max_workers=1) as placement:
                prepared = [local.submit(self._prepare_chunk, chunk) for chunk in chunks]
                written = []
                for future in prepared:
                    chunk = future.result()
                    self._batch(chunk, StepKind.SERVER, "adopt", self._server_items)
                    written.append(placement.submit(self._bulk_allocations, chunk))
                for future in written:
                    future.result()
        finally:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def _prepare_chunk(self, vms: list[VmPlan]) -> list[VmPlan]:
        self._bulk_ports(vms)
        self._parallel(vms, self._local_steps)
        return vms

    def _run_helper(self, command: str, items: list[dict]) -> list[dict]:
        timeout = 60 + 5 * len(items)
        if command == "adopt" and self._stream is not None:
            try:
                return self._stream.run(items, timeout)
            except OnboardError:
                # A helper that died may have written part of the batch: the
                # one-shot run below completes it (adopt is idempotent).
                self._stream.close()
                self._stream = None
        return run_helper(command, [], self.options.nova_python, self.options.nova_config,
                          timeout=timeout, stdin=items)

    # -- first attempts in bulk ------------------------------------------------------
    def _first_attempts(self, vms: list[VmPlan], kind: StepKind) -> list[tuple[VmPlan, Step]]:
        """The steps of this kind never started (a resumed step is looked up first,
        one at a time: it may have left a record behind)."""
        return [(vm, step) for vm in vms if self.outcomes[vm.uuid].status == VmStatus.PENDING
                for step in vm.steps if step.kind is kind
                and self._step_state(vm, step.key) is None]

    def _chunks(self, items: list, largest: int) -> list[list]:
        """Up to ``parallel`` requests at a time, of BULK_SMALLEST to ``largest`` items."""
        share = -(-len(items) // max(1, self.options.parallel))
        size = min(largest, max(BULK_SMALLEST, share))
        return [items[i:i + size] for i in range(0, len(items), size)]

    def _bulk_ports(self, vms: list[VmPlan]) -> None:
        """New ports in Neutron's bulk create: one request (and one transaction)
        per chunk instead of one per port. A chunk that fails is left to the
        per-VM steps, which look each port up before creating it."""
        batch = self._first_attempts(vms, StepKind.PORT)

        def chunk(items: list[tuple[VmPlan, Step]]) -> None:
            for vm, step in items:
                self._record(vm.uuid, step.key, StepStatus.STARTED)
            try:
                ports = ex.create_ports(self.env, items)
            except OnboardError:
                return  # _local_steps resumes them (a look-up, then one create each)
            for (vm, step), port in zip(items, ports, strict=True):
                try:
                    result = ex.port_result(vm, step, port)
                except OnboardError as exc:
                    self._fail(vm, step.key, str(exc))
                    continue
                self._record(vm.uuid, step.key, StepStatus.DONE, result)
                self.outcomes[vm.uuid].steps_done += 1

        self._in_threads(chunk, self._chunks(batch, BULK_PORTS))

    def _bulk_allocations(self, vms: list[VmPlan]) -> None:
        """New consumers in Placement's bulk write (POST /allocations), a chunk
        per request; a chunk that fails is left to the per-VM steps."""
        ready = [vm for vm in vms if self.outcomes[vm.uuid].status == VmStatus.PENDING
                 and self._step_state(vm, StepKind.SERVER.value) == StepStatus.DONE]
        batch = [(vm, step) for vm, step in self._first_attempts(ready, StepKind.ALLOCATION)]

        def chunk(items: list[tuple[VmPlan, Step]]) -> None:
            for vm, step in items:
                self._record(vm.uuid, step.key, StepStatus.STARTED)
            try:
                results = ex.create_allocations(self.env, [
                    (vm, self._flavor(vm), step.params["project_id"],
                     step.params["user_id"] or self.env.default_user_id)
                    for vm, step in items])
            except OnboardError:
                return  # _allocation resumes them (a look-up, then one write each)
            for (vm, step), result in zip(items, results, strict=True):
                self._record(vm.uuid, step.key, StepStatus.DONE, result)
                self.outcomes[vm.uuid].steps_done += 1

        self._in_threads(chunk, self._chunks(batch, BULK_ALLOCATIONS))

    def _in_threads(self, fn: Callable[[list], None], chunks: list[list]) -> None:
        if len(chunks) <= 1:
            for c in chunks:
                fn(c)
            return
        with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
            list(pool.map(fn, chunks))

    def _server_items(self, vms: list[VmPlan]) -> list[dict]:
        items = []
        for vm in vms:
            step = next(s for s in vm.steps if s.kind is StepKind.SERVER)
            item = ex.server_item(self.env, vm, step, self._results(vm), self.when)
            if self._step_state(vm, StepKind.NETWORK_CACHE.value) != StepStatus.DONE:
                # The same helper run rebuilds the cache (Nova's refresh). No
                # "started" entry of its own: rewriting a cache is harmless, and
                # a rerun either redoes this run (the server's step is started)
                # or finds no "done" for the cache and rebuilds it alone.
                item["network_cache"] = True
            items.append(item)
        return items

    def _cache_built(self, vm: VmPlan, result: dict) -> None:
        """The adopt run rebuilt this VM's network cache too: journal that step."""
        if "network_cache" in result:
            self._record(vm.uuid, StepKind.NETWORK_CACHE.value, StepStatus.DONE,
                         result["network_cache"])
            self.outcomes[vm.uuid].steps_done += 1

    def _batch(self, vms: list[VmPlan], kind: StepKind, command: str,
               make_items: Callable[[list[VmPlan]], list[dict]]) -> None:
        ready = []
        for vm in vms:
            if self.outcomes[vm.uuid].status != VmStatus.PENDING:
                continue
            if self._step_state(vm, kind.value) == StepStatus.DONE:
                self._tick(f"{vm.name} {kind.value}")
            else:
                ready.append(vm)
        if not ready:
            return
        for vm in ready:
            self._record(vm.uuid, kind.value, StepStatus.STARTED)
        try:
            results = self._run_helper(command, make_items(ready))
        except OnboardError as exc:
            for vm in ready:
                self._fail(vm, kind.value, str(exc))
            return
        by_uuid = {r.get("uuid"): r for r in results}
        for vm in ready:
            result = by_uuid.get(vm.uuid, {"error": "the helper returned nothing for it"})
            if "error" in result:
                # The journal keeps the helper's whole traceback; the outcome one line.
                self._fail(vm, kind.value, f"Nova-side helper: {result['error']}",
                           {"traceback": result["traceback"]} if "traceback" in result else None)
            else:
                self._record(vm.uuid, kind.value, StepStatus.DONE, result)
                self.outcomes[vm.uuid].steps_done += 1
                self._tick(f"{vm.name} {kind.value}")
                if kind is StepKind.SERVER:
                    self._cache_built(vm, result)
