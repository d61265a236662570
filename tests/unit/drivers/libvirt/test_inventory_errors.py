"""Per-item failures in the libvirt driver become problems, never crashes.

These wrap a real libvirt test-driver connection and make one object fail
the way a live host does (the errors are real libvirtError objects obtained
from the test driver), which a running lab cannot produce on demand.
"""

import libvirt
import pytest

from os_onboard.drivers.libvirt import inventory as driver_mod
from os_onboard.drivers.libvirt.inventory import LibvirtInventory
from os_onboard.drivers.libvirt.testnode import write_estate
from os_onboard.exceptions import HostUnreachable
from os_onboard.inventory.models import HostStatus, Severity


def _real_error(code_trigger):
    conn = libvirt.openReadOnly("test:///default")
    try:
        code_trigger(conn)
    except libvirt.libvirtError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("expected libvirt to raise")


NO_DOMAIN = _real_error(lambda c: c.lookupByName("does-not-exist"))
DENIED = _real_error(lambda c: c.lookupByName("test").suspend())


class _Dom:
    def __init__(self, dom, xml_error=None, xml_text=None):
        self._dom, self._xml_error, self._xml_text = dom, xml_error, xml_text

    def __getattr__(self, name):
        return getattr(self._dom, name)

    def XMLDesc(self, flags=0):
        if self._xml_error is not None:
            raise self._xml_error
        return self._xml_text if self._xml_text is not None else self._dom.XMLDesc(flags)


class _Conn:
    """A real read-only test connection with chosen domains misbehaving."""

    def __init__(self, conn, broken):
        self._conn, self._broken = conn, broken

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def getAllDomainStats(self, stats, flags):
        return [(_Dom(d, **self._broken.get(d.name(), {})), s)
                for d, s in self._conn.getAllDomainStats(stats, flags)]


@pytest.fixture
def estate(tmp_path):
    (path,) = write_estate(tmp_path, 1, 4)
    return f"test://{path}"


def _discover(monkeypatch, uri, broken):
    real_open = driver_mod.api.open_read_only
    monkeypatch.setattr(driver_mod.api, "open_read_only",
                        lambda u: _Conn(real_open(u), broken))
    return LibvirtInventory(uri).discover()


def test_domain_vanishing_mid_read_is_a_warning(monkeypatch, estate):
    inv = _discover(monkeypatch, estate, {"h0-vm1": {"xml_error": NO_DOMAIN}})
    assert [vm.name for vm in inv.vms] == ["h0-vm0", "h0-vm2", "h0-vm3"]
    (problem,) = inv.problems
    assert (problem.code, problem.vm, problem.severity) == ("domain-vanished", "h0-vm1",
                                                            Severity.WARNING)
    assert "undefined while being read" in problem.message
    assert inv.status == HostStatus.OK


def test_malformed_xml_is_an_error_for_that_vm_only(monkeypatch, estate):
    inv = _discover(monkeypatch, estate, {"h0-vm2": {"xml_text": "<domain><name>x"}})
    assert len(inv.vms) == 3
    (problem,) = inv.problems
    assert (problem.code, problem.vm, problem.severity) == ("malformed-xml", "h0-vm2",
                                                            Severity.ERROR)
    assert inv.status == HostStatus.PARTIAL


def test_connection_lost_mid_read_aborts_the_host(monkeypatch, estate):
    try:  # a real socket-level failure: nothing listens on port 1
        libvirt.openReadOnly("qemu+tcp://127.0.0.1:1/system")
    except libvirt.libvirtError as exc:
        lost = exc
    inv = None
    with pytest.raises(HostUnreachable):
        inv = _discover(monkeypatch, estate, {"h0-vm0": {"xml_error": lost}})
    assert inv is None


def test_read_only_connection_refuses_mutation():
    assert DENIED.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED
    assert driver_mod.api.translate(DENIED, "suspend").__class__.__name__ == "ReadOnlyViolation"
