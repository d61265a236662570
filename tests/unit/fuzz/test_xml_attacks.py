"""Every XML parser os-onboard runs refuses the classic attacks with a clear error:
entity expansion ("billion laughs", quadratic blow-up), external entities
(file://, http://, parameter entities, an external DTD), oversized documents
and (for the tree readers) absurd nesting. A refused domain is a per-VM problem."""

from __future__ import annotations

import io
import time

import pytest

from os_onboard.drivers import safexml
from os_onboard.drivers.libvirt import hostxml
from os_onboard.drivers.libvirt.domxml import parse_domain
from os_onboard.drivers.libvirt.hostwrite import qemu_hook, renamemap
from os_onboard.drivers.libvirt.hostwrite.renames import disk_sources, rewrite_disk_sources
from os_onboard.drivers.vsphere import soapxml
from os_onboard.exceptions import DiscoveryError, MalformedXml, RenameError
from tests.unit.drivers.vsphere.test_soapxml import BODY, SCHEMA


def _laughs(root: str) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{"".join(entities)}]><{root}>&lol9;</{root}>'


def _quadratic(root: str) -> str:
    return (f'<!DOCTYPE {root} [<!ENTITY a "{"x" * 100_000}">]>'
            f'<{root}><name>{"&a;" * 10_000}</name></{root}>')


ATTACKS = {
    "billion laughs": _laughs,
    "quadratic blow-up": _quadratic,
    "external entity file://": lambda r: (
        f'<!DOCTYPE {r} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><{r}><name>&xxe;</name>'
        f"<uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid></{r}>"),
    "external entity http://": lambda r: (
        f'<!DOCTYPE {r} [<!ENTITY xxe SYSTEM "http://127.0.0.1:1/secret">]><{r}>&xxe;</{r}>'),
    "parameter entity": lambda r: (
        f'<!DOCTYPE {r} [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><{r}/>'),
    "external DTD": lambda r: f'<!DOCTYPE {r} SYSTEM "http://127.0.0.1:1/evil.dtd"><{r}/>',
    "internal DTD, no entity": lambda r: f"<!DOCTYPE {r} [<!ELEMENT {r} ANY>]><{r}/>",
}


def _soap(attack: str) -> bytes:
    # the attack's DTD in front of a real reply (the declaration must come first)
    doc = ATTACKS[attack]("soapenv:Envelope")
    start = doc.index("<!DOCTYPE")
    dtd = doc[start:doc.index("<soapenv:Envelope", start)]
    return BODY.replace(b"<soapenv:Envelope", dtd.encode() + b"<soapenv:Envelope", 1)


