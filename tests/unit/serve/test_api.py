"""The /v1 API in-process (WebOb requests, 'noauth' roles from X-Roles, SQLite store)."""

import json
import time

import pytest
import webob

from os_onboard.serve.api import ROUTES, Service
from os_onboard.serve.app import make_app
from os_onboard.serve.config import new_conf
from os_onboard.serve.jobs import JobRunner
from os_onboard.state import StateStore

ADMIN = {"X-Roles": "admin,member,reader"}
MEMBER = {"X-Roles": "member,reader"}


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path}/s.db")


@pytest.fixture
def app(store, tmp_path):
    conf = new_conf(overrides={"api.auth_strategy": "noauth"})
    return make_app(Service(store), conf)


def call(app, method, path, headers=None, body=None):
    req = webob.Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp, (json.loads(resp.body) if resp.body else None)


def test_openapi_is_public_and_lists_every_route(app):
    resp, doc = call(app, "GET", "/v1/openapi.json")
    assert resp.status_int == 200 and doc["openapi"].startswith("3.")
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path]
    assert doc["paths"]["/v1/hosts"]["post"]["x-policy-rule"] == "os_onboard:hosts:create"


def test_no_token_401_member_reads_admin_writes(app):
    resp, body = call(app, "GET", "/v1/hosts")
    assert resp.status_int == 401 and body["error"]["code"] == 401
    assert resp.headers["WWW-Authenticate"].startswith("Keystone")
    assert body["error"]["request_id"] == resp.headers["X-OpenStack-Request-Id"]
    assert call(app, "GET", "/v1/hosts", MEMBER)[0].status_int == 200
    resp, body = call(app, "POST", "/v1/hosts", MEMBER, {"uri": "qemu:///system"})
    assert resp.status_int == 403 and "os_onboard:hosts:create" in body["error"]["message"]
    resp, body = call(app, "POST", "/v1/hosts", ADMIN, {"uri": "qemu:///system"})
    assert resp.status_int == 201 and resp.headers["Location"].endswith("/v1/hosts/1")
    assert body["host"]["uri"] == "qemu:///system"


def test_errors_have_one_shape(app):
    for method, path, headers, body, code in [
        ("GET", "/v1/nope", ADMIN, None, 404),
        ("PUT", "/v1/hosts", ADMIN, None, 405),
        ("GET", "/v1/hosts/42", ADMIN, None, 404),
        ("POST", "/v1/hosts", ADMIN, {"name": "x"}, 400),
        ("POST", "/v1/hosts", ADMIN, {"uri": "qemu+ssh://u:pw9@h/system"}, 400),
        ("GET", "/v1/hosts?limit=0", ADMIN, None, 400),
        ("GET", "/v1/snapshots/latest", ADMIN, None, 404),
        ("POST", "/v1/discoveries", ADMIN, {}, 409),
    ]:
        resp, doc = call(app, method, path, headers, body)
        assert resp.status_int == code, (method, path, doc)
        assert set(doc["error"]) == {"code", "title", "message", "request_id"}
        assert doc["error"]["code"] == code and "pw9" not in resp.text


def test_a_client_request_id_is_kept(app):
    rid = "req-12345678-1234-1234-1234-123456789012"
    resp, _ = call(app, "GET", "/v1", {"X-OpenStack-Request-Id": rid})
    assert resp.headers["X-OpenStack-Request-Id"] == rid
    resp, _ = call(app, "GET", "/v1", {"X-OpenStack-Request-Id": "evil\r\nx"})
    assert resp.headers["X-OpenStack-Request-Id"].startswith("req-") and "evil" not in resp.text


def test_hosts_paginate(app):
    for i in range(5):
        call(app, "POST", "/v1/hosts", ADMIN, {"uri": f"qemu+ssh://hv{i}/system"})
    seen, path = [], "/v1/hosts?limit=2"
    while path:
        _, body = call(app, "GET", path, MEMBER)
        seen += [h["name"] for h in body["hosts"]]
        path = body.get("next", "").removeprefix("http://localhost")
    assert seen == [f"hv{i}" for i in range(5)]
    _, found = call(app, "GET", "/v1/hosts?uri=qemu%2Bssh%3A%2F%2Fhv3%2Fsystem", MEMBER)
    assert [h["name"] for h in found["hosts"]] == ["hv3"]
    assert call(app, "DELETE", "/v1/hosts/hv0", ADMIN)[0].status_int == 204
    assert call(app, "GET", "/v1/hosts/hv0", ADMIN)[0].status_int == 404


