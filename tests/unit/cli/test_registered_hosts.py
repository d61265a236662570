"""``drift``, ``reconcile`` and ``watch`` act on the registered hosts (issue 15).

The hypervisor reads and the pass itself are stubbed: what is checked is
which hosts each command reads, and how ``group:LABEL`` policy groups read.
"""

import json
import logging
import threading

import pytest

from os_onboard.cli import reconcile
from os_onboard.cli.main import main
from os_onboard.inventory.models import Host, HostInventory, Inventory
from os_onboard.mapping.model import PolicyGroup
from os_onboard.reconcile.drift import DriftKind
from os_onboard.reconcile.passes import PassResult
from os_onboard.reconcile.policy import parse_policies
from os_onboard.state import StateStore
from os_onboard.state.hosts import HostRegistry

A, B, C = (f"qemu+ssh://root@hv{i}/system" for i in "abc")


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    root.handlers[:] = before
    root.setLevel(level)


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv("OS_ONBOARD_STATE_URL", url)
    return StateStore(url)


@pytest.fixture
def reads(monkeypatch):
    """The host lists the passes read (no hypervisor, no OpenStack)."""
    seen: list[list[str]] = []

    def discover(uris):
        seen.append(list(uris))
        return Inventory(hosts=[HostInventory(host=Host(uri=u, kind="libvirt")) for u in uris])

    monkeypatch.setattr(reconcile, "discover_hosts", discover)
    monkeypatch.setattr(reconcile, "reconcile_pass", lambda *a, **k: PassResult())
    return seen


def _snapshot_of(store, *uris):
    store.save_snapshot(Inventory(hosts=[HostInventory(host=Host(uri=u, kind="libvirt"))
                                         for u in uris]))


def test_drift_reads_the_registered_hosts_not_the_newest_snapshot(store, reads, capsys):
    HostRegistry(store).add(A, groups=["prod"])
    HostRegistry(store).add(B, groups=["wave1"])
    _snapshot_of(store, C)  # a one-off discover of an unregistered host
    assert main(["drift", "-f", "json"]) == 0
    assert main(["drift", "--group", "wave1", "-f", "json"]) == 0
    assert main(["drift", C, "-f", "json"]) == 0  # URIs given: those
    assert reads == [[A, B], [B], [C]]
    _out, err = capsys.readouterr()
    assert "warning" not in err
    assert main(["drift", "--group", "nope"]) != 0
    assert "no registered host has the group label 'nope'" in capsys.readouterr().err


def test_with_no_host_registered_the_snapshot_is_used_with_a_warning(store, reads, capsys):
    _snapshot_of(store, C)
    assert main(["reconcile", "-f", "json"]) == 0
    out, err = capsys.readouterr()
    assert reads == [[C]] and json.loads(out) == []
    assert "deprecated" in err and "os-onboard host add" in err


def test_group_labels_name_registered_hosts_in_policy_groups():
    registry = [type("H", (), {"uri": u, "groups": g})() for u, g in
                ((A, ("prod",)), (B, ("wave1",)), ("qemu:///sys[1]", ("prod",)))]
    groups = reconcile.labelled_groups(
        [PolicyGroup(hosts="group:prod", policy="report"),
         PolicyGroup(hosts="*", policy="tolerate", kinds={"vm-gone": "report"})], registry)
    policies = parse_policies("report", [], groups)
    kind = DriftKind.POWER_CHANGED
    assert policies.of(kind, A) == "report"
    assert policies.of(kind, "qemu:///sys[1]") == "report"  # a URI is an exact pattern
    assert policies.of(kind, B) == "tolerate"
    assert policies.of(DriftKind.VM_GONE, B) == "report"


def test_watch_follows_the_registry_while_it_runs(store, reads, monkeypatch, capsys):
    registry = HostRegistry(store)
    registry.add(A)
    handlers = {}
    monkeypatch.setattr(reconcile.signal, "signal", lambda sig, fn: handlers.setdefault(sig, fn))
    rounds: list[list[str]] = []

    def fake_watch(uris, run_pass, stop: threading.Event, interval):
        rounds.append(list(uris))
        run_pass("start")
        if len(rounds) == 1:
            registry.add(B)  # picked up within --registry-poll
            assert stop.wait(10), "the registry change did not end the round"
        else:
            handlers[reconcile.signal.SIGTERM]()
            assert stop.wait(10)
        return 1

    monkeypatch.setattr(reconcile, "watch", fake_watch)
    assert main(["watch", "--registry-poll", "0.2"]) == 0
    assert rounds == [[A], [A, B]] and reads == [[A], [A, B]]
    assert "the registry changed: 2 host(s) now" in capsys.readouterr().err
