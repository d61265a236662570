"""The endpoints the dashboard's panels needed: per-host last discovery, host
checks, VM search and flags, a snapshot's conflicts and problems, plans
listed, drift policies (in-process, 'noauth' roles from X-Roles, SQLite)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import webob

from os_onboard.inventory.conflicts import find_conflicts
from os_onboard.inventory.models import (
    Disk,
    DiskIdentifiers,
    Host,
    HostInventory,
    HostStatus,
    Inventory,
    IpAddress,
    Nic,
    PowerState,
    Problem,
    Severity,
    Vm,
)
from os_onboard.plan.model import Plan
from os_onboard.serve.api import Service
from os_onboard.serve.app import make_app
from os_onboard.serve.config import new_conf
from os_onboard.state import StateStore
from os_onboard.state.journal import Journal

ADMIN = {"X-Roles": "admin,member,reader"}
MEMBER = {"X-Roles": "member,reader"}
HV1, HV2, HV3 = (f"qemu+ssh://hv{i}/system" for i in (1, 2, 3))


@pytest.fixture
def store(tmp_path: Any) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path}/s.db")


@pytest.fixture
def app(store: StateStore) -> Any:
    return make_app(Service(store), new_conf(overrides={"api.auth_strategy": "noauth"}))


def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None,
         body: dict[str, Any] | None = None) -> tuple[webob.Response, Any]:
    req = webob.Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp, (json.loads(resp.body) if resp.body else None)


def _vm(name: str, mac: str, ip: str = "", wwn: str = "", serial: str = "",
        path: str = "") -> Vm:
    nic = Nic(mac=mac, source_kind="network", network="default",
              addresses=[IpAddress(family="ipv4", address=ip, source="dhcp-lease")] if ip else [])
    disk = Disk(device="disk", target="vda", source_kind="file", source=path or None,
                identifiers=DiskIdentifiers(wwn=wwn or None, serial=serial or None))
    return Vm(uuid=f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}", name=name,
              power_state=PowerState.RUNNING, vcpus=1, memory_mib=512, nics=[nic],
              disks=[disk])


def _host(uri: str, vms: list[Vm], duration_ms: int = 0, at: datetime | None = None,
          problems: list[Problem] | None = None) -> HostInventory:
    return HostInventory(host=Host(uri=uri, kind="libvirt"), vms=vms, duration_ms=duration_ms,
                         discovered_at=at or datetime.now(UTC), problems=problems or [])


def _save(store: StateStore, *hosts: HostInventory) -> int:
    inventory = Inventory(hosts=list(hosts))
    inventory.conflicts = find_conflicts(inventory)
    return store.save_snapshot(inventory)


def test_each_host_shows_its_own_last_discovery_not_the_newest_snapshots(app, store):
    for uri in (HV1, HV2, HV3):
        call(app, "POST", "/v1/hosts", ADMIN, {"uri": uri})
    old = datetime.now(UTC) - timedelta(hours=2)
    first = _save(store, _host(HV1, [_vm("a", "52:54:00:00:00:01")], 900, old),
                  _host(HV2, [_vm("b", "52:54:00:00:00:02")], 1200, old))
    second = _save(store, _host(HV1, [], 80))  # a discovery of hv1 alone
    _, body = call(app, "GET", "/v1/hosts", MEMBER)
    last = {h["name"]: h["last_discovery"] for h in body["hosts"]}
    assert last["hv1"]["snapshot"] == second and last["hv1"]["duration_ms"] == 80
    assert last["hv1"]["vms"] == 0
    # hv2 is not in the newest snapshot: its own discovery is still found
    assert last["hv2"]["snapshot"] == first and last["hv2"]["duration_ms"] == 1200
    assert last["hv2"]["discovered_at"] == old.isoformat() and last["hv2"]["vms"] == 1
    assert last["hv3"] is None  # registered, never discovered
    _, one = call(app, "GET", "/v1/hosts/hv2", MEMBER)
    assert one["host"]["last_discovery"]["snapshot"] == first


def test_a_host_check_reads_through_the_driver_within_its_timeout(app, store):
    call(app, "POST", "/v1/hosts", ADMIN, {"uri": "test:///default", "name": "t"})
    # a port nothing listens on: refused at once, reported, not raised
    call(app, "POST", "/v1/hosts", ADMIN, {"uri": "qemu+tcp://127.0.0.1:9/system",
                                           "name": "down"})
    resp, body = call(app, "POST", "/v1/hosts/t/check", MEMBER, {})  # a reader may check
    assert resp.status_int == 200, body
    check = body["check"]
    assert check["ok"] is True and check["status"] == "ok" and check["error"] is None
    assert check["vms"] >= 1 and isinstance(check["latency_ms"], int)
    assert store.list_snapshots() == []  # saved nowhere
    started = time.monotonic()
    _, body = call(app, "POST", "/v1/hosts/down/check", MEMBER, {"timeout": 5})
    assert time.monotonic() - started < 6
    assert body["check"]["ok"] is False and body["check"]["status"] == "unreachable"
    assert body["check"]["error"]
    for bad in ({"timeout": 0}, {"timeout": 31}, {"timeout": "5"}):
        resp, body = call(app, "POST", "/v1/hosts/t/check", MEMBER, bad)
        assert resp.status_int == 400 and "timeout" in body["error"]["message"]
    assert call(app, "POST", "/v1/hosts/nope/check", MEMBER, {})[0].status_int == 404


def test_vms_are_searched_by_mac_ip_and_disk_ids_and_carry_their_flags(app, store):
    dup = "52:54:00:aa:bb:01"
    sid = _save(
        store,
        _host(HV1, [_vm("web", dup, ip="10.1.0.5", wwn="0x5000c500a1b2c3d4"),
                    _vm("db", "52:54:00:aa:bb:02", serial="SER-DB-1",
                        path="/var/lib/libvirt/images/db.qcow2")],
              problems=[Problem(severity=Severity.WARNING, code="xml-odd", message="odd",
                                host=HV1, vm="db")]),
        _host(HV2, [_vm("web-copy", dup), _vm("quiet", "52:54:00:aa:bb:03")]))

    def names(query: str) -> list[str]:
        _, body = call(app, "GET", f"/v1/snapshots/{sid}/vms?{query}", MEMBER)
        return [v["name"] for v in body["vms"]]

    assert names("q=52:54:00:AA:BB:01") == ["web", "web-copy"]  # any case
    assert names("q=10.1.0.5") == ["web"]
    assert names("q=5000c500a1b2") == ["web"]
    assert names("q=ser-db") == ["db"]
    assert names("q=images/db.qcow2") == ["db"]
    assert names("q=nothing-like-it") == []
    assert names("flagged=1") == ["web", "db", "web-copy"]
    assert names("q=52:54:00:aa:bb&host=" + HV2.replace("+", "%2B")) == ["web-copy",
                                                                          "quiet"]
    _, body = call(app, "GET", f"/v1/snapshots/{sid}/vms?q=10.1.0&flags=1", MEMBER)
    (web,) = body["vms"]
    assert web["matched"] == ["ip"]
    assert [c["kind"] for c in web["conflicts"]] == ["duplicate-mac"]
    assert web["conflicts"][0]["value"] == dup and web["problems"] == []
    _, body = call(app, "GET", f"/v1/snapshots/{sid}/vms?name=db&flags=1", MEMBER)
    assert [p["code"] for p in body["vms"][0]["problems"]] == ["xml-odd"]
    # without flags a record stays the inventory's VM (the CLI reads it back into one)
    _, body = call(app, "GET", f"/v1/snapshots/{sid}/vms?q=10.1.0", MEMBER)
    assert "conflicts" not in body["vms"][0] and "matched" not in body["vms"][0]
    # search pages like any listing
    _, page = call(app, "GET", f"/v1/snapshots/{sid}/vms?q=52:54&limit=3", MEMBER)
    _, rest = call(app, "GET", page["next"].removeprefix("http://localhost"), MEMBER)
    assert [v["name"] for v in page["vms"] + rest["vms"]] == ["web", "db", "web-copy",
                                                              "quiet"]


def test_a_snapshots_conflicts_and_problems_page(app, store):
    hosts = [_host(f"qemu+ssh://hv{i}/system", [_vm(f"vm{i}", f"52:54:00:00:00:{i % 2:02x}")],
                   problems=[Problem(severity=Severity.ERROR if i == 3 else Severity.WARNING,
                                     code="c", message=f"m{i}", host=f"qemu+ssh://hv{i}/system")])
             for i in range(5)]
    _save(store, *hosts)
    resp, body = call(app, "GET", "/v1/snapshots/latest/conflicts?limit=1", MEMBER)
    assert resp.status_int == 200 and len(body["conflicts"]) == 1 and "next" in body
    got, path = body["conflicts"], body["next"].removeprefix("http://localhost")
    while path:  # a full page has a next link; the empty one after the last has none
        _, rest = call(app, "GET", path, MEMBER)
        got, path = got + rest["conflicts"], rest.get("next", "").removeprefix(
            "http://localhost")
    assert sorted(c["value"] for c in got) == ["52:54:00:00:00:00", "52:54:00:00:00:01"]
    assert {len(c["members"]) for c in got} == {2, 3}
    _, body = call(app, "GET", "/v1/snapshots/latest/conflicts?kind=duplicate-uuid", MEMBER)
    assert body["conflicts"] == []
    _, body = call(app, "GET", "/v1/snapshots/latest/problems?severity=error", MEMBER)
    assert [p["message"] for p in body["problems"]] == ["m3"]
    _, body = call(app, "GET", "/v1/snapshots/latest/problems?limit=2&marker=4", MEMBER)
    assert [p["message"] for p in body["problems"]] == ["m4"]
    resp, body = call(app, "GET", "/v1/snapshots/latest/problems?marker=x", MEMBER)
    assert resp.status_int == 400 and set(body["error"]) >= {"code", "message"}
    assert call(app, "GET", "/v1/snapshots/99/conflicts", MEMBER)[0].status_int == 404


def test_plans_are_listed_newest_first_and_page(app, store):
    journal = Journal(store)
    ids = [journal.save_plan(Plan(snapshot_id=7, cloud_fingerprint="f")) for _ in range(3)]
    journal.record(ids[0], "vm-1", "server", "started")
    seen, path = [], "/v1/plans?limit=2"
    while path:
        resp, body = call(app, "GET", path, MEMBER)
        assert resp.status_int == 200
        seen += body["plans"]
        path = body.get("next", "").removeprefix("http://localhost")
    assert [p["id"] for p in seen] == ids[::-1]
    assert [p["started"] for p in seen] == [False, False, True]
    assert seen[0]["snapshot_id"] == 7 and seen[0]["created_at"].endswith("+00:00")
    assert call(app, "GET", "/v1/plans?marker=x", MEMBER)[0].status_int == 400
    assert call(app, "GET", "/v1/plans/latest", MEMBER)[1]["id"] == ids[-1]


def test_drift_policies_say_what_the_server_uses_and_the_mappings_groups(app, store):
    resp, body = call(app, "GET", "/v1/drift-policies", MEMBER)
    assert resp.status_int == 200
    assert set(body["server"]["kinds"].values()) == {"report"}
    assert "vm-gone" in body["server"]["kinds"]
    assert body["mapping"] is None and "no mapping" in body["note"]
    for uri in (HV1, HV2):
        call(app, "POST", "/v1/hosts", ADMIN, {"uri": uri})
    Service(store).jobs.create("plan", {"mapping": {"policies": [
        {"hosts": "*hv1*", "policy": "tolerate", "kinds": {"vm-gone": "report"}},
        {"hosts": "qemu+ssh://*", "policy": "report"}]}, "snapshot": None, "vms": []})
    _, body = call(app, "GET", "/v1/drift-policies", MEMBER)
    groups = body["mapping"]["groups"]
    assert body["mapping"]["source"].startswith("plan job ") and body["note"] is None
    assert groups[0]["kinds"]["vm-gone"] == "report"
    assert groups[0]["kinds"]["power-changed"] == "tolerate"
    # first match wins: hv1 is the first group's only
    assert groups[0]["registered_hosts"] == ["hv1"] and groups[1]["registered_hosts"] == ["hv2"]


def test_the_new_routes_are_documented_with_reader_rules(app):
    from os_onboard.serve.api import ROUTES
    from os_onboard.serve.policy import rules
    _, doc = call(app, "GET", "/v1/openapi.json")
    for path, method in [("/v1/hosts/{host}/check", "post"), ("/v1/plans", "get"),
                         ("/v1/snapshots/{snapshot}/conflicts", "get"),
                         ("/v1/snapshots/{snapshot}/problems", "get"),
                         ("/v1/drift-policies", "get")]:
        assert "x-policy-rule" in doc["paths"][path][method]
    defaults = {r.name: r.check_str for r in rules(ROUTES)}
    assert defaults["os_onboard:hosts:check"] == "rule:os_onboard:reader"
    assert defaults["os_onboard:plans:list"] == "rule:os_onboard:reader"
    assert defaults["os_onboard:hosts:create"] == "rule:os_onboard:admin"
    assert call(app, "POST", "/v1/hosts/x/check", {})[0].status_int == 401
    assert HostStatus.UNREACHABLE.value in str(doc["paths"]["/v1/hosts/{host}/check"])
