"""Drift queued while OpenStack cannot take it, applied when it can (state store real,
OpenStack and the tolerator faked)."""

import pytest

from os_onboard.exceptions import CloudError, TemporaryCloudError
from os_onboard.inventory.models import HostStatus, Inventory
from os_onboard.mapping.model import PolicyGroup
from os_onboard.reconcile.drift import AdoptedServer, Drift, DriftKind
from os_onboard.reconcile.passes import Stores, reconcile_pass
from os_onboard.reconcile.pending import Records, records_document, records_from_document
from os_onboard.reconcile.policy import parse_policies
from os_onboard.reconcile.tolerate import Outcome
from os_onboard.state import StateStore
from os_onboard.state.audit import AuditLog
from os_onboard.state.drift_queue import DriftQueue
from os_onboard.state.records_cache import RecordsCache
from tests.unit.reconcile.test_drift import HOSTS, UUID, host, server, vm

TOLERATE = parse_policies("tolerate", [])


class Cloud:
    """OpenStack's records of one server; ``down`` makes every read fail."""

    def __init__(self, node="hv-a"):
        self.node, self.down = node, False

    def read(self) -> Records:
        if self.down:
            raise TemporaryCloudError("list servers: Connection refused")
        return Records([server(node=self.node)], HOSTS, [])


class Tolerator:
    """Moves the record like the real one: instance first, then the allocation,
    which fails while ``placement_down``."""

    def __init__(self, cloud):
        self.cloud, self.placement_down, self.applied = cloud, False, []

    def apply(self, drift: Drift, policy: str) -> Outcome:
        self.applied.append((drift.kind, drift.after))
        if drift.kind is not DriftKind.HOST_CHANGED:
            return Outcome(drift, "reported", "not tolerated")
        self.cloud.node = drift.detail["node"]
        if self.placement_down:
            return Outcome(drift, "failed", "placement: Connection refused (the next pass retries)")
        return Outcome(drift, "tolerated", "moved")


@pytest.fixture
def world(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    cloud = Cloud()
    tolerator = Tolerator(cloud)
    stores = Stores(DriftQueue(store), AuditLog(store), RecordsCache(store))

    def run(inventory, policies=TOLERATE):
        return reconcile_pass(inventory, cloud.read, stores, "test", policies,
                              lambda records: tolerator)

    return cloud, tolerator, stores, run


ON_A = Inventory(hosts=[host("hv-a", vm()), host("hv-b")])
ON_B = Inventory(hosts=[host("hv-a"), host("hv-b", vm())])


def _unreachable(inventory, name):
    return Inventory(hosts=[h.model_copy(update={"status": HostStatus.UNREACHABLE, "vms": []})
                            if h.host.hostname == name else h for h in inventory.hosts])


def test_migration_seen_while_openstack_is_down_is_queued_then_applied(world):
    cloud, tolerator, stores, run = world
    assert run(ON_A).rows == []  # records read (and kept) while OpenStack answers
    cloud.down = True
    for _ in range(3):
        result = run(ON_B)
        assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "queued")]
        assert result.pending == 1 and "Connection refused" in result.retry
    assert tolerator.applied == []  # nothing written from records that may be stale
    [item] = stores.queue.items()
    assert (item.kind, item.detail, item.attempts) == ("host-changed", {
        "host": "compute-b", "node": "hv-b"}, 3)
    assert [e.action for e in stores.audit.entries()] == ["queued"]  # audited once
    cloud.down = False
    result = run(ON_B)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "tolerated")]
    assert (result.pending, result.retry, stores.queue.items()) == (0, "", [])
    assert cloud.node == "hv-b"


def test_toleration_failed_halfway_is_finished_by_a_later_pass(world):
    cloud, tolerator, stores, run = world
    tolerator.placement_down = True
    result = run(ON_B)
    assert [r[5] for r in result.rows] == ["failed"] and result.pending == 1
    assert cloud.node == "hv-b"  # the instance moved: the comparison alone sees no drift now
    tolerator.placement_down = False
    result = run(ON_B)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "tolerated")]
    assert "queued earlier" in result.rows[0][6]
    assert tolerator.applied == [(DriftKind.HOST_CHANGED, "compute-b/hv-b")] * 2
    assert stores.queue.items() == []
    assert run(ON_B).rows == []  # in sync: nothing applied again


