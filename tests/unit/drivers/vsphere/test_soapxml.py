"""The fast RetrievePropertiesEx reader on a canned SOAP answer (no pyVmomi, no network)."""

from __future__ import annotations

import pytest

from os_onboard.drivers.vsphere.soapxml import Lazy, parse_retrieve_result

BODY = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-2</token>
<objects><obj type="VirtualMachine">vm-42</obj>
 <propSet><name>name</name><val xsi:type="xsd:string">web01</val></propSet>
 <propSet><name>runtime.powerState</name>
  <val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
 <propSet><name>runtime.host</name>
  <val xsi:type="ManagedObjectReference" type="HostSystem">host-21</val></propSet>
 <propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val></propSet>
 <propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
  <VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1000</key><busNumber>0</busNumber>
   </VirtualDevice>
  <VirtualDevice xsi:type="VirtualDisk"><key>2000</key><controllerKey>1000</controllerKey>
   <unitNumber>0</unitNumber>
   <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] a/a.vmdk</fileName>
    <thinProvisioned>true</thinProvisioned></backing></VirtualDevice>
 </val></propSet>
 <propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo">
  <GuestNicInfo><macAddress>00:50:56:aa:00:01</macAddress><ipAddress>10.1.2.3</ipAddress>
  </GuestNicInfo></val></propSet>
 <missingSet><path>config.annotation</path><fault><fault xsi:type="NoPermission"/></fault>
 </missingSet>
