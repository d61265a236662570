"""libvirt change feed: event mapping and reconnection, with a fake connection."""

from __future__ import annotations

import threading

import libvirt

from os_onboard.drivers.base import ChangeKind
from os_onboard.drivers.libvirt import api, events

URI = "qemu+tcp://hv1/system"
UUID = "6B3D7E2C-0000-4000-8000-000000000001"


def test_migration_is_a_host_change_on_both_ends():
    arrived = events.lifecycle_event(URI, "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_STARTED,
                                     libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED)
    left = events.lifecycle_event(URI, "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_STOPPED,
                                  libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
    assert (arrived.kind, arrived.detail, arrived.data["migration"]) == (
        ChangeKind.HOST_CHANGED, "started/migrated", "arrived")
    assert (left.kind, left.detail, left.data["migration"]) == (
        ChangeKind.HOST_CHANGED, "stopped/migrated", "left")
    assert arrived.vm_uuid == UUID.lower()


def test_other_lifecycle_events():
    paused = events.lifecycle_event(URI, "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                    libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
    # suspended/migrated is the source pausing mid-migration: not yet a move
    mid = events.lifecycle_event(URI, "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                 libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED)
    assert (paused.kind, paused.detail) == (ChangeKind.LIFECYCLE, "suspended/paused")
    assert (mid.kind, mid.detail) == (ChangeKind.LIFECYCLE, "suspended/migrated")
    device = events.device_event(URI, "vm1", UUID, True, "net1")
    assert (device.kind, device.detail) == (ChangeKind.DEVICE, "device added: net1")


class FakeConnection:
    """Stands in for api.EventConnection: replays scripted callbacks."""

    opened: list[FakeConnection] = []
    script: list[list[tuple]] = []

    def __init__(self, uri, on_lifecycle, on_device, on_close, keepalive=(5, 3)):
        self.closed = False
        FakeConnection.opened.append(self)
        for step in FakeConnection.script.pop(0):
            if step[0] == "lifecycle":
                on_lifecycle(*step[1:])
            elif step[0] == "close":
                on_close(libvirt.VIR_CONNECT_CLOSE_REASON_EOF)

    def close(self):
        self.closed = True


def test_reconnects_after_a_close_and_says_so(monkeypatch):
    FakeConnection.opened, FakeConnection.script = [], [
        [("lifecycle", "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_SUSPENDED, 0), ("close",)],
        [("lifecycle", "vm1", UUID, libvirt.VIR_DOMAIN_EVENT_RESUMED, 0)],
    ]
    monkeypatch.setattr(api, "EventConnection", FakeConnection)
    stop = threading.Event()
    feed = events.watch(URI, stop, poll=0.01)
    got = [next(feed) for _ in range(3)]
    stop.set()
    list(feed)
    assert [e.kind for e in got] == [ChangeKind.LIFECYCLE, ChangeKind.RECONNECTED,
                                     ChangeKind.LIFECYCLE]
    assert [e.data.get("event") for e in got] == ["suspended", None, "resumed"]
    assert all(c.closed for c in FakeConnection.opened)
