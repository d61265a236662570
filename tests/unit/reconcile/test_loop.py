"""The watch loop under faults: backoff of failed passes, restarted change feeds
(passes and feeds faked; delays are read from the log, never timed)."""

import logging
import re
import threading

from os_onboard.drivers.base import ChangeEvent, ChangeKind
from os_onboard.exceptions import CloudError, HostUnreachable
from os_onboard.reconcile import loop
from os_onboard.reconcile.loop import Backoff, PassReport, watch


def test_backoff_doubles_up_to_its_cap_and_resets():
    backoff = Backoff(first=2, cap=30)
    assert [backoff.failed() for _ in range(7)] == [2, 4, 8, 16, 30, 30, 30]
    assert backoff.succeeded() == 7
    assert backoff.failed() == 2


def _no_feed(uri, stop, wake):
    return None


def _retry_delays(caplog) -> list[float]:
    return [float(m.group(1)) for r in caplog.records
            if (m := re.search(r"retry \d+ in ([\d.]+) s", r.getMessage()))]


def test_failing_passes_back_off_then_recover_without_ending_the_watch(caplog):
    """OpenStack down for 4 passes (raising, or leaving drift queued), then back:
    each retry waits twice as long, the loop survives all of them, and once the
    queue is empty the next pass waits a whole period (600 s: the test stops it)."""
    stop = threading.Event()
    outcomes = [CloudError("list servers: Connection refused"), "1 drift(s) queued",
                RuntimeError("bug"), "1 drift(s) queued", ""]
    causes = []

    def run_pass(cause):
        causes.append(cause)
        outcome = outcomes.pop(0)
        if not outcomes:
            threading.Timer(0.3, stop.set).start()
        if isinstance(outcome, Exception):
            raise outcome
        return PassReport(outcome)

    with caplog.at_level(logging.WARNING, logger="os_onboard.reconcile.loop"):
        passes = watch(["fake://a"], run_pass, stop, interval=600, retry_first=0.01,
                       feed=_no_feed)
    assert passes == 5
    assert causes == ["start", "retry 1", "retry 2", "retry 3", "retry 4"]
    assert _retry_delays(caplog) == [0.01, 0.02, 0.04, 0.08]
    messages = [r.getMessage() for r in caplog.records]
    assert "reconcile pass failed: list servers: Connection refused" in messages[0]
    assert "succeeded after 4 failed attempt(s)" in messages[-1]


def test_retries_never_wait_longer_than_one_period(caplog):
    stop = threading.Event()
    calls = []

    def run_pass(cause):
        calls.append(cause)
        if len(calls) == 6:
            stop.set()
        return PassReport("OpenStack unreachable")

    with caplog.at_level(logging.ERROR, logger="os_onboard.reconcile.loop"):
        watch([], run_pass, stop, interval=0.05, retry_first=0.01, max_retry=30)
    assert _retry_delays(caplog) == [0.01, 0.02, 0.04, 0.05, 0.05, 0.05]


def test_an_event_during_backoff_wakes_a_pass_at_once():
    stop = threading.Event()
    causes = []
    fired = threading.Event()

    def feed(uri, stop_, wake):
        fired.wait(5)
        wake(f"host-changed vm1 on {uri}")

    def run_pass(cause):
        causes.append(cause)
        if len(causes) == 1:
            fired.set()
            return PassReport("OpenStack unreachable")  # retry in 600 s unless woken
        stop.set()
        return PassReport()

    watch(["fake://a"], run_pass, stop, interval=600, retry_first=600, settle=0.01, feed=feed)
    assert causes == ["start", "event: host-changed vm1 on fake://a"]


def test_a_deferred_drift_brings_the_next_pass_forward():
    stop = threading.Event()
    causes = []

    def run_pass(cause):
        causes.append(cause)
        if len(causes) == 1:
            return PassReport(recheck_in=0.05)  # e.g. a shutdown's grace ends then
        stop.set()
        return PassReport()

    def no_feed(uri, stop_, wake):
        pass

    loop_ = threading.Thread(target=watch, args=(["fake://a"], run_pass, stop),
                             kwargs={"interval": 3600, "settle": 0.01, "feed": no_feed})
    loop_.start()
    loop_.join(10)  # else the second pass would come an hour later
    stop.set()
    loop_.join(5)
    assert causes == ["start", "recheck of a deferred drift"]


class _Driver:
    """A change feed whose host is down twice, then delivers one event."""

    script: list = []

    def __init__(self, uri):
        self.uri = uri

    def watch(self, stop):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        yield step
        stop.wait()


class _Hypervisor:
    change_feed = _Driver


def test_feed_reconnects_with_backoff_after_its_host_was_down(monkeypatch, caplog):
    event = ChangeEvent(source="qemu:///x", kind=ChangeKind.RECONNECTED,
                        detail="libvirt connection re-established")
    _Driver.script = [HostUnreachable("connection refused"), ValueError("feed bug"), event]
    monkeypatch.setattr(loop, "driver_for", lambda uri: _Hypervisor)
    stop = threading.Event()
    woken = []

    def wake(cause):
        woken.append(cause)
        stop.set()

    backoff = Backoff(first=0.01, cap=1)
    with caplog.at_level(logging.WARNING, logger="os_onboard.reconcile.loop"):
        loop._feed("qemu:///x", stop, wake, backoff)
    assert woken == ["reconnected on qemu:///x"]
    assert backoff.failures == 0  # reset by the event
    messages = [r.getMessage() for r in caplog.records]
    assert "reconnecting in 0.01 s" in messages[0]
    assert "restarting it in 0.02 s" in messages[1]


def test_host_without_a_feed_ends_its_feed_only(monkeypatch):
    class NoFeed:
        change_feed = None

    monkeypatch.setattr(loop, "driver_for", lambda uri: NoFeed)
    woken = []
    loop._feed("vsphere://x", threading.Event(), woken.append, Backoff(0.01, 1))
    assert woken == []


def test_the_settle_time_is_the_watched_feeds_longest_burst():
    """libvirt's migration bursts take a second; one vSphere answer carries a whole task."""
    from os_onboard.reconcile.loop import _settle_of

    assert _settle_of("vsphere://u@vc.example/") == 0.2
    assert _settle_of("qemu+ssh://hv1/system") == 1.0
    assert _settle_of("nosuch://x/") == 1.0
