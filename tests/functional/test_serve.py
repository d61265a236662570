"""``os-onboard serve`` on the lab: Keystone tokens, policy, a discovery job (issue 15).

The server runs as a user would start it: ``os-onboard serve --config
$LAB_ONBOARD_SERVE_CONFIG --bind 127.0.0.1:PORT`` (the lab's Keystone, its
MariaDB as the state store, its etcd), plus a small override file of the
test's own (a tooz group and member id of its own, so nothing else on the
lab shares its hosts).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import openstack.config
import pytest

#: a run killed mid-test must not leave hosts the replicas here would share
pytestmark = pytest.mark.usefixtures("empty_serve_registry")

BIN = Path(sys.executable).parent / "os-onboard"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(cloud: str) -> str:
    return openstack.config.OpenStackConfig().get_one(cloud).get_session().get_token()


def http(method, url, tok=None, body=None):
    headers = {"Content-Type": "application/json"}
    if tok:
        headers["X-Auth-Token"] = tok
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


class Replica:
    """One ``os-onboard serve`` process group (gunicorn master + worker)."""

    def __init__(self, lab, tmp_path, member, group, lease_ttl=10, extra="", env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.override = tmp_path / f"{member}.conf"
        self.override.write_text(
            f"[coordination]\ngroup = {group}\nmember_id = {member}\n"
            f"lease_ttl = {lease_ttl}\nheartbeat = 1\n[api]\njob_stale_after = 10\n{extra}")
        # os-onboard-*.log: the secret scan (test_zz_secret_scan) reads it too
        self.log = tmp_path / f"os-onboard-serve-{member}.log"
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", lab["LAB_ONBOARD_SERVE_CONFIG"], "--config",
             str(self.override), "--bind", f"127.0.0.1:{self.port}"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{self.url}/v1")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"serve did not start:\n{self.log.read_text()[-3000:]}")

    def kill9(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def tokens(lab):
    return {"admin": token("lab-admin"), "member": token("lab")}


@pytest.fixture
def replica(lab, tmp_path):
    r = Replica(lab, tmp_path, f"t-{uuid.uuid4().hex[:8]}", f"test-serve-{uuid.uuid4().hex[:8]}")
    yield r
    r.stop()


def _unregister(url, tok, uri):
    """Forget ``uri`` if registered (by id: a URI's slashes cannot be a path segment)."""
    status, _, body = http("GET", f"{url}/v1/hosts?limit=1000", tok)
    assert status == 200
    for host in body["hosts"]:
        if host["uri"] == uri:
            assert http("DELETE", f"{url}/v1/hosts/{host['id']}", tok)[0] == 204
    assert uri not in {h["uri"] for h in http("GET", f"{url}/v1/hosts?limit=1000", tok)[2]["hosts"]}


def test_openapi_and_keystone_auth(replica, tokens):
    status, _, doc = http("GET", f"{replica.url}/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.") and "/v1/hosts" in doc["paths"]
    status, headers, body = http("GET", f"{replica.url}/v1/hosts")
    assert status == 401 and body["error"]["code"] == 401
    assert "Keystone" in headers["WWW-Authenticate"]
    assert body["error"]["request_id"] == headers["X-OpenStack-Request-Id"]
    status, _, body = http("GET", f"{replica.url}/v1/hosts", "not-a-token")
    assert status == 401
    assert http("GET", f"{replica.url}/v1/hosts", tokens["admin"])[0] == 200
    assert http("GET", f"{replica.url}/v1/hosts", tokens["member"])[0] == 200
    status, _, body = http("POST", f"{replica.url}/v1/hosts", tokens["member"],
                           {"uri": "qemu+ssh://member-may-not.invalid/system"})
    assert status == 403 and body["error"]["code"] == 403
    log = replica.log.read_text()
    assert tokens["admin"] not in log and tokens["member"] not in log


def test_register_lab_host_and_discover_it(replica, tokens, lab):
    uri, admin = lab["LAB_HOST_A_URI"], tokens["admin"]
    _unregister(replica.url, admin, uri)
    status, headers, body = http("POST", f"{replica.url}/v1/hosts", admin,
                                 {"uri": uri, "name": f"lab-a-{uuid.uuid4().hex[:6]}",
                                  "groups": ["lab"]})
    assert status == 201, body
    host_id = body["host"]["id"]
    try:
        # reachable now, checked by a member (a read: the reader rule), within its timeout
        status, _, body = http("POST", f"{replica.url}/v1/hosts/{host_id}/check",
                               tokens["member"], {"timeout": 15})
        assert status == 200 and body["check"]["ok"] is True, body
        print(f"\ncheck of {uri}: {body['check']['latency_ms']} ms, {body['check']['vms']} VMs")
        status, headers, body = http("POST", f"{replica.url}/v1/discoveries", admin,
                                     {"hosts": [uri]})
        assert status == 202 and headers["Location"].endswith(body["job"]["id"])
        started, job = time.monotonic(), body["job"]
        while job["state"] in ("queued", "running") and time.monotonic() - started < 120:
            time.sleep(0.5)
            job = http("GET", headers["Location"], tokens["member"])[2]["job"]
        print(f"\ndiscovery job of {uri}: {job['state']} after "
              f"{time.monotonic() - started:.1f} s, progress {job['progress']}")
        assert job["state"] == "succeeded", job
        assert job["progress"]["hosts"] == {uri: "ok"}
        snapshot = job["result"]["snapshot"]
        status, _, vms = http("GET", f"{replica.url}/v1/snapshots/{snapshot}/vms"
                                     f"?host={urllib.request.quote(uri, safe='')}",
                              tokens["member"])
        names = {vm["name"] for vm in vms["vms"]}
        assert set(lab["LAB_RUNNING_GUESTS"].split()) <= names, names
        status, _, running = http("GET", f"{replica.url}/v1/snapshots/{snapshot}/vms"
                                         "?power_state=running&limit=1", tokens["member"])
        assert len(running["vms"]) == 1 and "next" in running
        # the host's own last discovery; a VM found by its MAC in upper case
        found = http("GET", f"{replica.url}/v1/hosts/{host_id}", tokens["member"])[2]
        assert found["host"]["last_discovery"]["snapshot"] == snapshot
        assert found["host"]["last_discovery"]["duration_ms"] >= 0
        guest = next(vm for vm in vms["vms"] if vm["nics"])
        status, _, hit = http("GET", f"{replica.url}/v1/snapshots/{snapshot}/vms?flags=1&q="
                                     + guest["nics"][0]["mac"].upper(), tokens["member"])
        assert guest["uuid"] in {vm["uuid"] for vm in hit["vms"]}
        assert all("mac" in vm["matched"] for vm in hit["vms"])
    finally:
        _unregister(replica.url, admin, uri)


def test_a_plan_job_on_the_lab(replica, tokens, lab):
    """Discovery job of host A, then a plan job for lab-vm1 with the lab's mapping
    (planning reads OpenStack and writes nothing); the plan shows its steps or why
    it is blocked (another test may have adopted lab-vm1 already)."""
    import yaml

    from tests.functional.lab import REPO

    uri, admin = lab["LAB_HOST_A_URI"], tokens["admin"]
    _unregister(replica.url, admin, uri)
    status, _, body = http("POST", f"{replica.url}/v1/hosts", admin,
                           {"uri": uri, "name": f"lab-a-{uuid.uuid4().hex[:6]}"})
    assert status == 201, body
    try:
        job = _finish(replica, admin, http("POST", f"{replica.url}/v1/discoveries", admin,
                                           {"hosts": [uri]}))
        assert job["state"] == "succeeded", job
        mapping = yaml.safe_load((REPO / "lab" / "mapping.yaml").read_text())
        status, _, body = http("POST", f"{replica.url}/v1/plans", tokens["member"],
                               {"mapping": mapping})
        assert status == 403
        started = time.monotonic()
        job = _finish(replica, admin, http("POST", f"{replica.url}/v1/plans", admin, {
            "mapping": mapping, "snapshot": job["result"]["snapshot"], "vms": ["lab-vm1"]}))
        assert job["state"] == "succeeded", job
        status, _, plan = http("GET", f"{replica.url}/v1/plans/{job['result']['plan']}",
                               tokens["member"])
        [vm] = plan["plan"]["vms"]
        print(f"\nplan job: plan {plan['id']} in {time.monotonic() - started:.1f} s, "
              f"counts {plan['counts']}")
        assert vm["name"] == "lab-vm1" and (vm["steps"] or vm["blocked"])
    finally:
        _unregister(replica.url, admin, uri)


def _finish(replica, tok, answer, timeout=120):
    status, headers, body = answer
    assert status == 202, body
    started, job = time.monotonic(), body["job"]
    while job["state"] in ("queued", "running") and time.monotonic() - started < timeout:
        time.sleep(0.3)
        job = http("GET", headers["Location"], tok)[2]["job"]
    return job


def test_a_watching_replica_passes_over_the_hosts_it_holds(lab, tmp_path, tokens):
    """[watch] enabled: the replica's reconcile passes (report-only) cover its
    share of the registered hosts - here all of them, host A; /v1/workers shows
    the last pass."""
    admin = tokens["admin"]
    member = f"w-{uuid.uuid4().hex[:8]}"
    replica = Replica(lab, tmp_path, member, f"test-watch-{uuid.uuid4().hex[:8]}",
                      extra="[watch]\nenabled = true\ninterval = 5\n")
    uri = lab["LAB_HOST_A_URI"]
    try:
        _unregister(replica.url, admin, uri)
        status, _, body = http("POST", f"{replica.url}/v1/hosts", admin,
                               {"uri": uri, "name": f"lab-a-{uuid.uuid4().hex[:6]}"})
        assert status == 201, body
        started, last = time.monotonic(), None
        while time.monotonic() - started < 60:
            view = http("GET", f"{replica.url}/v1/workers", tokens["member"])[2]
            [me] = [m for m in view["members"] if m["member"] == member]
            last = me["last_pass"]
            if me["held"] == [uri] and last and last["hosts"] == 1:
                break
            time.sleep(0.5)
        print(f"\nwatch: first pass over host A seen {time.monotonic() - started:.1f} s "
              f"after registering it: {last}")
        assert me["held"] == [uri] and last and last["hosts"] == 1, view
        assert "OpenStack unreachable" not in last["summary"]
        assert "pass (" in replica.log.read_text()
    finally:
        _unregister(replica.url, admin, uri)
        replica.stop()


def test_the_command_line_through_the_api_with_the_users_own_cloud(replica, lab):
    """``--url`` with no $OS_TOKEN: the token is issued for the user's clouds.yaml
    cloud (``lab``: a member), as the openstack command would; reads pass, a
    write is refused with the API's 403, and the token is never printed."""
    env = {k: v for k, v in os.environ.items() if k != "OS_TOKEN"}
    env.update({"OS_CLOUD": "lab", "OS_ONBOARD_URL": replica.url,
                "OS_ONBOARD_STATE_URL": "sqlite:////nonexistent/never-used.db"})

    def cli(*args):
        return subprocess.run([BIN, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    listed = cli("inventory", "list", "--limit", "3", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    jobs = cli("job", "list", "--limit", "3", "-f", "json")
    assert jobs.returncode == 0, jobs.stderr
    refused = cli("host", "add", "qemu+ssh://member-may-not.invalid/system")
    assert refused.returncode != 0 and "403" in refused.stderr
    assert "os_onboard:hosts:create" in refused.stderr
    # the CLI's own token is not known here: Keystone's are Fernet (gAAAAA...)
    assert token("lab").startswith("gAAAAA")
    assert all("gAAAAA" not in p.stdout + p.stderr for p in (listed, jobs, refused))
