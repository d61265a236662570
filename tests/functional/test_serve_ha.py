"""Three ``os-onboard serve`` replicas share the managed hosts through tooz on the
lab's etcd; one killed with -9 has its hosts taken over within 30 s (issue 15).

The takeover time (kill to the survivors holding every host, as /v1/workers
shows) is printed, not asserted beyond the issue's 30 s bound: it is the
etcd lease (lease_ttl, 10 s here) plus one heartbeat.
"""

import json
import subprocess
import time
import uuid

from tests.functional.test_serve import BIN, Replica, http, token

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
