"""The replica's watcher: report-only passes over the hosts it holds, restarted
when its share changes."""

import time

from os_onboard.drivers.libvirt.testnode import write_estate
from os_onboard.serve.watcher import HostWatcher
from os_onboard.state import StateStore
from tests.unit.apply.test_runner import lab_cloud


def _wait(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_passes_follow_the_share(tmp_path):
    uris = [f"test://{p}" for p in write_estate(tmp_path / "estate", 3, 2)]
    seen = []

    def discover(hosts):
        from os_onboard.discovery.runner import discover_hosts
        seen.append(list(hosts))
        return discover_hosts(hosts)

    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    watcher = HostWatcher(store, lab_cloud, interval=60, discover=discover)
    try:
        watcher.set_hosts(uris[:2])
        assert _wait(lambda: watcher.last.get("hosts") == 2)
        assert watcher.last["drift"] == 0 and watcher.last["cause"] == "start"
        assert seen == [sorted(uris[:2])]
        watcher.set_hosts(uris[:2])  # the same share: the loop goes on, no new pass
        time.sleep(0.3)
        assert len(seen) == 1
        watcher.set_hosts(uris)  # took a host over: a new loop passes over all three
        assert _wait(lambda: watcher.last.get("hosts") == 3)
        assert seen[-1] == sorted(uris)
        watcher.set_hosts([])
        assert watcher._thread is None
    finally:
        watcher.stop()