def test_queued_move_is_dropped_once_the_vm_is_back_where_the_records_say(world):
    cloud, tolerator, stores, run = world
    run(ON_A)
    cloud.down = True
    run(ON_B)
    cloud.down = False
    result = run(ON_A)  # moved back before OpenStack returned
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "resolved")]
    assert tolerator.applied == [] and stores.queue.items() == []


def test_queued_move_is_kept_while_the_host_it_went_to_cannot_be_read(world):
    cloud, tolerator, _stores, run = world
    run(ON_A)
    cloud.down = True
    run(ON_B)
    cloud.down = False
    result = run(_unreachable(ON_B, "hv-b"))  # e.g. host B's libvirtd restarting
    assert result.rows == [] and result.pending == 1
    assert tolerator.applied == []
    result = run(ON_B)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "tolerated")]


def test_no_vm_gone_while_the_vms_host_cannot_be_read(world):
    cloud, tolerator, _stores, run = world
    result = run(_unreachable(ON_A, "hv-a"))
    assert result.rows == [] and tolerator.applied == []
    assert result.unread == ["qemu+ssh://hv-a/system"]
    assert result.summary().endswith("not read (nothing concluded from them): "
                                      "qemu+ssh://hv-a/system")
    cloud.down = True
    assert run(_unreachable(ON_A, "hv-a")).rows == []  # nor from the cached records
    cloud.down = False
    gone = run(Inventory(hosts=[host("hv-a"), host("hv-b")]))  # read, and not there
    assert [r[2] for r in gone.rows] == ["vm-gone"]


def test_drift_command_shows_the_queue_and_writes_nothing(world):
    cloud, tolerator, stores, run = world
    run(ON_A)
    cloud.down = True
    run(ON_B)
    before = stores.queue.items()
    result = run(ON_B, policies=None)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "unconfirmed"),
                                                  ("host-changed", "queued")]
    assert "1 attempt(s)" in result.rows[1][6]
    cloud.down = False
    result = run(ON_B, policies=None)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "reported")]
    assert stores.queue.items() == before and tolerator.applied == []


def test_openstack_down_before_any_records_were_read_is_an_error(world):
    cloud, _, stores, run = world
    cloud.down = True
    with pytest.raises(CloudError, match="no earlier records"):
        run(ON_B)
    assert stores.queue.items() == []


def test_records_survive_the_state_store():
    ported = AdoptedServer(uuid=UUID, name="web1", host="compute-a", node="hv-a",
                           status="ACTIVE", vcpus=2, ram=512,
                           ports=(("52:54:00:0b:01:01", ("10.0.0.5", "10.0.0.6"), "compute-a"),),
                           volume_devices=("/dev/vdb",))
    records = Records([ported], HOSTS, [{"node": "hv-a", "uuid": "p1"}])
    assert records_from_document(records_document(records)) == records


def test_nic_drifts_of_one_vm_are_queued_apart(world):
    cloud, _, stores, run = world
    run(ON_A)
    cloud.down = True
    two_nics = vm(macs=(("52:54:00:0b:01:01", "192.168.150.11"),
                        ("52:54:00:0b:01:02", None), ("52:54:00:0b:01:03", None)))
    run(Inventory(hosts=[host("hv-a", two_nics), host("hv-b")]))
    assert sorted(i.key for i in stores.queue.items()) == [
        "nic-added:52:54:00:0b:01:02", "nic-added:52:54:00:0b:01:03"]


def test_a_reporting_pass_leaves_a_half_done_move_queued(world):
    _cloud, tolerator, stores, run = world
    tolerator.placement_down = True
    run(ON_B)
    report = parse_policies("report", [])
    assert run(ON_B, policies=report).rows == []  # records match: only the queue knows
    assert [i.kind for i in stores.queue.items()] == ["host-changed"]
    tolerator.placement_down = False
    assert [r[5] for r in run(ON_B).rows] == ["tolerated"]
    assert stores.queue.items() == []


