"""Three ``os-onboard serve`` replicas share the managed hosts through tooz on the
lab's etcd; one killed with -9 has its hosts taken over within 30 s (issue 15).

The takeover time (kill to the survivors holding every host, as /v1/workers
shows) is printed, not asserted beyond the issue's 30 s bound: it is the
etcd lease (lease_ttl, 10 s here) plus one heartbeat.
"""

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from tests.functional.test_serve import BIN, Replica, http, token

#: a run killed mid-test must not leave hosts the replicas here would share
pytestmark = pytest.mark.usefixtures("empty_serve_registry")

HOSTS = 12


def _workers(replica, tok):
    status, _, body = http("GET", f"{replica.url}/v1/workers", tok)
    assert status == 200, body
    return body


def _settled(view, members, hosts):
    held = [h for m in view["members"] for h in m["held"]]
    return (sorted(m["member"] for m in view["members"]) == sorted(members)
            and not view["unheld"] and set(held) >= hosts and len(held) == len(set(held))
            and all(sorted(m["held"]) == m["ring"] for m in view["members"]))


def _wait(replica, tok, members, hosts, timeout):
    started, view = time.monotonic(), None
    while time.monotonic() - started < timeout:
        view = _workers(replica, tok)
        if _settled(view, members, hosts):
            return time.monotonic() - started, view
        time.sleep(0.2)
    raise AssertionError(f"not settled on {members} after {timeout} s: {view}")


