"""Hostile vSphere replies: a RetrievePropertiesEx page parses or raises DiscoveryError
only; whatever the objects in it hold, the endpoint's inventory is built, and a VM
whose properties cannot be read is one problem of that VM (never a failed endpoint)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from os_onboard.drivers.vsphere.api import _schema
from os_onboard.drivers.vsphere.build import build_inventory
from os_onboard.drivers.vsphere.soapxml import parse_retrieve_result
from os_onboard.exceptions import DiscoveryError
from os_onboard.inventory.models import Severity
from tests.unit.drivers.vsphere import test_properties
from tests.unit.drivers.vsphere.test_soapxml import BODY
from tests.unit.fuzz.counts import ran
from tests.unit.fuzz.strategies import VALUES, mutated

URI = "vsphere://onboard@vc1.example.com:443/"
ABOUT = {"name": "VMware vCenter Server", "version": "8.0", "instanceUuid": "i-1"}

# A second page: a VM with the properties discovery reads, typed as vCenter sends them.
VM_PAGE = BODY.decode().replace("<token>page-2</token>", "").replace(
    "<propSet><name>name</name>", """<propSet><name>config.instanceUuid</name>
  <val xsi:type="xsd:string">502e71fa-1a2b-4c3d-8e9f-0a1b2c3d4e5f</val></propSet>
 <propSet><name>config.hardware.memoryMB</name><val xsi:type="xsd:int">8192</val></propSet>
 <propSet><name>config.hardware.numCoresPerSocket</name><val xsi:type="xsd:int">2</val>
 </propSet>
 <propSet><name>config.firmware</name><val xsi:type="xsd:string">efi</val></propSet>
 <propSet><name>config.template</name><val xsi:type="xsd:boolean">false</val></propSet>
 <propSet><name>guest.net</name><val xsi:type="ArrayOfGuestNicInfo"><GuestNicInfo>
  <macAddress>00:50:56:aa:00:01</macAddress><ipAddress>10.1.2.3</ipAddress><ipConfig>
  <ipAddress><ipAddress>10.1.2.3</ipAddress><prefixLength>24</prefixLength></ipAddress>
  </ipConfig></GuestNicInfo></val></propSet>
 <propSet><name>name</name>""").replace(
    "</VirtualDevice>\n </val>", """</VirtualDevice>
  <VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key><macAddress>00:50:56:AA:00:01
  </macAddress><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM
  Network</deviceName><network type="Network">network-9</network></backing><connectable>
  <connected>true</connected></connectable></VirtualDevice>
  <VirtualDevice xsi:type="VirtualDisk"><key>2001</key><controllerKey>1000</controllerKey>
   <unitNumber>1</unitNumber><capacityInBytes>1073741824</capacityInBytes><backing
   xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName>[ds] a/r.vmdk</fileName>
   <lunUuid>0200</lunUuid><deviceName>/vmfs/devices/disks/naa.6</deviceName>
   <compatibilityMode>physicalMode</compatibilityMode></backing></VirtualDevice>
 </val>""", 1)
SEEDS = [BODY.decode(), VM_PAGE]
assert SEEDS[0] != VM_PAGE

KIND_SOAP = "vSphere RetrievePropertiesEx reply (SOAP)"
KIND_PROPS = "vSphere property sets (objects and data objects)"


def _check_inventory(objects) -> None:
    host = build_inventory(URI, ABOUT, objects)
    vms = [o for o in objects if o.type == "VirtualMachine"]
    unreadable = [p for p in host.problems if p.code == "vm-unreadable"]
    # every VM is accounted for: in the inventory, or one error naming it
    assert len(host.vms) + len(unreadable) == len(vms)
    assert all(p.severity == Severity.ERROR and p.message for p in unreadable)
    host.model_dump_json()


@pytest.mark.fuzz(KIND_SOAP)
@settings(max_examples=400)
@given(mutated(SEEDS))
def test_a_mutated_reply_parses_or_is_a_discovery_error(text):
    ran(KIND_SOAP)
    try:
        objects, _token = parse_retrieve_result(text.encode("utf-8", "surrogatepass"), _schema)
    except DiscoveryError as exc:
        assert str(exc)
        return
    _check_inventory(objects)


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | VALUES,
    lambda inner: st.lists(inner, max_size=3) | st.builds(
        lambda wsdl, attrs: SimpleNamespace(_wsdlName=wsdl, **attrs),
        st.sampled_from(["VirtualDisk", "VirtualVmxnet3", "HostPortGroup", "HostScsiDisk",
                         "GuestNicInfo", "VirtualDiskFlatVer2BackingInfo", "Description",
                         "VmwareDistributedVirtualSwitchTrunkVlanSpec", "X"]),
        st.dictionaries(st.sampled_from(
            ["key", "backing", "fileName", "uuid", "spec", "name", "vlanId", "macAddress",
             "ipAddress", "ipConfig", "capacity", "block", "blockSize", "port", "vlan",
             "controllerKey", "unitNumber", "busNumber", "deviceInfo", "label", "connectable",
             "lunUuid", "canonicalName", "start", "end", "portgroupKey", "deviceName"]),
            inner, max_size=5)),
    max_leaves=8)


@st.composite
def estates(draw):
    """The test_properties estate with 1-5 property values replaced by junk."""
    objects = copy.deepcopy(test_properties.estate())
    for _ in range(draw(st.integers(1, 5))):
        obj = draw(st.sampled_from(objects))
        keys = [*sorted(obj.props), "name", "parent", "config.hardware.device", "guest.net"]
        obj.props[draw(st.sampled_from(keys))] = draw(JUNK)
    return objects


@pytest.mark.fuzz(KIND_PROPS)
@settings(max_examples=300)
@given(estates())
def test_junk_property_values_fail_one_vm_at_most(objects):
    ran(KIND_PROPS)
    _check_inventory(objects)
