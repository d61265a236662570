"""Plan and apply as jobs of the API, against the shipped fake cloud (the apply
harness of tests/unit/apply/test_runner.py: helpers and the re-read faked)."""

import time

import pytest

from os_onboard.serve import adoption
from os_onboard.serve.adoption import AdoptionSettings, run_apply, run_plan, run_unmanage
from os_onboard.serve.api import Service
from os_onboard.serve.app import make_app
from os_onboard.serve.config import new_conf
from os_onboard.serve.jobs import KINDS, JobRunner
from os_onboard.state import StateStore
from tests.unit.apply.test_runner import MAC1, MAPPING, UUID1, World, inventory, vm1
from tests.unit.serve.test_api import ADMIN, MEMBER, call


@pytest.fixture
def world(tmp_path, monkeypatch):
    return World(tmp_path, monkeypatch)


def _runner(store, world, tmp_path, lock=None):
    settings = AdoptionSettings(
        cloud=lambda: world.cloud, nova_python="nova-python", nova_config=["nova.conf"],
        host_options={"instances_path": str(tmp_path / "instances"),
                      "libvirt_config_dirs": [str(tmp_path / "libvirt")]}, lock=lock)
    kinds = {**KINDS, "plan": lambda s, c: run_plan(s, c, settings),
             "apply": lambda s, c: run_apply(s, c, settings),
             "unmanage": lambda s, c: run_unmanage(s, c, settings)}
    return JobRunner(store, "r1", poll=0.05, kinds=kinds).start()


def _done(app, resp, body, timeout=30):
    assert resp.status_int == 202, body
    path = resp.headers["Location"].removeprefix("http://localhost")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = call(app, "GET", path, MEMBER)[1]["job"]
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_plan_apply_unmanage_through_the_api(world, tmp_path, monkeypatch):
    store = StateStore(f"sqlite:///{tmp_path}/s.db")  # the world's journal store
    world.planned = inventory(vm1())
    snapshot = store.save_snapshot(world.planned)
    app = make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))
    runner = _runner(store, world, tmp_path)
    try:
        mapping = MAPPING.model_dump(mode="json")
        resp, body = call(app, "POST", "/v1/plans", MEMBER, {"mapping": mapping})
        assert resp.status_int == 403
        resp, body = call(app, "POST", "/v1/plans", ADMIN, {"mapping": {"owners": "x"}})
        assert resp.status_int == 400 and "owners" in body["error"]["message"]
        job = _done(app, *call(app, "POST", "/v1/plans", ADMIN, {"mapping": mapping}))
        assert job["state"] == "succeeded", job
        assert job["result"]["snapshot"] == snapshot
        plan_id = job["result"]["plan"]
        resp, plan = call(app, "GET", f"/v1/plans/{plan_id}", MEMBER)
        [vm] = plan["plan"]["vms"]
        assert vm["name"] == "lab-vm1" and vm["steps"] and not vm.get("blocked")
        assert world.ports_of(MAC1) == []  # planning wrote nothing

        assert call(app, "POST", "/v1/applies", ADMIN, {"plan": 999})[0].status_int == 404
        job = _done(app, *call(app, "POST", "/v1/applies", ADMIN, {"plan": plan_id}))
        assert job["state"] == "succeeded", job
        [outcome] = job["result"]["vms"]
        assert (outcome["name"], outcome["status"]) == ("lab-vm1", "adopted")
        steps = len(plan["plan"]["vms"][0]["steps"])
        assert job["progress"]["vms"] == {"lab-vm1": f"{steps}/{steps} steps"}
        [port] = world.ports_of(MAC1)
        assert port["device_id"] == UUID1
        # applying again is a no-op for what is done (journaled)
        again = _done(app, *call(app, "POST", "/v1/applies", ADMIN, {"plan": plan_id}))
        assert again["state"] == "succeeded" and len(world.ports_of(MAC1)) == 1

        monkeypatch.setattr(adoption, "discover_hosts", lambda uris: world.planned)
        assert call(app, "POST", "/v1/unmanages", MEMBER, {"vms": ["lab-vm1"]})[
            0].status_int == 403
        job = _done(app, *call(app, "POST", "/v1/unmanages", ADMIN, {"vms": ["lab-vm1"]}))
        assert job["state"] == "succeeded", job
        assert job["progress"]["vms"] == {"lab-vm1": "released"}
        assert job["result"]["vms"][0]["uuid"] == UUID1 and not job["result"]["vms"][0]["error"]
        assert world.ports_of(MAC1) == [] and not world.cloud.servers_
    finally:
        runner.stop()