def test_three_replicas_share_hosts_and_survive_a_kill_9(lab, tmp_path):
    admin = token("lab-admin")
    group, tag = f"test-ha-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    names = [f"ha-{tag}-{i}" for i in range(3)]
    replicas = []
    registered = []
    try:
        replicas.append(Replica(lab, tmp_path, names[0], group))
        for i in range(HOSTS):
            uri = f"qemu+ssh://ha-{tag}-{i}.invalid/system"
            status, _, body = http("POST", f"{replicas[0].url}/v1/hosts", admin,
                                   {"uri": uri, "name": f"ha-{tag}-{i}"})
            assert status == 201, body
            registered.append(uri)
        replicas += [Replica(lab, tmp_path, n, group) for n in names[1:]]
        hosts = {h for h in registered}
        _, view = _wait(replicas[0], admin, names, hosts, 30)
        mine = {m["member"]: {h for h in m["held"] if h in hosts} for m in view["members"]}
        assert all(mine[n] for n in names), mine  # 12 hosts over 3 members: each has some
        # os-onboard workers (outside the group) shows the same split
        out = subprocess.run([BIN, "workers", "--config", lab["LAB_ONBOARD_SERVE_CONFIG"],
                              "--config", str(replicas[0].override), "-f", "json"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        rows = {r["Member"]: set(r["Held"].split()) for r in json.loads(out)}
        assert {m: rows[m] & hosts for m in names} == mine
        victim = replicas.pop(1)
        victim.kill9()
        killed_at = time.monotonic()
        took, after = _wait(replicas[0], admin, [names[0], names[2]], hosts, 40)
        print(f"\ntakeover after kill -9 of {names[1]}: {took:.1f} s "
              f"({len(mine[names[1]])} of {HOSTS} hosts moved)")
        assert took <= 30
        now = {m["member"]: {h for h in m["held"] if h in hosts} for m in after["members"]}
        for survivor in (names[0], names[2]):  # consistent hashing: a survivor keeps its own
            assert mine[survivor] <= now[survivor]
        assert now[names[0]] | now[names[2]] == hosts
        assert time.monotonic() - killed_at < 45
        # the other survivor sees the same
        assert _settled(_workers(replicas[1], admin), [names[0], names[2]], hosts)
    finally:
        if replicas:
            for uri in registered:
                http("DELETE", f"{replicas[0].url}/v1/hosts/{uri.split('//')[1].split('.')[0]}",
                     admin)
        for r in replicas:
            r.stop()


def test_a_discovery_job_survives_its_replicas_kill_9(lab, tmp_path):
    """The replica running a job is killed -9 mid-job: another claims it once its
    heartbeat is stale (job_stale_after, 10 s) and reads only the hosts left."""
    from os_onboard.drivers.libvirt.testnode import write_estate

    admin = token("lab-admin")
    group, tag = f"test-job-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    replicas = [Replica(lab, tmp_path, f"job-{tag}-{i}", group) for i in range(2)]
    uris = [f"test://{p}" for p in write_estate(tmp_path / "estate", 40, 150)]
    registered = []
    try:
        for i, uri in enumerate(uris):
            status, _, body = http("POST", f"{replicas[0].url}/v1/hosts", admin,
                                   {"uri": uri, "name": f"job-{tag}-{i}"})
            assert status == 201, body
            registered.append(f"job-{tag}-{i}")
        status, headers, body = http("POST", f"{replicas[0].url}/v1/discoveries", admin,
                                     {"hosts": registered})
        assert status == 202
        job_path = headers["Location"].split(str(replicas[0].port), 1)[1]
        deadline = time.monotonic() + 120
        job = body["job"]
        while not (job["state"] == "running" and job["progress"].get("done", 0) >= 8):
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
            job = http("GET", f"{replicas[0].url}{job_path}", admin)[2]["job"]
        owner = next(r for r in replicas if r.override.stem == job["owner"])
        survivor = next(r for r in replicas if r is not owner)
        done_at_kill = job["progress"]["done"]
        owner.kill9()
        killed = time.monotonic()
        while job["state"] in ("queued", "running"):
            assert time.monotonic() - killed < 120, job
            time.sleep(0.2)
            job = http("GET", f"{survivor.url}{job_path}", admin)[2]["job"]
        print(f"\njob {job['id']}: {done_at_kill}/40 hosts read when its replica was killed "
              f"-9; {job['state']} by {job['owner']} (attempt {job['attempts']}) "
              f"{time.monotonic() - killed:.1f} s later")
        assert job["state"] == "succeeded", job
        assert job["owner"] == survivor.override.stem and job["attempts"] == 2
        assert job["result"]["hosts"] == 40 and job["result"]["vms"] == 40 * 150
        left = re.search(r"resumed \(attempt 2\): (\d+) of 40 hosts left",
                         survivor.log.read_text())
        assert left and 0 < int(left[1]) <= 40 - done_at_kill  # only what was not read
    finally:
        alive = next((r for r in replicas if r.proc.poll() is None), None)
        for name in registered if alive else []:
            http("DELETE", f"{alive.url}/v1/hosts/{name}", admin)
        for r in replicas:
            r.stop()


def test_watchers_fail_over_after_a_kill_9(lab, tmp_path):
    """Two watching replicas share hosts A and B of the lab; the one killed -9 has its
    host watched by the other: the survivor's next pass covers both."""
    admin = token("lab-admin")
    group, tag = f"test-watch-ha-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    names = [f"wha-{tag}-{i}" for i in range(2)]
    extra = "[watch]\nenabled = true\ninterval = 10\n"
    uris = [lab["LAB_HOST_A_URI"], lab["LAB_HOST_B_URI"]]
    replicas = [Replica(lab, tmp_path, n, group, extra=extra) for n in names]
    registered = []
    try:
        for uri in uris:  # (left over by a failed run of another test: take it back)
            for h in http("GET", f"{replicas[0].url}/v1/hosts?limit=1000", admin)[2]["hosts"]:
                if h["uri"] == uri:
                    http("DELETE", f"{replicas[0].url}/v1/hosts/{h['id']}", admin)
        for i, uri in enumerate(uris):
            status, _, body = http("POST", f"{replicas[0].url}/v1/hosts", admin,
                                   {"uri": uri, "name": f"wha-{tag}-h{i}"})
            assert status == 201, body
            registered.append(body["host"]["id"])
        hosts = set(uris)

        def passes_cover(replica, members):
            view = _workers(replica, admin)
            if not _settled(view, members, hosts):
                return None
            got = {m["member"]: m for m in view["members"]}
            if all(not got[m]["held"] or (got[m]["last_pass"] and  # none held: no pass
                                          got[m]["last_pass"]["hosts"] == len(got[m]["held"]))
                   for m in members):
                return got
            return None

        started, got = time.monotonic(), None
        while got is None and time.monotonic() - started < 90:
            time.sleep(0.5)
            got = passes_cover(replicas[0], names)
        assert got, _workers(replicas[0], admin)
        victim_name = max(names, key=lambda n: len(got[n]["held"]))  # one holding a host
        victim_held = len(got[victim_name]["held"])
        victim = replicas[names.index(victim_name)]
        survivor_name = next(n for n in names if n != victim_name)
        survivor = replicas[names.index(survivor_name)]
        victim.kill9()
        killed = time.monotonic()
        got = None
        while got is None and time.monotonic() - killed < 60:
            time.sleep(0.5)
            got = passes_cover(survivor, [survivor_name])
            if got and got[survivor_name]["last_pass"]["at"] < time.time() - (
                    time.monotonic() - killed):
                got = None  # a pass from before the kill
        took = time.monotonic() - killed
        print(f"\nwatchers: {victim_name} (watching {victim_held} of the 2 hosts) killed -9; "
              f"{survivor_name} passed over both hosts {took:.1f} s later: "
              f"{got and got[survivor_name]['last_pass']}")
        assert got and got[survivor_name]["held"] == sorted(uris)
        assert got[survivor_name]["last_pass"]["hosts"] == 2
        replicas.remove(victim)
    finally:
        alive = next((r for r in replicas if r.proc.poll() is None), None)
        for host_id in registered if alive else []:
            http("DELETE", f"{alive.url}/v1/hosts/{host_id}", admin)
        for r in replicas:
            r.stop()


HOLDER = r"""
import sys, time
from os_onboard.coordination.service import Membership
from os_onboard.state import StateStore
from os_onboard.state.hosts import HostRegistry

m = Membership(sys.argv[1], sys.argv[2], sys.argv[3], HostRegistry(StateStore(sys.argv[4])),
               heartbeat=1, lease_ttl=5).start()
with m.lock(sys.argv[5]) as taken:
    print("taken" if taken else "refused", flush=True)
    time.sleep(600)
"""


def test_an_apply_lock_is_exclusive_and_freed_by_a_kill_9(lab, tmp_path):
    """tooz locks on the lab's etcd: a plan's apply lock held by one replica is refused
    to another, and comes free when the holder is killed -9 (its etcd lease runs out)."""
    import sys

    from os_onboard.coordination.service import Membership
    from os_onboard.state import StateStore
    from os_onboard.state.hosts import HostRegistry

    url = "etcd3+" + lab["LAB_ETCD_URL"]
    group, lock = f"test-lock-{uuid.uuid4().hex[:8]}", f"apply/plan-{uuid.uuid4().hex[:8]}"
    state_url = f"sqlite:///{tmp_path}/s.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, "holder", group, state_url,
                               lock], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    me = Membership(url, "other", group, HostRegistry(StateStore(state_url)), heartbeat=1,
                    lease_ttl=5).start()
    try:
        assert holder.stdout.readline().strip() == "taken"
        with me.lock(lock, blocking=False) as taken:
            assert not taken  # the same plan is never applied twice at once
        time.sleep(7)  # longer than the lease: a long apply keeps its lock (heartbeats)
        with me.lock(lock, blocking=False) as taken:
            assert not taken
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
        killed, taken = time.monotonic(), False
        while not taken and time.monotonic() - killed < 30:
            with me.lock(lock, blocking=False) as taken:
                pass
            time.sleep(0.2)
        print(f"\napply lock free {time.monotonic() - killed:.1f} s after its holder's kill -9 "
              "(lease 5 s)")
        assert taken
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        me.stop()
