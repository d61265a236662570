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