PARSERS = {
    "domxml.parse_domain": (lambda a: parse_domain(ATTACKS[a]("domain")), MalformedXml),
    "hostxml.parse_network": (lambda a: hostxml.parse_network(ATTACKS[a]("network")),
                              MalformedXml),
    "hostxml.parse_pool": (lambda a: hostxml.parse_pool(ATTACKS[a]("pool")), MalformedXml),
    "hostxml.parse_volume": (lambda a: hostxml.parse_volume(ATTACKS[a]("volume")),
                             MalformedXml),
    "hostxml.parse_node_device": (lambda a: hostxml.parse_node_device(ATTACKS[a]("device")),
                                  MalformedXml),
    "hostxml.parse_host_uuid": (lambda a: hostxml.parse_host_uuid(ATTACKS[a]("capabilities")),
                                MalformedXml),
    "renames.disk_sources (expat, qemu hook)": (
        lambda a: disk_sources(ATTACKS[a]("domain")), RenameError),
    "renames.rewrite_disk_sources (expat, qemu hook)": (
        lambda a: rewrite_disk_sources(ATTACKS[a]("domain"), {"/x": "/y"}), RenameError),
    "soapxml.parse_retrieve_result": (
        lambda a: soapxml.parse_retrieve_result(_soap(a), lambda n: SCHEMA.get(n, {})),
        DiscoveryError),
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("parser", PARSERS)
def test_every_parser_refuses_every_attack(parser, attack):
    parse, error = PARSERS[parser]
    started = time.monotonic()
    with pytest.raises(error, match=r"DTD|refused") as refused:
        parse(attack)
    assert "DOCTYPE" in str(refused.value) or "entity" in str(refused.value)
    assert time.monotonic() - started < 1.0  # refused, not expanded then refused
    assert "passwd" not in str(refused.value) or "refers to" in str(refused.value)


def test_a_doctype_after_the_root_is_still_not_a_dtd():
    # only the prolog can hold a DTD; inside the document it is a syntax error
    with pytest.raises(MalformedXml, match="not well-formed"):
        parse_domain("<domain><!DOCTYPE x [<!ENTITY a 'b'>]><name>&a;</name></domain>")


def test_the_text_of_a_doctype_in_cdata_or_comments_is_data():
    config = parse_domain(
        "<!-- <!DOCTYPE x> --><domain><name>vm</name><uuid>u</uuid>"
        "<description><![CDATA[<!DOCTYPE y [<!ENTITY z 'q'>]>]]></description></domain>")
    assert config.description == "<!DOCTYPE y [<!ENTITY z 'q'>]>"


OVERSIZED = "<domain><name>big</name><uuid>u</uuid><description>" + "x" * (
    safexml.MAX_DOCUMENT_CHARS) + "</description></domain>"


@pytest.mark.parametrize(("parse", "error"), [
    (parse_domain, MalformedXml),
    (hostxml.parse_network, MalformedXml),
    (disk_sources, RenameError),
])
def test_oversized_documents_are_refused_unparsed(parse, error):
    started = time.monotonic()
    with pytest.raises(error, match="over the limit of 16,777,216: refused unparsed"):
        parse(OVERSIZED)
    assert time.monotonic() - started < 0.5


def test_an_oversized_vsphere_page_is_refused_unparsed(monkeypatch):
    monkeypatch.setattr(soapxml, "MAX_REPLY_BYTES", len(BODY) - 1)
    with pytest.raises(DiscoveryError, match=r"vSphere reply is .* over the limit"):
        soapxml.parse_retrieve_result(BODY, lambda n: SCHEMA.get(n, {}))
    monkeypatch.setattr(soapxml, "MAX_REPLY_BYTES", len(BODY))
    (vm,), _ = soapxml.parse_retrieve_result(BODY, lambda n: SCHEMA.get(n, {}))
    assert vm.moid == "vm-42"


def test_absurd_nesting_is_refused_before_a_reader_recurses():
    deep = "<domain><name>d</name><uuid>u</uuid><metadata>" + "<x>" * 5000 + "</x>" * 5000 \
        + "</metadata></domain>"
    with pytest.raises(MalformedXml, match="more than 256 deep"):
        parse_domain(deep)
    chain = "<backingStore type='file'><source file='/b'/>" * 200 + "</backingStore>" * 200
    config = parse_domain("<domain><name>d</name><uuid>u</uuid><devices><disk type='file'>"
                          f"<source file='/a'/><target dev='vda'/>{chain}</disk></devices>"
                          "</domain>")
    assert len(config.disks[0].backing_chain) == 200  # a long snapshot chain is fine


def test_a_refused_domain_is_a_problem_of_that_vm(monkeypatch, tmp_path):
    from os_onboard.drivers.libvirt import inventory as driver_mod
    from os_onboard.drivers.libvirt.inventory import LibvirtInventory
    from os_onboard.drivers.libvirt.testnode import write_estate
    from tests.unit.fuzz.test_libvirt_xml import _Conn

    (path,) = write_estate(tmp_path, 1, 3)
    real_open = driver_mod.api.open_read_only
    monkeypatch.setattr(driver_mod.api, "open_read_only",
                        lambda uri: _Conn(real_open(uri), "h0-vm1", _laughs("domain")))
    inv = LibvirtInventory(f"test://{path}").discover()
    assert [vm.name for vm in inv.vms] == ["h0-vm0", "h0-vm2"]
    (problem,) = inv.problems
    assert (problem.code, problem.vm, problem.severity.value) == ("malformed-xml", "h0-vm1",
                                                                  "error")
    assert "has a DTD (<!DOCTYPE domain>): refused" in problem.message


def test_the_hook_leaves_a_hostile_domain_alone(tmp_path):
    hooks = tmp_path / "hooks"
    renamemap.add(hooks / renamemap.MAP_NAME, {"/x": "/y"})
    for attack in ATTACKS:
        stdout = io.BytesIO()
        doc = ATTACKS[attack]("domain").replace("<domain>", "<domain><devices><disk type='file'>"
                                                "<source file='/x'/></disk></devices>", 1)
        assert qemu_hook.main(["vm", "migrate", "begin", "-"], hooks,
                              stdin=io.BytesIO(doc.encode()), stdout=stdout) == 0
        assert stdout.getvalue() == b""


def test_an_unknown_encoding_is_malformed_not_a_crash():
    # found by the SOAP fuzzer: expat asks Python's codecs, which raise LookupError
    doc = b'<?xml version="1.0" encoding="A"?><domain/>'
    with pytest.raises(DiscoveryError, match="unknown encoding"):
        soapxml.parse_retrieve_result(doc, lambda n: {})
    with pytest.raises(RenameError, match="unknown encoding"):
        disk_sources(doc.decode())


@pytest.mark.parametrize("doc", ["<domain><name>a</name></domain>",
                                 b"<domain><name>a</name></domain>",
                                 "<!-- <!DOCTYPE x> --><domain/>"])
def test_a_checked_document_leaves_no_garbage_cycle(doc):
    """The prolog check's StopIteration once held its frame (and the document) in a
    cycle: every parse waited for the cyclic GC (1 GB for 10,000 VMs without it)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        safexml.fromstring(doc, "doc", MalformedXml)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_depth_limit_holds_for_text_with_few_tags():
    deep = "<a>" * 5 + "</a>" * 5
    safexml.fromstring(deep, "doc", MalformedXml, max_depth=5)
    with pytest.raises(MalformedXml, match="deep"):
        safexml.fromstring(deep, "doc", MalformedXml, max_depth=4)
