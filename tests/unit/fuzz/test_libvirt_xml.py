"""Hostile libvirt XML: domain and host-side documents parse or raise MalformedXml only,
and a domain that cannot be read is a per-VM problem of its host, never a failed host."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from os_onboard.drivers.libvirt import hostxml
from os_onboard.drivers.libvirt import inventory as driver_mod
from os_onboard.drivers.libvirt.domxml import parse_domain
from os_onboard.drivers.libvirt.inventory import LibvirtInventory
from os_onboard.drivers.libvirt.testnode import domain_xml, write_estate
from os_onboard.exceptions import MalformedXml
from os_onboard.inventory.models import HostStatus, Severity, Vm
from tests.conftest import DATA
from tests.unit.fuzz.counts import ran
from tests.unit.fuzz.strategies import mutated, xml_tree

DOMAINS = [p.read_text() for p in sorted((DATA / "domains").glob("*.xml"))] + [domain_xml(3, 7)]
HOST_DOCS = {p.name: p.read_text() for p in sorted((DATA / "host").glob("*.xml"))}

DOMAIN_TAGS = [
    "name", "uuid", "title", "description", "memory", "currentMemory", "maxMemory", "vcpu",
    "cpu", "topology", "model", "os", "type", "loader", "boot", "kernel", "initrd", "cmdline",
    "metadata", "devices", "disk", "source", "target", "driver", "backingStore", "format",
    "serial", "wwn", "vendor", "product", "readonly", "shareable", "address", "host",
    "interface", "mac", "vlan", "tag", "link", "hostdev", "tpm", "memballoon", "controller",
    "graphics", "filesystem", "redirdev", "smartcard", "shmem", "crypto", "emulator",
]
DOMAIN_ATTRS = [
    "type", "dev", "bus", "file", "name", "protocol", "pool", "volume", "dir", "unit",
    "current", "mode", "sockets", "dies", "cores", "threads", "arch", "machine", "firmware",
    "order", "address", "network", "bridge", "portgroup", "id", "state", "model", "port",
    "socket", "device", "mac", "ip", "prefix",
]


def _check_domain(text: str) -> None:
    try:
        config = parse_domain(text)
    except MalformedXml as exc:
        assert str(exc)  # a clear message, never an empty one
        return
    # What the driver does next with it (inventory.read_vm): the model accepts it.
    fields = {k: v for k, v in vars(config).items() if k not in ("warnings",)}
    Vm(**fields, power_state="running").model_dump_json()


@pytest.mark.fuzz("libvirt domain XML")
@settings(max_examples=500)
@given(mutated(DOMAINS))
def test_mutated_domain_xml_parses_or_is_malformed(text):
    ran("libvirt domain XML")
    _check_domain(text)


@pytest.mark.fuzz("libvirt domain XML")
@settings(max_examples=200)
@given(xml_tree(["domain", "domain", "domain", "network", "x"], DOMAIN_TAGS, DOMAIN_ATTRS,
                required=["name", "uuid"]))
def test_random_domain_structure_parses_or_is_malformed(text):
    ran("libvirt domain XML")
    _check_domain(text)


PARSERS = {
    "network": hostxml.parse_network, "pool": hostxml.parse_pool,
    "vol": hostxml.parse_volume, "nodedev": hostxml.parse_node_device,
}


@pytest.mark.fuzz("libvirt host XML (network, pool, volume, node device, capabilities)")
@settings(max_examples=300)
@given(mutated(list(HOST_DOCS.values())))
def test_mutated_host_xml_parses_or_is_malformed(text):
    ran("libvirt host XML (network, pool, volume, node device, capabilities)")
    for parse in (*PARSERS.values(), hostxml.parse_host_uuid):
        try:
            parsed = parse(text)
        except MalformedXml as exc:
            assert str(exc)
            continue
        if parsed is not None and not isinstance(parsed, str):
            parsed.model_dump_json()


class _Dom:
    def __init__(self, dom, xml):
        self._dom, self._xml = dom, xml

    def __getattr__(self, name):
        return getattr(self._dom, name)

    def XMLDesc(self, flags=0):
        return self._xml


class _Conn:
    """A real read-only test-driver connection whose VM ``broken`` returns ``xml``."""

    def __init__(self, conn, broken, xml):
        self._conn, self._broken, self._xml = conn, broken, xml

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def getAllDomainStats(self, stats, flags):
        return [(_Dom(d, self._xml) if d.name() == self._broken else d, s)
                for d, s in self._conn.getAllDomainStats(stats, flags)]


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    (path,) = write_estate(tmp_path_factory.mktemp("estate"), 1, 3)
    return f"test://{path}"


@pytest.mark.fuzz("libvirt domain XML, through discovery (per-VM problem)")
@settings(max_examples=150)
@given(text=mutated(DOMAINS))
def test_a_hostile_domain_is_a_problem_of_its_vm_not_of_the_host(estate, text):
    ran("libvirt domain XML, through discovery (per-VM problem)")
    real_open = driver_mod.api.open_read_only
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver_mod.api, "open_read_only",
                   lambda uri: _Conn(real_open(uri), "h0-vm1", text))
        inv = LibvirtInventory(estate).discover()
    names = {vm.name for vm in inv.vms}
    assert {"h0-vm0", "h0-vm2"} <= names  # the others are read as ever
    malformed = [p for p in inv.problems if p.code == "malformed-xml"]
    if len(inv.vms) == 2:  # the hostile one was refused: one clear error, for that VM
        (problem,) = malformed
        assert (problem.vm, problem.severity) == ("h0-vm1", Severity.ERROR)
        assert problem.message.startswith("domain h0-vm1: ")
        assert inv.status == HostStatus.PARTIAL
    else:
        assert len(inv.vms) == 3 and malformed == []
    inv.model_dump_json()