def test_a_new_watcher_finishes_what_a_killed_one_left_queued(world, tmp_path):
    cloud, tolerator, _stores, run = world
    tolerator.placement_down = True
    run(ON_B)  # then kill -9: only the state store remains
    tolerator.placement_down = False
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    fresh = Stores(DriftQueue(store), AuditLog(store), RecordsCache(store))
    result = reconcile_pass(ON_B, cloud.read, fresh, "start", TOLERATE, lambda r: tolerator)
    assert [(r[2], r[5]) for r in result.rows] == [("host-changed", "tolerated")]
    assert fresh.queue.items() == []


class PolicyRecorder:
    """A tolerator that only notes which policy each drift got."""

    def __init__(self):
        self.got: list[tuple[str, str]] = []

    def apply(self, drift: Drift, policy: str) -> Outcome:
        self.got.append((drift.kind.value, policy))
        return Outcome(drift, "reported" if policy == "report" else "tolerated", policy)


def test_each_drift_gets_the_policy_of_its_hosts_group(world):
    cloud, _tolerator, stores, _run = world
    groups = [PolicyGroup(hosts="hv-b", policy="report"),
              PolicyGroup(hosts="qemu+ssh://hv-a/*", policy="tolerate")]
    policies = parse_policies("tolerate", [], groups)
    recorder = PolicyRecorder()
    # moved to hv-b, a reporting group: its drift is judged where the VM runs now
    reconcile_pass(ON_B, cloud.read, stores, "test", policies, lambda r: recorder)
    # gone from every host: judged by the host OpenStack records (hv-a, tolerating)
    gone = Inventory(hosts=[host("hv-a"), host("hv-b")])
    reconcile_pass(gone, cloud.read, stores, "test", policies, lambda r: recorder)
    assert recorder.got == [("host-changed", "report"), ("vm-gone", "tolerate")]


def test_a_pass_says_when_its_soonest_deferred_drift_is_due(world):
    cloud, _tolerator, stores, _run = world

    class Deferring:
        def apply(self, drift, policy):
            return Outcome(drift, "deferred", "off for 5 s of 20 s", recheck_in=15.0)

    result = reconcile_pass(ON_B, cloud.read, stores, "test", TOLERATE, lambda r: Deferring())
    assert [r[5] for r in result.rows] == ["deferred"] and result.recheck_in == 15.0
    assert reconcile_pass(ON_A, cloud.read, stores, "test", TOLERATE,
                          lambda r: Deferring()).recheck_in is None  # nothing deferred


def test_a_vm_seen_again_between_two_absences_starts_the_count_anew(world, monkeypatch):
    """vm-gone is concluded on the second absence in a row (its first sighting in the
    audit log): a VM back in between writes a row that ends the run."""
    from os_onboard.cli.reconcile import _seen_since
    from os_onboard.reconcile import passes

    monkeypatch.setattr(passes, "_ABSENT", passes._Absent())
    _cloud, _tolerator, stores, run = world
    missing = Inventory(hosts=[host("hv-a"), host("hv-b")])
    assert [(r[2], r[5]) for r in run(missing).rows] == [("vm-gone", "reported")]
    assert _seen_since(stores.audit, UUID, "vm-gone", "on no host") is not None
    back = run(ON_A)
    assert [(r[2], r[4], r[5]) for r in back.rows] == [("vm-gone", "seen again", "resolved")]
    assert _seen_since(stores.audit, UUID, "vm-gone", "on no host") is None
    assert run(ON_A).rows == []  # said once
    run(missing)  # absent again: a first sighting, not a second
    [first] = [e.at for e in stores.audit.entries(UUID, limit=1)]  # this absence's row
    seen = _seen_since(stores.audit, UUID, "vm-gone", "on no host")
    assert seen is not None and seen.replace(tzinfo=None) == first.replace(tzinfo=None)