def test_an_apply_whose_lock_is_held_elsewhere_fails_and_writes_nothing(world, tmp_path):
    from contextlib import contextmanager

    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    world.planned = inventory(vm1())
    store.save_snapshot(world.planned)
    plan_id, _ = world.plan(vm1())
    taken = []

    @contextmanager
    def held_elsewhere(name):
        taken.append(name)
        yield False

    app = make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))
    runner = _runner(store, world, tmp_path, lock=held_elsewhere)
    try:
        job = _done(app, *call(app, "POST", "/v1/applies", ADMIN, {"plan": plan_id}))
    finally:
        runner.stop()
    assert job["state"] == "failed" and "another replica" in job["error"]
    assert taken == [f"apply/plan-{plan_id}"] and world.ports_of(MAC1) == []


def test_policies_are_listed(tmp_path):
    app = make_app(Service(StateStore(f"sqlite:///{tmp_path}/s.db")),
                   new_conf(overrides={"api.auth_strategy": "noauth"}))
    _, body = call(app, "GET", "/v1/policies", MEMBER)
    rules = {r["name"]: r["default"] for r in body["rules"]}
    assert rules["os_onboard:hosts:create"] == "rule:os_onboard:admin"
    assert rules["os_onboard:hosts:list"] == "rule:os_onboard:reader"
    assert rules["os_onboard:reader"] == "role:reader or role:admin"


def test_a_drift_job_reports_what_changed_and_writes_nothing(world, tmp_path):
    from os_onboard.inventory.models import PowerState
    from os_onboard.serve.watcher import run_drift

    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    plan_id, plan = world.plan(vm1())
    world.apply(plan_id, plan)
    app = make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))
    call(app, "POST", "/v1/hosts", ADMIN, {"uri": "qemu+ssh://root@hv1/system"})
    stopped = inventory(vm1(power=PowerState.SHUTOFF))  # stopped outside OpenStack
    kinds = {**KINDS, "drift": lambda s, c: run_drift(s, c, lambda: world.cloud,
                                                      discover=lambda hosts: stopped)}
    world.cloud.calls.clear()
    runner = JobRunner(store, "r1", poll=0.05, kinds=kinds).start()
    try:
        assert call(app, "POST", "/v1/drift-checks", MEMBER, {})[0].status_int == 403
        job = _done(app, *call(app, "POST", "/v1/drift-checks", ADMIN, {}))
    finally:
        runner.stop()
    assert job["state"] == "succeeded", job
    [drift] = job["result"]["drift"]
    assert (drift["vm"], drift["uuid"], drift["action"]) == ("lab-vm1", UUID1, "reported")
    assert world.cloud.writes() == []  # report only
    _, audit = call(app, "GET", "/v1/audit", MEMBER)
    assert [(e["vm_name"], e["action"]) for e in audit["audit"]] == [("lab-vm1", "reported")]


