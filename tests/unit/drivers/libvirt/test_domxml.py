"""Domain XML parsing on real-world shapes (tests/data/domains)."""

import pytest

from os_onboard.drivers.libvirt.diskxml import page83_from_by_id
from os_onboard.drivers.libvirt.domxml import MalformedXml, parse_domain
from os_onboard.inventory.models import AddressSource, Firmware
from tests.conftest import read_data


def _domain(name: str):
    return parse_domain(read_data("domains", name))


def test_lab_style_identity_and_shape():
    d = _domain("lab-style.xml")
    assert (d.name, d.uuid, d.virt_type) == ("legacy-web", "2f0e5c3a-6a3e-4f7b-9b1e-5d7f1c2a9e01",
                                             "qemu")
    assert (d.title, d.description) == ("Web frontend", "Started by hand in 2019")
    assert (d.memory_mib, d.vcpus, d.max_vcpus) == (96, 1, 1)
    assert (d.arch, d.machine_type, d.firmware) == ("x86_64", "pc-i440fx-7.2", Firmware.BIOS)
    assert d.boot.kernel == "/var/lib/lab/vmlinux"
    assert d.boot.cmdline == "console=ttyS0 panic=-1"
    assert d.boot.boot_devices == ["hd"]
    assert "http://example.com/cmdb/1" in d.metadata
    assert "team-web" in d.metadata["http://example.com/cmdb/1"]


def test_lab_style_disks_carry_identifiers_and_chain():
    root, data, cdrom = _domain("lab-style.xml").disks
    assert (root.target, root.bus, root.format, root.source_kind) == ("vda", "virtio", "qcow2",
                                                                     "file")
    assert root.source == "/var/lib/lab/images/legacy-web-root.qcow2"
    assert root.identifiers.serial == "root-legacy-web"
    assert [(b.format, b.source) for b in root.backing_chain] == [
        ("qcow2", "/var/lib/lab/images/base.qcow2"), ("raw", "/var/lib/lab/images/golden.raw")]
    assert data.identifiers.wwn == "5000C5000000012D"
    # The guest sees a <wwn> as NAA designator in VPD page 0x83.
    assert data.identifiers.scsi_page83 == "naa.5000c5000000012d"
    assert (data.identifiers.vendor, data.identifiers.product) == ("LEGACY", "DATADISK")
    assert data.shareable and not data.read_only
    assert cdrom.device == "cdrom" and cdrom.source is None and cdrom.read_only


def test_lab_style_nic_and_metadata_addresses():
    d = _domain("lab-style.xml")
    (nic,) = d.nics
    assert nic.mac == "52:54:00:10:01:2d"  # normalised to lower case
    assert (nic.model, nic.source_kind, nic.network, nic.bridge, nic.target) == (
        "virtio", "network", "onboard-lab", "virbr-onb", "vnet3")
    assert [(a.address, a.prefix, a.family, a.source) for a in nic.addresses] == [
        ("192.0.2.50", 24, "ipv4", AddressSource.METADATA),
        ("2001:db8::50", 64, "ipv6", AddressSource.METADATA),
    ]
    assert any("unknown MAC" in w for w in d.warnings)
    assert any("not-an-ip" in w for w in d.warnings)


def test_enterprise_shapes():
    d = _domain("enterprise-uefi.xml")
    assert d.firmware == Firmware.UEFI
    assert (d.memory_mib, d.current_memory_mib) == (16384, 8192)
    assert (d.vcpus, d.max_vcpus) == (4, 8)
    assert d.cpu_topology.model_dump() == {"sockets": 1, "dies": 1, "cores": 4, "threads": 2}
    assert d.cpu_mode == "host-model"
    rbd, iscsi, lun, volume, block = d.disks
    assert (rbd.source_kind, rbd.source) == ("network-rbd", "legacy/db01-root")
    assert rbd.source_hosts == ["10.0.0.11:6789", "10.0.0.12:6789"]
    assert (iscsi.source_kind, iscsi.device) == ("network-iscsi", "lun")
    assert iscsi.source == "iqn.2001-05.com.equallogic:0-8a0906-db01data/1"
    assert lun.identifiers.scsi_page83 == "naa.600a098038303053453f463045727a51"
    assert lun.identifiers.by_id == ["wwn-0x600a098038303053453f463045727a51"]
    assert (volume.source_kind, volume.source) == ("volume", "vg-data/db01-logs")
    assert block.identifiers.scsi_page83 == "naa.624a93701c0d5b5f6b5f4a5b00011a2c"
    assert d.boot.boot_devices == ["vda", "vdb"]


