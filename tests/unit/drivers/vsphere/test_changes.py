"""WaitForUpdatesEx answers -> ChangeEvents (pure; the feed itself is tested in the lab)."""

from __future__ import annotations

from os_onboard.drivers.base import ChangeKind
from os_onboard.drivers.vsphere.changes import ChangeTracker
from os_onboard.drivers.vsphere.raw import RawUpdate

SRC = "vsphere://onboard@vc1:443/"
UUID = "502E71FA-1A2B-4C3D-8E9F-0A1B2C3D4E5F"


def initial() -> list[RawUpdate]:
    return [
        RawUpdate("enter", "HostSystem", "host-21", [("name", "assign", "esx21")]),
        RawUpdate("enter", "HostSystem", "host-22", [("name", "assign", "esx22")]),
        RawUpdate("enter", "VirtualMachine", "vm-1", [
            ("name", "assign", "web01"), ("config.instanceUuid", "assign", UUID),
            ("runtime.host", "assign", "host-21"), ("runtime.powerState", "assign", "poweredOn"),
            ("config.hardware.device", "assign", ["…"]),
            ("config.hardware.numCPU", "assign", 2)]),
    ]


def test_initial_state_primes_and_yields_nothing():
    tracker = ChangeTracker(SRC)
    assert tracker.feed(initial()) == []
    assert tracker.primed


def test_vmotion_is_a_host_change_with_host_names():
    tracker = ChangeTracker(SRC)
    tracker.feed(initial())
    (event,) = tracker.feed([RawUpdate("modify", "VirtualMachine", "vm-1",
                                       [("runtime.host", "assign", "host-22")])])
    assert event.kind == ChangeKind.HOST_CHANGED
    assert event.vm_uuid == UUID.lower() and event.vm_name == "web01"
    assert event.detail == "runtime.host: esx21 (host-21) -> esx22 (host-22)"
    assert (event.data["old_host"], event.data["new_host"]) == ("esx21", "esx22")


def test_power_device_config_and_membership_events():
    tracker = ChangeTracker(SRC)
    tracker.feed(initial())
    events = tracker.feed([
        RawUpdate("modify", "VirtualMachine", "vm-1", [
            ("runtime.powerState", "assign", "poweredOff"),
            ("config.hardware.device", "assign", ["…", "new disk"]),
            ("config.hardware.numCPU", "assign", 4)]),
        RawUpdate("enter", "VirtualMachine", "vm-2", [("name", "assign", "new-vm")]),
        RawUpdate("leave", "VirtualMachine", "vm-1", []),
    ])
    assert [(e.kind, e.detail) for e in events] == [
        (ChangeKind.LIFECYCLE, "poweredOn -> poweredOff"),
        (ChangeKind.DEVICE, "config.hardware.device changed"),
        (ChangeKind.CONFIG, "config.hardware.numCPU changed"),
        (ChangeKind.LIFECYCLE, "added"),
        (ChangeKind.LIFECYCLE, "removed"),
    ]
    assert events[0].data["power_state"] == "shutoff"
    assert events[-1].vm_name == "web01"


def test_an_unchanged_value_is_no_event():
    tracker = ChangeTracker(SRC)
    tracker.feed(initial())
    assert tracker.feed([RawUpdate("modify", "VirtualMachine", "vm-1",
                                   [("runtime.host", "assign", "host-21")])]) == []