def test_cancel_stops_a_running_apply_between_vms_and_applying_again_goes_on(
        world, tmp_path, monkeypatch):
    """Three VMs, one per chunk: the cancel arrives while the first VM's ports are
    made; that VM is carried to its end, the two others are not started (nothing
    written for them), the job ends cancelled with per-VM progress, and a new apply
    job of the same plan adopts the rest from the journal."""
    from os_onboard.apply import bulk
    from tests.unit.apply.test_runner import many_vms

    monkeypatch.setattr(bulk, "PIPELINE_CHUNK", 1)
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    vms = many_vms(3)
    plan_id, plan = world.plan(*vms)
    app = make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))
    job_path: list[str] = []
    create_ports = world.cloud.create_ports

    def cancel_on_first_ports(requests):
        if len(job_path) == 1:
            resp, body = call(app, "POST", f"{job_path[0]}/cancel", ADMIN)
            assert resp.status_int == 202 and body["job"]["cancel_requested"], body
            job_path.append("cancelled")
        return create_ports(requests)

    monkeypatch.setattr(world.cloud, "create_ports", cancel_on_first_ports)
    runner = _runner(store, world, tmp_path)
    try:
        resp, body = call(app, "POST", "/v1/applies", ADMIN, {"plan": plan_id, "parallel": 1})
        job_path.append(f"/v1/jobs/{body['job']['id']}")
        job = _done(app, resp, body)
        assert job["state"] == "cancelled", job
        status = {v["name"]: v["status"] for v in job["result"]["vms"]}
        assert status == {"lab-m00": "adopted", "lab-m01": "cancelled",
                          "lab-m02": "cancelled"}
        steps = {vm.name: len(vm.steps) for vm in plan.vms}
        assert job["progress"]["vms"] == {"lab-m00": f"{steps['lab-m00']}/{steps['lab-m00']} "
                                                     "steps",
                                          "lab-m01": f"0/{steps['lab-m01']} steps",
                                          "lab-m02": f"0/{steps['lab-m02']} steps"}
        assert job["result"]["cancelled"] == 2 and job["progress"]["done"] == 1
        # nothing written for the VMs not started; the one started is whole
        assert [p["device_id"] for p in world.cloud.ports_] == [vms[0].uuid]
        assert set(world.cloud.allocs) == {vms[0].uuid}
        assert {uuid for uuid, _key in world.journal.steps(plan_id)} == {"", vms[0].uuid}

        again = _done(app, *call(app, "POST", "/v1/applies", ADMIN, {"plan": plan_id}))
        assert again["state"] == "succeeded", again
        assert {v["status"] for v in again["result"]["vms"]} == {"adopted"}
        assert sorted(p["device_id"] for p in world.cloud.ports_) == sorted(v.uuid for v in vms)
    finally:
        runner.stop()


def test_cancel_stops_an_unmanage_job_between_vms(world, tmp_path, monkeypatch):
    from tests.unit.apply.test_runner import many_vms

    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    vms = many_vms(2)
    plan_id, plan = world.plan(*vms)
    world.apply(plan_id, plan)
    store.save_snapshot(world.planned)
    app = make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))
    monkeypatch.setattr(adoption, "discover_hosts", lambda uris: world.planned)
    job_path: list[str] = []
    release = adoption.unmanage

    def cancel_after_the_first(*args, **kwargs):
        if len(job_path) == 1:
            call(app, "POST", f"{job_path[0]}/cancel", ADMIN)
            job_path.append("cancelled")
        return release(*args, **kwargs)

    monkeypatch.setattr(adoption, "unmanage", cancel_after_the_first)
    runner = _runner(store, world, tmp_path)
    try:
        resp, body = call(app, "POST", "/v1/unmanages", ADMIN,
                          {"vms": ["lab-m00", "lab-m01"]})
        job_path.append(f"/v1/jobs/{body['job']['id']}")
        job = _done(app, resp, body)
    finally:
        runner.stop()
    assert job["state"] == "cancelled", job
    assert job["progress"]["vms"] == {"lab-m00": "released", "lab-m01": "cancelled"}
    assert list(world.cloud.servers_) == [vms[1].uuid]  # the second one still adopted
