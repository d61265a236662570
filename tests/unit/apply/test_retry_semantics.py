"""Retry semantics carried by the error type: apply retries a step in place after
a temporary error only; the reconciler backs off only for temporary failures."""

import pytest

from os_onboard.apply import runner
from os_onboard.exceptions import (
    CloudError,
    ConfigError,
    HostUnreachable,
    OnboardError,
    TemporaryCloudError,
)
from os_onboard.inventory.models import Inventory
from os_onboard.reconcile.drift import Drift, DriftKind
from os_onboard.reconcile.passes import Stores, reconcile_pass
from os_onboard.reconcile.pending import Records
from os_onboard.reconcile.policy import parse_policies
from os_onboard.reconcile.tolerate import Outcome, Tolerator
from os_onboard.retry import retry_temporary
from os_onboard.state import StateStore
from os_onboard.state.audit import AuditLog
from os_onboard.state.drift_queue import DriftQueue
from os_onboard.state.records_cache import RecordsCache
from os_onboard.state.statuses import DriftAction, StepStatus, VmStatus
from tests.unit.apply.test_runner import UUID1, World, vm1
from tests.unit.reconcile.test_drift import HOSTS, host, server, vm

# -- retry_temporary ---------------------------------------------------------------


def _failing(*errors: OnboardError):
    left, calls = list(errors), []

    def fn(attempt: int) -> str:
        calls.append(attempt)
        if left:
            raise left.pop(0)
        return "ok"
    return fn, calls


def test_a_temporary_error_is_tried_again_with_growing_delays():
    slept: list[float] = []
    fn, calls = _failing(HostUnreachable("refused"), TemporaryCloudError("503"))
    assert retry_temporary(fn, "test", attempts=3, first_delay=0.5, sleep=slept.append) == "ok"
    assert (calls, slept) == ([1, 2, 3], [0.5, 1.0])


def test_a_permanent_error_is_raised_at_once():
    slept: list[float] = []
    fn, calls = _failing(CloudError("refused", status_code=409))
    with pytest.raises(CloudError, match="refused"):
        retry_temporary(fn, "test", attempts=3, sleep=slept.append)
    assert (calls, slept) == ([1], [])


def test_the_last_temporary_error_is_raised_after_every_attempt():
    fn, calls = _failing(*(TemporaryCloudError(f"try {i}") for i in range(5)))
    with pytest.raises(TemporaryCloudError, match="try 2"):
        retry_temporary(fn, "test", attempts=3, sleep=lambda s: None)
    assert calls == [1, 2, 3]


# -- apply: a step retried in place -------------------------------------------------


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "STEP_RETRY_FIRST", 0.0)
    return World(tmp_path, monkeypatch)


def test_apply_retries_a_step_whose_error_is_temporary(world):
    plan_id, plan = world.plan(vm1())
    world.cloud.fail("post_allocations")  # the bulk fails: one step per VM
    world.cloud.fail("put_allocations", status=503)  # then Placement answers 503 once
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == VmStatus.ADOPTED  # in this run, no rerun needed
    assert world.journal.steps(plan_id)[(UUID1, "allocation")].status is StepStatus.DONE
    assert world.cloud.calls.count("put_allocations") == 2


def test_apply_fails_a_step_whose_temporary_error_persists(world):
    plan_id, plan = world.plan(vm1())
    world.cloud.fail("post_allocations")
    world.cloud.fail("allocations", status=503, times=99)  # the resume's look-up
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == VmStatus.FAILED and "HTTP 503" in outcome.detail
    assert world.cloud.calls.count("allocations") == runner.STEP_ATTEMPTS
    assert world.journal.steps(plan_id)[(UUID1, "allocation")].status is StepStatus.FAILED


def test_apply_does_not_retry_a_permanent_error(world):
    plan_id, plan = world.plan(vm1())
    world.cloud.fail("post_allocations")
    world.cloud.fail("put_allocations", status=409)
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == VmStatus.FAILED and "HTTP 409" in outcome.detail
    assert world.cloud.calls.count("put_allocations") == 1


# -- reconcile: the drift queue ----------------------------------------------------

ON_B = Inventory(hosts=[host("hv-a"), host("hv-b", vm())])
TOLERATE = parse_policies("tolerate", [])


class FailingTolerator:
    def __init__(self, error: OnboardError) -> None:
        self.error, self.calls = error, 0

    def apply(self, drift: Drift, policy: str) -> Outcome:
        self.calls += 1
        return Outcome(drift, "failed", str(self.error), temporary=self.error.temporary)


def _pass(tmp_path, error: OnboardError):
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    stores = Stores(DriftQueue(store), AuditLog(store), RecordsCache(store))
    tolerator = FailingTolerator(error)
    result = reconcile_pass(ON_B, lambda: Records([server()], HOSTS, []), stores, "test",
                            TOLERATE, lambda records: tolerator)
    return result, stores


def test_a_temporary_toleration_failure_is_queued_and_retried_with_backoff(tmp_path):
    result, _stores = _pass(tmp_path, TemporaryCloudError("placement: Connection refused"))
    assert [r[5] for r in result.rows] == [DriftAction.FAILED]
    assert result.pending == 1 and result.permanent == 0
    assert "1 drift(s) queued after failed writes" in result.retry


def test_a_permanent_toleration_failure_is_reported_and_not_retried_with_backoff(tmp_path):
    result, stores = _pass(tmp_path, ConfigError("needs --mapping"))
    assert [r[5] for r in result.rows] == ["failed"]
    # kept (a half-done move must not be lost) but no backoff: the next period tries it
    assert result.pending == 1 and result.permanent == 1 and result.retry == ""
    assert "1 after permanent failures" in result.summary()
    assert [e.action for e in stores.audit.entries()] == ["failed"]


def test_the_tolerator_carries_the_error_type_into_the_outcome():
    class Ctx:
        def forget_view(self):
            pass

    drift = Drift(DriftKind.HOST_CHANGED, UUID1, "web1", "a", "b", {"node": "hv-b"})
    for error, temporary in ((TemporaryCloudError("down"), True), (CloudError("409"), False)):
        tolerator = Tolerator(Ctx())  # type: ignore[arg-type]
        tolerator._execute = lambda d, e=error: (_ for _ in ()).throw(e)  # type: ignore
        outcome = tolerator.apply(drift, "tolerate")
        assert (outcome.action, outcome.temporary) == (DriftAction.FAILED, temporary)
