"""The libvirt change feed against the lab's real libvirtd and running guests.

``virsh suspend`` / ``virsh resume`` (plain virsh, a separate read-write
client) on one lab guest must show up in ``LibvirtChangeFeed.watch`` within
seconds. The guest is resumed in any case; afterwards the same QEMU process
runs it under the same domain id, and its heartbeat counter went on without
a restart; the other guests were not touched at all.
"""

from __future__ import annotations

import contextlib
import threading
import time

from os_onboard.drivers.base import ChangeKind
from os_onboard.drivers.libvirt.driver import LibvirtChangeFeed
from tests.functional.lab import GuestWitness, HeartbeatMonitor, virsh

PAUSE_S = 2.0


def _wait_for(events, predicate, since: float, timeout: float = 5.0):
    deadline = since + timeout
    while time.monotonic() < deadline:
        hit = next(((t, e) for t, e in list(events) if t >= since and predicate(e)), None)
        if hit:
            return hit
        time.sleep(0.02)
    raise AssertionError(f"no matching event within {timeout} s: {[e for _, e in events]}")


def test_suspend_and_resume_arrive_as_lifecycle_events(host_a, running_guests, console_log):
    guest = running_guests[0]
    uuid = virsh(host_a, "--readonly", "domuuid", guest).strip().lower()
    witnesses = [GuestWitness(host_a, name).record() for name in running_guests]
    stop, events = threading.Event(), []

    def follow():
        for event in LibvirtChangeFeed(host_a).watch(stop):
            events.append((time.monotonic(), event))

    thread = threading.Thread(target=follow, daemon=True)
    with contextlib.ExitStack() as stack:
        monitors = {name: stack.enter_context(HeartbeatMonitor(console_log(name)))
                    for name in running_guests}
        thread.start()
        time.sleep(1.0)  # connection open and callbacks registered
        try:
            t0 = time.monotonic()
            virsh(host_a, "suspend", guest)
            t_suspend, suspended = _wait_for(
                events, lambda e: e.vm_uuid == uuid and e.data.get("event") == "suspended", t0)
            time.sleep(PAUSE_S)
        finally:
            t1 = time.monotonic()
            virsh(host_a, "resume", guest)  # always: the lab guest must keep running
        t_resume, resumed = _wait_for(
            events, lambda e: e.vm_uuid == uuid and e.data.get("event") == "resumed", t1)
        stop.set()
        thread.join(5)
    assert not thread.is_alive(), "watch() did not stop"
    assert suspended.kind == ChangeKind.LIFECYCLE and suspended.vm_name == guest
    assert suspended.detail == "suspended/paused"
    assert resumed.detail == "resumed/unpaused"
    assert t_suspend - t0 < 2 and t_resume - t1 < 2, (t_suspend - t0, t_resume - t1)
    for witness in witnesses:
        witness.assert_undisturbed()
    for name, monitor in monitors.items():
        # The paused guest's heartbeat stops while paused and resumes with the
        # next number (same boot); the others never pause.
        monitor.assert_no_gap(max_interval=3.0 + (PAUSE_S + 2 if name == guest else 0))
