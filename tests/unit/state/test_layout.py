"""The state store split by what it holds, without import cycles; statuses as
StrEnums whose values are what is stored; one Nova power-state mapping."""

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

import os_onboard.state as state_pkg
from os_onboard.inventory.models import PowerState
from os_onboard.plan import builder, nova_states
from os_onboard.reconcile.drift import Drift, DriftKind
from os_onboard.reconcile.tolerate import Outcome
from os_onboard.reconcile.tolerate import power as tolerate_power
from os_onboard.state import StateStore
from os_onboard.state.audit import AuditEntry, AuditLog
from os_onboard.state.drift_queue import DriftQueue, QueuedDrift
from os_onboard.state.journal import Journal
from os_onboard.state.records_cache import RecordsCache
from os_onboard.state.statuses import DriftAction, QueueState, StepStatus, VmStatus

STATE = Path(state_pkg.__file__).parent
HOLDERS = {"journal", "audit", "drift_queue", "records_cache"}


def _state_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module.removeprefix("os_onboard.state.") for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("os_onboard.state.")}


def test_the_store_imports_no_holder_and_no_holder_imports_another():
    assert _state_imports(STATE / "store.py") & HOLDERS == set()
    for name in HOLDERS:
        assert _state_imports(STATE / f"{name}.py") & HOLDERS == set(), name


def test_no_state_module_is_above_400_lines():
    assert {p.name: n for p in STATE.glob("*.py")
            if (n := len(p.read_text().splitlines())) > 400} == {}


def test_statuses_keep_their_stored_values():
    assert [s.value for s in StepStatus] == ["started", "done", "failed", "reverted"]
    assert [s.value for s in VmStatus] == ["pending", "adopted", "already", "failed",
                                           "skipped", "blocked", "cancelled"]
    assert [a.value for a in DriftAction] == ["reported", "tolerated", "deferred", "failed"]
    assert [q.value for q in QueueState] == ["queued", "resolved", "unconfirmed"]
    assert json.dumps({"status": VmStatus.ADOPTED}) == '{"status": "adopted"}'
    assert f"{StepStatus.DONE}" == "done" and StepStatus.DONE == "done"


def test_each_holder_opens_on_a_fresh_store(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    journal = Journal(store)
    journal.record(1, "vm", "port", StepStatus.DONE, {"id": "p"})
    journal.forget_vm("vm")
    [(key, step)] = journal.steps(1).items()
    assert key == ("vm", "port") and step.status is StepStatus.REVERTED
    now = datetime.now(UTC)
    AuditLog(store).add(AuditEntry(now, "vm", "web1", "vm-gone", "a", "b", "test",
                                   DriftAction.FAILED, "x"))
    assert [e.action for e in AuditLog(store).entries()] == ["failed"]
    queue = DriftQueue(store)
    assert queue.put(QueuedDrift("vm", "k", "web1", "vm-gone", "a", "b", {}, "test", now,
                                 now, 1, "e"))
    assert [i.key for i in queue.items()] == ["k"]
    RecordsCache(store).save("{}")
    assert RecordsCache(store).load()[1] == "{}"


def test_an_outcome_action_is_a_drift_action():
    drift = Drift(DriftKind.VM_GONE, "u", "n", "a", "b")
    assert Outcome(drift, "tolerated").action is DriftAction.TOLERATED


def test_one_power_state_mapping_for_planner_and_toleration():
    assert builder.NOVA_STATES is nova_states.NOVA_STATES
    assert tolerate_power.NOVA_STATES is nova_states.NOVA_STATES
    assert nova_states.NOVA_STATES[PowerState.RUNNING] == ("active", 1)
    assert set(nova_states.NOVA_STATES) == {PowerState.RUNNING, PowerState.PAUSED,
                                            PowerState.SHUTOFF}
