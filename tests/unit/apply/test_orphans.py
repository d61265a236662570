"""Orphans (apply/orphans.py, ``os-onboard cleanup``) and the plan naming them.

An adopted server deleted through Nova's API, or an apply abandoned before
its Nova records: the ports and volume records os-onboard made stay behind,
the ports holding the guest's MAC. The world is test_runner's (a real plan
and apply against the shipped fake cloud).
"""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from os_onboard.apply import orphans as orphans_mod
from os_onboard.apply.orphans import find_orphans, remove_orphans
from os_onboard.apply.steps import DISK_KEY, PORT_DESCRIPTION
from os_onboard.cli import cleanup as cleanup_cli
from os_onboard.cli.main import main
from os_onboard.plan.model import MARKER_KEY
from tests.unit.apply.test_runner import (
    CINDER_HOST,
    MAC1,
    MAC2,
    UUID1,
    UUID2,
    World,
    guest,
    nic,
    port,
    vm1,
)

GONE = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def world(tmp_path, monkeypatch):
    return World(tmp_path, monkeypatch)


def _nova_deletes(world: World, uuid: str) -> None:
    """What Nova's delete does to an adopted server's records (as the fake holds
    them): the instance goes, ports it did not create are unbound (device_id
    cleared), its volumes are detached; Placement keeps the allocation when the
    compute never heard of the instance (a purge, a fake-driver host)."""
    del world.cloud.servers_[uuid]
    for p in world.cloud.ports_:
        if p["device_id"] == uuid:
            p.update(device_id="", device_owner="", host="", vif_type="unbound")
    for volume in world.cloud.volumes_.values():
        if volume["metadata"].get(DISK_KEY, "").startswith(uuid):
            volume.update(status="available", attach_status="detached")
    world.cloud.attachments_ = {k: a for k, a in world.cloud.attachments_.items()
                                if a["instance"] != uuid}


def test_a_server_deleted_through_nova_leaves_orphans_and_cleanup_removes_them(world):
    plan_id, plan = world.plan(vm1())
    assert world.apply(plan_id, plan)["lab-vm1"].status == "adopted"
    assert find_orphans(world.cloud, older_than=0) == []  # adopted: nothing is an orphan

    _nova_deletes(world, UUID1)
    found = find_orphans(world.cloud, older_than=0)
    assert sorted((o.kind, o.server) for o in found) == [
        ("allocation", UUID1), ("port", ""), ("port", ""), ("volume", UUID1)]
    ports = {o.id for o in found if o.kind == "port"}
    assert ports == {p["id"] for p in world.cloud.ports_}
    assert any(MAC1 in o.detail for o in found) and any(MAC2 in o.detail for o in found)

    before = list(world.cloud.calls)
    remove_orphans(world.cloud, found)
    assert {o.status for o in found} == {"removed"}
    assert world.cloud.ports_ == [] and world.cloud.volumes_ == {} and world.cloud.allocs == {}
    writes = [c for c in world.cloud.calls[len(before):] if c in (
        "delete_port", "unmanage_volume", "reset_volume_detached", "delete_allocations")]
    assert sorted(writes) == ["delete_allocations", "delete_port", "delete_port",
                              "unmanage_volume"]  # available: no reset needed
    assert find_orphans(world.cloud, older_than=0) == []

    # The same guest, defined anew (new UUID, same MACs): its plan is not blocked.
    world.cloud.manageable.clear()
    _plan_id, again = world.plan(guest("lab-vm1", UUID2, nic(MAC1, "192.168.150.11"),
                                       nic(MAC2, "192.168.150.12")))
    assert again.vms[0].blocked == []


def test_an_abandoned_apply_leaves_orphans_that_cleanup_releases_without_a_delete(world):
    """Ports and an in-use volume record made for a UUID Nova never got."""
    plan_id, plan = world.plan(vm1())
    world.cloud.fail("helper:adopt", status=None, times=99)  # the Nova step never succeeds
    world.apply(plan_id, plan)
    assert UUID1 not in world.cloud.servers_
    [volume] = world.cloud.volumes_.values()
    assert volume["status"] == "in-use" and len(world.cloud.ports_) == 2

    found = find_orphans(world.cloud, older_than=0)
    assert sorted((o.kind, o.server) for o in found) == [
        ("port", UUID1), ("port", UUID1), ("volume", UUID1)]
    remove_orphans(world.cloud, found)
    assert world.cloud.ports_ == [] and world.cloud.volumes_ == {}
    # marked detached in Cinder's database first, then unmanaged; never a delete
    calls = world.cloud.calls
    assert calls.index("reset_volume_detached") < calls.index("unmanage_volume")
    assert not [c for c in calls if "delete_volume" in c or "delete_attachment" in c]


def test_records_younger_than_the_grace_period_are_left_alone(world):
    """Another operator's apply may be writing them now (no server yet)."""
    world.cloud.ports_.append({**port("p-new", MAC1, device_id=GONE,
                                      description=PORT_DESCRIPTION.format(name="vm")),
                               "created_at": world.cloud.now()})
    assert find_orphans(world.cloud) == []  # default: 10 minutes
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert [o.id for o in find_orphans(world.cloud, now=later)] == ["p-new"]
    assert [o.id for o in find_orphans(world.cloud, older_than=0)] == ["p-new"]