</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"""

SCHEMA = {
    "ParaVirtualSCSIController": {"key": (False, "int", "int"),
                                  "busNumber": (False, "int", "int"),
                                  "unitNumber": (False, "int", "int")},
    "VirtualDisk": {"key": (False, "int", "int"), "controllerKey": (False, "int", "int"),
                    "unitNumber": (False, "int", "int"),
                    "backing": (False, "data", "VirtualDeviceBackingInfo"),
                    "capacityInBytes": (False, "int", "long")},
    "VirtualDiskFlatVer2BackingInfo": {"fileName": (False, "str", "string"),
                                       "thinProvisioned": (False, "bool", "boolean")},
    "GuestNicInfo": {"macAddress": (False, "str", "string"),
                     "ipAddress": (True, "str", "string")},
}


def test_objects_props_and_token():
    (vm,), token = parse_retrieve_result(BODY, lambda name: SCHEMA.get(name, {}))
    assert token == "page-2"
    assert (vm.type, vm.moid) == ("VirtualMachine", "vm-42")
    assert vm.props["name"] == "web01"
    assert vm.props["runtime.powerState"] == "poweredOn"  # an enum is its text
    assert vm.props["runtime.host"] == "host-21"  # a reference is its moid
    assert vm.props["config.hardware.numCPU"] == 4
    assert vm.missing == {"config.annotation": "NoPermission"}


def test_data_objects_behave_like_pyvmomis():
    (vm,), _ = parse_retrieve_result(BODY, lambda name: SCHEMA.get(name, {}))
    ctrl, disk = vm.props["config.hardware.device"]
    assert isinstance(disk, Lazy) and disk._wsdlName == "VirtualDisk"
    assert hasattr(ctrl, "busNumber") and not hasattr(disk, "busNumber")
    assert ctrl.unitNumber is None  # declared, unset
    assert (disk.key, disk.controllerKey, disk.unitNumber) == (2000, 1000, 0)
    assert disk.backing._wsdlName == "VirtualDiskFlatVer2BackingInfo"  # xsi:type wins
    assert disk.backing.thinProvisioned is True
    (gnic,) = vm.props["guest.net"]
    assert gnic.ipAddress == ["10.1.2.3"]  # one element of an array field is still a list
    with pytest.raises(AttributeError):
        _ = disk.noSuchField


def test_a_page_is_frozen_for_the_gc_and_the_gc_left_enabled():
    import gc

    from os_onboard.drivers.vsphere.build import build_inventory
    from os_onboard.drivers.vsphere.soapxml import declares

    gc.unfreeze()
    try:
        objects, _ = parse_retrieve_result(BODY, lambda name: SCHEMA.get(name, {}))
        assert gc.isenabled() and gc.get_freeze_count() > 0
        ctrl, disk = objects[0].props["config.hardware.device"]
        assert declares(ctrl, "busNumber") and not declares(disk, "busNumber")
        build_inventory("vsphere://u@vc/", {"host": "vc"}, [])
        assert gc.isenabled()
    finally:
        gc.unfreeze()  # as the discovery runner does after its hosts


def _page(count: int, token: str | None) -> bytes:
    """A reply of ``count`` VMs (each with a device list), ``token`` after them."""
    one = (b'<objects><obj type="VirtualMachine">vm-%d</obj>'
           b'<propSet><name>name</name><val xsi:type="xsd:string">vm %d</val></propSet>'
           b'<propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">'
           b'<VirtualDevice xsi:type="VirtualDisk"><key>%d</key></VirtualDevice></val></propSet>'
           b'</objects>')
    head, tail = BODY.split(b"<returnval>")[0], b"</RetrievePropertiesExResponse>"
    objects = b"".join(one % (i, i, 2000 + i) for i in range(count))
    tok = b"<token>%s</token>" % token.encode() if token else b""
    return (head + b"<returnval>" + objects + tok + b"</returnval>" + tail
            + b"</soapenv:Body></soapenv:Envelope>")


def test_a_reply_is_read_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch):
    """Objects are handed out as their elements end, and taken out of the tree."""
    from os_onboard.drivers.vsphere import soapxml

    monkeypatch.setattr(soapxml, "FEED_BYTES", 97)  # many slices, boundaries anywhere
    body = _page(40, "tok-3")
    reader = soapxml.ReplyReader(body, lambda name: SCHEMA.get(name, {}))
    seen = []
    for obj in reader:
        seen.append((obj.moid, obj.props["name"], obj.props["config.hardware.device"][0].key))
    assert seen == [(f"vm-{i}", f"vm {i}", 2000 + i) for i in range(40)]
    assert reader.token == "tok-3"
    assert parse_retrieve_result(body, lambda name: {})[1] == "tok-3"
    assert parse_retrieve_result(_page(3, None), lambda name: {})[1] is None


def test_a_reply_cut_short_or_with_a_dtd_is_refused():
    from os_onboard.drivers.vsphere.soapxml import ReplyReader
    from os_onboard.exceptions import DiscoveryError

    body = _page(5, "t")
    with pytest.raises(DiscoveryError, match="not well-formed"):
        list(ReplyReader(body[:-40], lambda name: {}))
    dtd = body.replace(b"<soapenv:Envelope", b'<!DOCTYPE x [<!ENTITY a "b">]><soapenv:Envelope')
    with pytest.raises(DiscoveryError, match="DTD"):
        ReplyReader(dtd, lambda name: {})


def test_the_next_pages_token_is_peeked_from_the_end_of_a_reply():
    from os_onboard.drivers.vsphere.api import _peek_token

    assert _peek_token(_page(30, "page-7")) == "page-7"
    assert _peek_token(_page(3, None)) is None
    assert _peek_token(b"") is None


def test_vms_streamed_after_the_catalog_build_what_one_list_builds():
    from os_onboard.drivers.vsphere.build import build_inventory

    objects, _ = parse_retrieve_result(BODY, lambda name: SCHEMA.get(name, {}))
    whole = build_inventory("vsphere://u@vc/", {"host": "vc"}, objects)
    objects, _ = parse_retrieve_result(BODY, lambda name: SCHEMA.get(name, {}))
    streamed = build_inventory("vsphere://u@vc/", {"host": "vc"}, [], iter(objects))
    assert streamed.model_dump(exclude={"discovered_at"}) == whole.model_dump(
        exclude={"discovered_at"})
    assert streamed.problems  # the canned VM has no uuid: its problems, in the same order