def _wait(app, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = call(app, "GET", f"/v1/jobs/{job_id}", MEMBER)
        if body["job"]["state"] in ("succeeded", "failed", "cancelled"):
            return body["job"]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not done: {body}")


def test_a_discovery_job_runs_to_a_snapshot_whose_vms_filter_and_paginate(app, store,
                                                                          tmp_path):
    from os_onboard.drivers.libvirt.testnode import write_estate
    uris = [f"test://{p}" for p in write_estate(tmp_path, 2, 3)]
    for uri in uris:
        call(app, "POST", "/v1/hosts", ADMIN, {"uri": uri, "name": uri.rsplit("/", 1)[1]})
    resp, body = call(app, "POST", "/v1/discoveries", ADMIN, {})
    assert resp.status_int == 202 and resp.headers["Location"].endswith(body["job"]["id"])
    runner = JobRunner(store, "r1", poll=0.05).start()
    try:
        job = _wait(app, body["job"]["id"])
    finally:
        runner.stop()
    assert job["state"] == "succeeded", job
    assert job["progress"]["done"] == 2 and set(job["progress"]["hosts"]) == set(uris)
    assert job["result"]["vms"] == 6 and job["owner"] == "r1"
    _, page = call(app, "GET", "/v1/snapshots/latest/vms?limit=4", MEMBER)
    assert len(page["vms"]) == 4 and "next" in page
    _, rest = call(app, "GET", page["next"].removeprefix("http://localhost"), MEMBER)
    assert len(rest["vms"]) == 2
    names = [v["name"] for v in page["vms"] + rest["vms"]]
    assert len(set(names)) == 6
    one = names[0]
    _, only = call(app, "GET", f"/v1/snapshots/latest/vms?name={one}&host={uris[0]}", MEMBER)
    assert [v["name"] for v in only["vms"]] == [one]


def test_a_job_taken_over_resumes_with_the_hosts_left(store, tmp_path):
    from os_onboard.drivers.libvirt.testnode import write_estate
    from os_onboard.serve.jobs import JobContext, run_discover
    from os_onboard.state.jobs import JobState, JobStore
    uris = [f"test://{p}" for p in write_estate(tmp_path, 10, 1)]
    jobs = JobStore(store)
    job = jobs.create("discover", {"hosts": uris})
    first = jobs.claim("dead", stale_after=30)
    ctx = JobContext(jobs, first, "dead")
    calls = []

    def cancel_after_one_batch():
        calls.append(1)
        return len(calls) > 1
    ctx.cancel_requested = cancel_after_one_batch  # the replica "dies" after one batch
    state, _ = run_discover(store, ctx)
    assert state is JobState.CANCELLED
    assert jobs.get(job.id).progress["done"] == 8
    time.sleep(0.05)
    second = jobs.claim("alive", stale_after=0.01)
    assert second.attempts == 2 and second.owner == "alive"
    state, result = run_discover(store, JobContext(jobs, second, "alive"))
    assert state is JobState.SUCCEEDED and result["hosts"] == 10
    assert jobs.get(job.id).progress["done"] == 10


def test_a_runner_that_lost_its_job_stops_without_writing(store, tmp_path):
    from os_onboard.drivers.libvirt.testnode import write_estate
    from os_onboard.serve.jobs import JobContext, run_discover
    from os_onboard.state.jobs import JobState, JobStore
    uris = [f"test://{p}" for p in write_estate(tmp_path, 2, 1)]
    jobs = JobStore(store)
    job = jobs.create("discover", {"hosts": uris})
    mine = jobs.claim("slow", stale_after=30)
    time.sleep(0.05)
    assert jobs.claim("other", stale_after=0.01).owner == "other"  # "slow" presumed dead
    assert run_discover(store, JobContext(jobs, mine, "slow")) == (None, {})
    assert store.list_snapshots() == [] and jobs.get(job.id).state is JobState.RUNNING


def test_noauth_binds_to_loopback_only():
    from os_onboard.exceptions import ConfigError
    from os_onboard.serve.server import check_bind
    check_bind("127.0.0.1:8799", "noauth")
    check_bind("[::1]:8799", "noauth")
    check_bind("0.0.0.0:8799", "keystone")
    with pytest.raises(ConfigError):
        check_bind("0.0.0.0:8799", "noauth")
