import socket
import threading

import pytest

from os_onboard.discovery.runner import RunOptions, discover_hosts
from os_onboard.drivers.libvirt.testnode import write_estate
from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import HostStatus


@pytest.fixture
def silent_listener():
    """A TCP port that accepts connections and never answers (a hung host)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_many_hosts_in_order_with_progress(tmp_path):
    uris = [f"test://{p}" for p in write_estate(tmp_path, 5, 3)]
    seen = []
    inv = discover_hosts(uris + uris[:1], RunOptions(workers=3),
                         progress=lambda h, done, total: seen.append((done, total)))
    assert [h.host.uri for h in inv.hosts] == uris  # duplicates dropped, order kept
    assert seen == [(i, 5) for i in range(1, 6)]
    assert sum(len(h.vms) for h in inv.hosts) == 15


def test_unreachable_and_hung_hosts_do_not_stop_the_others(tmp_path, silent_listener):
    (good,) = write_estate(tmp_path, 1, 2)
    uris = [f"qemu+tcp://127.0.0.1:{silent_listener}/system",
            "qemu+tcp://127.0.0.1:1/system", f"test://{good}"]
    inv = discover_hosts(uris, RunOptions(workers=1, host_timeout=1.0))
    hung, refused, ok = inv.hosts
    assert hung.status == HostStatus.UNREACHABLE
    assert "no answer within 1 s" in hung.problems[0].message
    assert refused.status == HostStatus.UNREACHABLE
    assert "cannot connect" in refused.problems[0].message
    assert ok.status == HostStatus.OK and len(ok.vms) == 2


def test_unknown_uri_scheme_is_refused_before_any_io():
    with pytest.raises(ConfigError, match="no hypervisor driver understands 'ftp://x/'"):
        discover_hosts(["test:///default", "ftp://x/"])


def test_a_password_typed_into_a_uri_is_never_recorded():
    uri = "qemu+tcp://admin:s3cret@127.0.0.1:1/system"
    inv = discover_hosts([uri])
    (host,) = inv.hosts
    assert "s3cret" not in inv.model_dump_json()
    assert host.host.uri == "qemu+tcp://admin:***@127.0.0.1:1/system"


@pytest.mark.parametrize(("uri", "expected"), [
    ("test:///default", True), ("test:///tmp/node.xml", True),
    ("test+tcp://127.0.0.1:16509/tmp/node.xml", False), ("qemu:///system", False),
    ("qemu+ssh://root@hv1/system", False), ("vsphere://admin@vc/", False)])
def test_only_the_in_process_test_driver_skips_the_pool(uri, expected):
    from os_onboard.discovery.runner import _in_process

    assert _in_process(uri) is expected


def test_in_process_hosts_get_one_worker_per_cpu(tmp_path, monkeypatch):
    import os_onboard.discovery.runner as runner

    threads = set()
    real = runner._read_one

    def spy(uri, driver_cls, options):
        threads.add(threading.get_ident())
        return real(uri, driver_cls, options)

    monkeypatch.setattr(runner, "_read_one", spy)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 1)
    uris = [f"test://{p}" for p in write_estate(tmp_path, 6, 1)]
    inv = discover_hosts(uris, RunOptions(workers=4))
    assert [h.host.uri for h in inv.hosts] == uris and len(threads) == 1