def test_what_is_not_an_orphan(world):
    cloud = world.cloud
    cloud.add_server(UUID1, "lab-vm1", host="compute-hv1", node="hv1")
    mine = PORT_DESCRIPTION.format(name="lab-vm1")
    cloud.ports_ += [port("p-live", MAC1, device_id=UUID1, description=mine),  # server exists
                     port("p-theirs", MAC2, device_id=GONE, description="someone's NIC")]
    cloud.volumes_["v-live"] = {"id": "v-live", "name": "d", "status": "in-use",
                                "metadata": {DISK_KEY: f"{UUID1}/vdb"}}
    cloud.volumes_["v-theirs"] = {"id": "v-theirs", "name": "d", "status": "available",
                                  "metadata": {}}
    # recorded for a gone server, but attached to one that exists (moved on by a person)
    cloud.volumes_["v-moved"] = {"id": "v-moved", "name": "d", "status": "in-use",
                                 "metadata": {DISK_KEY: f"{GONE}/vdb"}}
    cloud.attachments_["a1"] = {"id": "a1", "volume_id": "v-moved", "instance": UUID1,
                                "connector": {}, "status": "attached"}
    cloud.put_allocations(UUID1, "rp-hv1", {"VCPU": 1}, "p", "u", None)
    cloud.put_allocations("mig-1", "rp-hv1", {"VCPU": 1}, "p", "u", None)
    cloud.allocs["mig-1"]["consumer_type"] = "MIGRATION"  # a resize Nova has not confirmed
    assert find_orphans(cloud, older_than=0) == []


def test_the_plan_names_an_orphan_port_and_what_removes_it(world):
    mine = PORT_DESCRIPTION.format(name="lab-vm1")
    world.cloud.ports_ += [port("p-orphan", MAC1, "192.168.150.11", device_id=GONE,
                                description=mine),
                           port("p-theirs", MAC2, device_id="", description="a router")]
    _plan_id, plan = world.plan(vm1())
    [orphan, theirs] = plan.vms[0].blocked
    assert orphan.startswith(f"MAC {MAC1} is already used by Neutron port p-orphan of {GONE}")
    assert "orphan of os-onboard" in orphan and "'os-onboard cleanup' removes it" in orphan
    assert theirs == f"MAC {MAC2} is already used by Neutron port p-theirs"

    remove_orphans(world.cloud, find_orphans(world.cloud, older_than=0))
    assert [p["id"] for p in world.cloud.ports_] == ["p-theirs"]


def test_a_failed_removal_is_reported_and_the_rest_goes_on(world):
    mine = PORT_DESCRIPTION.format(name="lab-vm1")
    world.cloud.ports_ += [port("p1", MAC1, device_id=GONE, description=mine),
                           port("p2", MAC2, device_id=GONE, description=mine)]
    world.cloud.fail("delete_port", status=503)
    found = remove_orphans(world.cloud, find_orphans(world.cloud, older_than=0))
    assert [(o.id, o.status) for o in found] == [("p1", "failed"), ("p2", "removed")]
    assert "503" in found[0].error


@pytest.fixture
def cli_cloud(world, monkeypatch, tmp_path):
    # cliff's App adds a console handler to the root logger on every run: drop it after
    # the test, so it does not write to a later test's (closed) stderr (see test_cli)
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield _cli_world(world, monkeypatch, tmp_path)
    root.handlers[:] = before
    root.setLevel(level)


def _cli_world(world, monkeypatch, tmp_path):
    monkeypatch.setattr(cleanup_cli, "cloud", lambda app: world.cloud)
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", f"sqlite:///{tmp_path}/cli.db")
    mine = PORT_DESCRIPTION.format(name="lab-vm1")
    world.cloud.ports_.append(port("p-orphan", MAC1, device_id=GONE, description=mine))
    world.cloud.volumes_["v-orphan"] = {
        "id": "v-orphan", "name": "lab-vm1-vdb", "status": "in-use", "host": CINDER_HOST,
        "metadata": {DISK_KEY: f"{GONE}/vdb", MARKER_KEY: "host=x"}}
    return world.cloud


def test_cleanup_dry_run_lists_and_removes_nothing(cli_cloud, capsys):
    assert main(["cleanup", "--dry-run", "-f", "value", "-c", "Kind", "-c", "ID",
                 "-c", "Status"]) == 0
    out, err = capsys.readouterr()
    assert out.split("\n") == ["port p-orphan orphan", "volume v-orphan orphan", ""]
    assert "2 orphan(s) found" in err
    assert len(cli_cloud.ports_) == 1 and "v-orphan" in cli_cloud.volumes_


def test_cleanup_removes_and_a_second_run_finds_nothing(cli_cloud, capsys):
    assert main(["cleanup", "-f", "value", "-c", "Kind", "-c", "Status"]) == 0
    assert capsys.readouterr().out.split("\n") == ["port removed", "volume removed", ""]
    assert cli_cloud.ports_ == [] and cli_cloud.volumes_ == {}
    assert main(["cleanup", "-f", "value"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 orphan(s) removed" in err


def test_cleanup_exits_1_when_a_removal_fails(cli_cloud, capsys):
    cli_cloud.fail("unmanage_volume", status=400)
    assert main(["cleanup", "-f", "value", "-c", "Kind", "-c", "Status"]) == 1
    assert capsys.readouterr().out.split("\n") == ["port removed", "volume failed", ""]


def test_default_grace_is_ten_minutes():
    assert orphans_mod.DEFAULT_OLDER_THAN == 600