def test_enterprise_nics():
    bridge, direct, hostdev = _domain("enterprise-uefi.xml").nics  # user NIC has no MAC
    assert (bridge.bridge, bridge.vlan, bridge.link_up) == ("br-prod", [100, 200], False)
    assert bridge.driver == {"name": "vhost", "queues": "4"}
    assert direct.driver is None  # no <driver> element: libvirt's ABI check tells them apart
    assert (direct.source_kind, direct.bridge, direct.model) == ("direct", "eno2", "e1000e")
    assert hostdev.source_kind == "hostdev"


def test_devices_nova_cannot_represent_are_listed_not_dropped():
    d = _domain("enterprise-uefi.xml")
    kinds = [c.kind for c in d.caveats]
    assert kinds == ["interface-hostdev", "hostdev-pci", "hostdev-usb", "tpm", "memory-nvdimm",
                     "unknown-frobnicator"]
    assert all(c.reason and c.detail for c in d.caveats)
    assert "acme" in d.caveats[-1].detail
    assert any("without a MAC" in w for w in d.warnings)


def test_unreadable_values_become_warnings():
    d = _domain("quirky-values.xml")
    assert d.memory_mib == 2048  # falls back to <maxMemory>
    assert d.vcpus == 1
    assert any("parsecs" in w for w in d.warnings)
    assert any("'many'" in w for w in d.warnings)
    assert any("'first'" in w for w in d.warnings)
    (floppy,) = d.disks
    assert (floppy.device, floppy.source_kind, floppy.source) == ("floppy", "none", None)
    assert d.nics == []  # an interface without a MAC is reported, not invented


@pytest.mark.parametrize("name, message", [
    ("truncated.xml", "not well-formed"),
    ("no-uuid.xml", "no <name> or no <uuid>"),
    ("wrong-root.xml", "expected a <domain>"),
])
def test_malformed_domains_raise_a_clear_error(name, message):
    with pytest.raises(MalformedXml, match=message):
        _domain(name)


@pytest.mark.parametrize("by_id, page83", [
    ("wwn-0x600A098038303053453F463045727A51", "naa.600a098038303053453f463045727a51"),
    ("scsi-3600508b1001c4d1e2f3a4b5c6d7e8f90", "naa.600508b1001c4d1e2f3a4b5c6d7e8f90"),
    ("/dev/disk/by-id/dm-uuid-mpath-36000d31000ee2b000000000000000002",
     "naa.6000d31000ee2b000000000000000002"),
    ("scsi-SATA_Samsung_SSD_860_S3Z1NB0K123456", None),
    ("ata-QEMU_HARDDISK_QM00001", None),
])
def test_page83_from_by_id_names(by_id, page83):
    assert page83_from_by_id(by_id) == page83


@pytest.mark.parametrize("xml", [
    "<r><app:role xmlns:app='http://example.com/cmdb/1'>tier-0</app:role></r>",
    "<r><a:x xmlns:a='urn:a'>&amp; &lt;b&gt; \"q\" 'q' é ☃</a:x>\n  tail &amp; more</r>",
    "<r><a:x xmlns:a='urn:a'/></r>", "<r><a:x xmlns:a='urn:a'></a:x></r>",
    "<r><plain>text</plain></r>", "<r><plain/></r>",
    "<r><a:x xmlns:a='urn:&quot;odd&quot;&#10;'>v</a:x></r>",
    "<r><h:p xmlns:h='http://www.w3.org/1999/xhtml'>v</h:p></r>",  # ET's own prefix
    "<r><x xml:lang='en'>v</x></r>", "<r><a:x xmlns:a='urn:a' k='v'>v</a:x></r>",
    "<r><a:x xmlns:a='urn:a'><a:y>v</a:y></a:x></r>", "<r><!-- c --></r>",
])
def test_leaf_serialisation_is_elementtrees(xml):
    import xml.etree.ElementTree as ET

    from os_onboard.drivers.libvirt.xmlutil import tostring

    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    (child,) = ET.fromstring(xml, parser=parser)
    assert tostring(child) == ET.tostring(child, encoding="unicode")
