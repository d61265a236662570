import pytest

from os_onboard.drivers.libvirt import hostxml
from os_onboard.drivers.libvirt.domxml import MalformedXml
from tests.conftest import read_data


def test_storage_node_device_yields_page83_and_by_id():
    dev = hostxml.parse_node_device(read_data("host", "nodedev-sdb.xml"))
    assert (dev.path, dev.vendor, dev.model, dev.size_bytes) == (
        "/dev/sdb", "NETAPP", "LUN C-Mode", 107374182400)
    assert dev.scsi_page83 == "naa.600a098038303053453f463045727a51"
    assert dev.wwn == "600a098038303053453f463045727a51"
    assert "wwn-0x600a098038303053453f463045727a51" in dev.by_id


def test_non_storage_node_device_is_skipped():
    assert hostxml.parse_node_device(read_data("host", "nodedev-net.xml")) is None


def test_pools_and_volumes():
    rbd = hostxml.parse_pool(read_data("host", "pool-rbd.xml"))
    assert (rbd.type, rbd.source, rbd.source_hosts) == ("rbd", "legacy", ["10.0.0.11:6789"])
    lvm = hostxml.parse_pool(read_data("host", "pool-logical.xml"), active=False)
    assert (lvm.type, lvm.source, lvm.target_path, lvm.active) == (
        "logical", "vg-data", "/dev/vg-data", False)
    vol = hostxml.parse_volume(read_data("host", "vol-lv.xml"))
    assert (vol.path, vol.format, vol.capacity_bytes) == ("/dev/vg-data/db01-logs", "qcow2",
                                                         5 * 1024**3)


def test_network_subnets():
    net = hostxml.parse_network(read_data("host", "network-isolated.xml"))
    assert (net.name, net.bridge, net.forward_mode, net.dhcp) == (
        "onboard-lab", "virbr-onb", None, True)
    assert net.subnets == ["192.168.150.0/24", "fd00:150::/64"]


def test_malformed_host_xml():
    with pytest.raises(MalformedXml):
        hostxml.parse_pool("<pool")
    with pytest.raises(MalformedXml, match="expected <volume>"):
        hostxml.parse_volume("<pool/>")
