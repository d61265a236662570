"""vSphere PropertyCollector results -> inventory, on plain fakes (no pyVmomi, no network).

The fakes carry the WSDL type name (``_wsdlName``) and the attribute names of
the vSphere API reference, shaped as a vCenter 7 returns them: a cluster VM
with a thin and a thick VMDK, a physical-mode RDM of a NetApp LUN (joined to
the host's ``config.storageDevice.scsiLun`` for the naa. canonical name), a
vmxnet3 NIC on a distributed port group with a VLAN and guest IPs from
VMware Tools; a standalone-host VM on a standard port group; two VMs that
share a MAC and two that share an instanceUuid.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from os_onboard.drivers.vsphere.build import build_inventory
from os_onboard.drivers.vsphere.properties import PATHS, unescape_name
from os_onboard.drivers.vsphere.raw import RawObject
from os_onboard.inventory.conflicts import find_conflicts
from os_onboard.inventory.models import Firmware, Inventory, PowerState
from os_onboard.inventory.storage import storage_view

URI = "vsphere://onboard@vc1.example.com:443/"
NAA = "naa.600a098038303053453f463045727a42"
LUN_UUID = "0200000000600a098038303053453f463045727a424c554e20432d"


def do(wsdl: str, **attrs) -> SimpleNamespace:
    """A vSphere data object: its WSDL type name and attributes."""
    return SimpleNamespace(_wsdlName=wsdl, **attrs)


def info(label: str) -> SimpleNamespace:
    return do("Description", label=label, summary=label)


def controller(wsdl: str, key: int, bus: int) -> SimpleNamespace:
    return do(wsdl, key=key, busNumber=bus, deviceInfo=info(f"{wsdl} {bus}"),
              controllerKey=100, unitNumber=None, device=[])


def flat_disk(key: int, unit: int, path: str, gib: int, thin: bool | None,
              uuid: str) -> SimpleNamespace:
    backing = do("VirtualDiskFlatVer2BackingInfo", fileName=path, diskMode="persistent",
                 thinProvisioned=thin, eagerlyScrub=None if thin else True, uuid=uuid,
                 sharing="sharingNone", parent=None, datastore="datastore-11")
    return do("VirtualDisk", key=key, controllerKey=1000, unitNumber=unit,
              capacityInKB=gib << 20, capacityInBytes=gib << 30,
              deviceInfo=info(f"Hard disk {unit + 1}"), backing=backing)


def nic(key: int, wsdl: str, mac: str, backing: SimpleNamespace,
        connected: bool = True) -> SimpleNamespace:
    return do(wsdl, key=key, controllerKey=100, unitNumber=7 + key - 4000, macAddress=mac,
              addressType="assigned", deviceInfo=info(f"Network adapter {key - 3999}"),
              backing=backing, connectable=do("VirtualDeviceConnectInfo", connected=connected,
                                              startConnected=True, status="ok"))


def dvs_backing(key: str) -> SimpleNamespace:
    port = do("DistributedVirtualSwitchPortConnection", portgroupKey=key,
              switchUuid="50 1a 2b 3c", portKey="17")
    return do("VirtualEthernetCardDistributedVirtualPortBackingInfo", port=port)


def guest_nic(mac: str, *addresses: tuple[str, int]) -> SimpleNamespace:
    entries = [do("NetIpConfigInfoIpAddress", ipAddress=a, prefixLength=p, state="preferred")
               for a, p in addresses]
    return do("GuestNicInfo", macAddress=mac, connected=True, network="prod-web",
              ipAddress=[a for a, _ in addresses],
              ipConfig=do("NetIpConfigInfo", ipAddress=entries))


def scsi_lun(uuid: str, canonical: str, vendor: str, model: str, blocks: int,
             path: str | None = None) -> SimpleNamespace:
    return do("HostScsiDisk", uuid=uuid, canonicalName=canonical, vendor=vendor, model=model,
              serialNumber="80SE?F0Erz  ", lunType="disk", devicePath=path,
              displayName=f"{vendor.strip()} disk ({canonical})",
              capacity=do("HostDiskDimensionsLba", block=blocks, blockSize=512))


def obj(type_: str, moid: str, **props) -> RawObject:
    return RawObject(type=type_, moid=moid, props={k.replace("__", "."): v
                                                    for k, v in props.items()})


def vm(moid: str, name: str, instance_uuid: str, host: str, devices: list, **extra) -> RawObject:
    props = {
        "name": name, "config.instanceUuid": instance_uuid,
        "config.uuid": "4230" + instance_uuid[4:], "config.guestId": "rhel8_64Guest",
        "config.firmware": "efi", "config.version": "vmx-19", "config.template": False,
        "config.hardware.numCPU": 4, "config.hardware.numCoresPerSocket": 2,
        "config.hardware.memoryMB": 8192, "config.hardware.device": devices,
        "runtime.powerState": "poweredOn", "runtime.host": host,
        "resourcePool": "resgroup-8", "parent": "group-v3", "guest.net": [],
    }
    props.update(extra)
    return RawObject(type="VirtualMachine", moid=moid, props=props)


def common_devices() -> list:
    return [controller("VirtualIDEController", 200, 0),
            controller("ParaVirtualSCSIController", 1000, 0),
            controller("VirtualPCIController", 100, 0)]


def estate() -> list[RawObject]:
    portgroups_h2 = [do("HostPortGroup", spec=do("HostPortGroupSpec", name="VM Network",
                                                 vlanId=0)),
                     do("HostPortGroup", spec=do("HostPortGroupSpec", name="legacy-db",
                                                 vlanId=120))]
    rdm = do("VirtualDisk", key=2002, controllerKey=1000, unitNumber=2,
             capacityInKB=10 << 20, capacityInBytes=10 << 30, deviceInfo=info("Hard disk 3"),
             backing=do("VirtualDiskRawDiskMappingVer1BackingInfo",
                        fileName="[ds-gold-01] web01/web01_1.vmdk", lunUuid=LUN_UUID,
                        deviceName=f"/vmfs/devices/disks/{NAA}", compatibilityMode="physicalMode",
                        diskMode="independent_persistent", uuid="6000C29d-aaaa", sharing=None,
                        parent=None))
    web01 = vm("vm-101", "web01", "502e71fa-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "host-21", [
        *common_devices(),
        flat_disk(2000, 0, "[ds-gold-01] web01/web01.vmdk", 40, True, "6000C291-1111"),
        flat_disk(2001, 1, "[ds-gold-01] web01/web01_2.vmdk", 100, False, "6000C292-2222"),
        rdm,
        do("VirtualCdrom", key=3000, controllerKey=200, unitNumber=0, deviceInfo=info("CD"),
           backing=do("VirtualCdromIsoBackingInfo", fileName="[iso] rhel8.iso")),
        nic(4000, "VirtualVmxnet3", "00:50:56:AA:00:01", dvs_backing("dvportgroup-31")),
        do("VirtualPCIPassthrough", key=13000, controllerKey=100, unitNumber=18,
           deviceInfo=info("PCI device 0"), backing=None),
    ], **{"guest.net": [guest_nic("00:50:56:aa:00:01", ("10.1.2.3", 24),
                                  ("fe80::250:56ff:feaa:1", 64))],
          "config.annotation": "web tier"})
    web02 = vm("vm-102", "web02", "502e71fa-0000-4c3d-8e9f-0a1b2c3d4e60", "host-22", [
        *common_devices(),
        flat_disk(2000, 0, "[ds-gold-01] web02/web02.vmdk", 40, None, "6000C293-3333"),
        # The same MAC as web01: a cloned VM whose MAC was pinned by hand.
        nic(4000, "VirtualE1000e", "00:50:56:aa:00:01", dvs_backing("dvportgroup-31"),
            connected=False),
    ], **{"runtime.powerState": "suspended", "config.firmware": "bios"})
    # Registered twice (a copied .vmx): the same instanceUuid as web02.
    web02_copy = vm("vm-103", "web02%2fcopy", "502e71fa-0000-4c3d-8e9f-0a1b2c3d4e60", "host-30",
                    [*common_devices()], **{"runtime.powerState": "poweredOff",
                                            "resourcePool": "resgroup-40", "parent": "group-v77"})
    db01 = vm("vm-104", "db01", "502eaaaa-0000-4c3d-8e9f-0a1b2c3d4e61", "host-30", [
        *common_devices(),
        nic(4000, "VirtualVmxnet3", "00:50:56:bb:00:09", do(
            "VirtualEthernetCardNetworkBackingInfo", deviceName="legacy-db", network="network-9")),
    ], resourcePool="resgroup-40", parent="group-v77")
    broken = RawObject(type="VirtualMachine", moid="vm-666", props={"name": "orphan"},
                       missing={"config": "NotFound"})
    return [
        obj("Datacenter", "datacenter-2", name="DC-Berlin", parent="group-d1"),
        obj("Folder", "group-d1", name="Datacenters"),
        obj("Folder", "group-v3", name="vm", parent="datacenter-2"),
        obj("Folder", "group-v77", name="legacy", parent="group-v3"),
        obj("Folder", "group-h4", name="host", parent="datacenter-2"),
        obj("ClusterComputeResource", "domain-c7", name="prod-cluster", parent="group-h4"),
        obj("ComputeResource", "domain-s29", name="esx30.example.com", parent="group-h4"),
        obj("ResourcePool", "resgroup-8", name="Resources", parent="domain-c7"),
        obj("ResourcePool", "resgroup-40", name="Resources", parent="domain-s29"),
        obj("HostSystem", "host-21", name="esx21.example.com", parent="domain-c7",
            **{"config.storageDevice.scsiLun": [
                scsi_lun(LUN_UUID, NAA, "NETAPP  ", "LUN C-Mode      ", 20971520,
                         f"/vmfs/devices/disks/{NAA}"),
                scsi_lun("0000000000766d686261303a303a30", "mpx.vmhba0:C0:T0:L0", "VMware  ",
                         "Virtual disk    ", 67108864)],
               "config.network.portgroup": []}),
        obj("HostSystem", "host-22", name="esx22.example.com", parent="domain-c7"),
        obj("HostSystem", "host-30", name="esx30.example.com", parent="domain-s29",
            **{"config.network.portgroup": portgroups_h2}),
        obj("DistributedVirtualPortgroup", "dvportgroup-31", name="prod-web", key="dvportgroup-31",
            **{"config.defaultPortConfig": do(
                "VMwareDVSPortSetting", vlan=do("VmwareDistributedVirtualSwitchVlanIdSpec",
                                                vlanId=210, inherited=False))}),
        obj("Network", "network-9", name="legacy-db"),
        obj("Datastore", "datastore-11", name="ds-gold-01", summary__type="VMFS",
            summary__url="ds:///vmfs/volumes/5f1a/", summary__capacity=4 << 40,
            summary__freeSpace=1 << 40),
        web01, web02, web02_copy, db01, broken,
    ]


ABOUT = {"name": "VMware vCenter Server", "version": "7.0.3", "build": "20150588",
         "instanceUuid": "a1b2c3d4-0000-1111-2222-333344445555", "host": "vc1.example.com"}


@pytest.fixture(scope="module")
def host():
    return build_inventory(URI, ABOUT, estate())


def _vm(host, name):
    (found,) = [v for v in host.vms if v.name == name]
    return found


def test_one_host_inventory_per_endpoint(host):
    assert host.host.kind == "vsphere"
    assert host.host.uri == URI
    assert host.host.uuid == ABOUT["instanceUuid"]
    assert host.host.hypervisor == "VMware vCenter Server"
    assert host.host.hypervisor_version == "7.0.3 build-20150588"
    assert [v.name for v in host.vms] == ["db01", "web01", "web02", "web02/copy"]


def test_vm_identity_sizing_and_location(host):
    web01 = _vm(host, "web01")
    assert web01.uuid == "502e71fa-1a2b-4c3d-8e9f-0a1b2c3d4e5f"  # instanceUuid (Nova's key)
    assert web01.bios_uuid == "4230" + "71fa-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    assert (web01.vcpus, web01.cpu_topology.sockets, web01.cpu_topology.cores) == (4, 2, 2)
    assert web01.memory_mib == 8192
    assert web01.guest_os == "rhel8_64Guest"
    assert web01.firmware == Firmware.UEFI
    assert web01.machine_type == "vmx-19"
    assert web01.description == "web tier"
    assert web01.power_state == PowerState.RUNNING
    loc = web01.location
    assert (loc.datacenter, loc.cluster, loc.host, loc.resource_pool, loc.folder) == (
        "DC-Berlin", "prod-cluster", "esx21.example.com", "Resources", "vm")
    db01 = _vm(host, "db01")
    assert db01.location.cluster is None  # a standalone host
    assert db01.location.host == "esx30.example.com"
    assert db01.location.folder == "vm/legacy"


@pytest.mark.parametrize(("name", "state", "firmware"), [
    ("web01", PowerState.RUNNING, Firmware.UEFI),
    ("web02", PowerState.SUSPENDED, Firmware.BIOS),
    ("web02/copy", PowerState.SHUTOFF, Firmware.UEFI),
])
def test_power_state_and_firmware_mapping(host, name, state, firmware):
    assert _vm(host, name).power_state == state
    assert _vm(host, name).firmware == firmware


def test_disks_thin_thick_controller_uuid(host):
    disks = {d.target: d for d in _vm(host, "web01").disks}
    assert set(disks) == {"scsi0:0", "scsi0:1", "scsi0:2", "ide0:0"}
    root, data = disks["scsi0:0"], disks["scsi0:1"]
    assert (root.source_kind, root.source, root.format) == (
        "file", "[ds-gold-01] web01/web01.vmdk", "vmdk")
    assert (root.thin, data.thin) == (True, False)
    assert (root.controller, root.bus) == ("scsi0:0", "scsi")
    assert root.capacity_bytes == 40 << 30
    assert (root.disk_uuid, data.disk_uuid) == ("6000C291-1111", "6000C292-2222")
    cdrom = disks["ide0:0"]
    assert (cdrom.device, cdrom.read_only, cdrom.source) == ("cdrom", True, "[iso] rhel8.iso")
    # thinProvisioned unset means thick (lazy zeroed)
    assert _vm(host, "web02").disks[0].thin is False


def test_rdm_disk_joined_to_the_hosts_scsi_lun(host):
    rdm = next(d for d in _vm(host, "web01").disks if d.target == "scsi0:2")
    assert rdm.device == "lun"  # physical compatibility mode: SCSI passthrough
    assert (rdm.source_kind, rdm.source, rdm.format) == (
        "block", f"/vmfs/devices/disks/{NAA}", "raw")
    assert rdm.identifiers.scsi_page83 == NAA
    assert (rdm.identifiers.vendor, rdm.identifiers.product) == ("NETAPP", "LUN C-Mode")
    assert rdm.identifiers.serial == "80SE?F0Erz"
    assert rdm.backing_chain[0].source == "[ds-gold-01] web01/web01_1.vmdk"  # mapping file
    assert rdm.thin is None
    assert rdm.capacity_bytes == 10 << 30


def test_luns_become_block_devices_once_and_join_the_storage_view(host):
    by_name = {d.name: d for d in host.block_devices}
    assert by_name[NAA].scsi_page83 == NAA
    assert by_name[NAA].size_bytes == 20971520 * 512
    assert by_name["mpx.vmhba0:C0:T0:L0"].scsi_page83 is None  # not a page-83 designator
    entries = storage_view(Inventory(hosts=[host]))
    (lun,) = [e for e in entries if e.scsi_page83 == NAA]
    assert lun.device_kind == "block-device"
    assert [(u.vm, u.target) for u in lun.users] == [("web01", "scsi0:2")]


def test_nics_portgroups_vlans_and_guest_ips(host):
    (web_nic,) = _vm(host, "web01").nics
    assert web_nic.mac == "00:50:56:aa:00:01"  # lower-cased
    assert web_nic.model == "vmxnet3"
    assert (web_nic.source_kind, web_nic.portgroup_key, web_nic.portgroup) == (
        "distributed-portgroup", "dvportgroup-31", "prod-web")
    assert web_nic.vlan == [210]
    assert web_nic.link_up is True
    assert [(a.family, a.address, a.prefix, a.source.value) for a in web_nic.addresses] == [
        ("ipv4", "10.1.2.3", 24, "guest-tools"),
        ("ipv6", "fe80::250:56ff:feaa:1", 64, "guest-tools")]
    (db_nic,) = _vm(host, "db01").nics
    assert (db_nic.source_kind, db_nic.portgroup, db_nic.vlan) == ("portgroup", "legacy-db", [120])
    assert _vm(host, "web02").nics[0].link_up is False


def test_caveats_and_problems(host):
    (caveat,) = _vm(host, "web01").caveats
    assert caveat.kind == "hostdev-pci"
    (problem_missing, problem_unreadable) = sorted(host.problems, key=lambda p: p.code)
    assert problem_missing.code == "property-missing" and problem_missing.vm == "orphan"
    assert problem_unreadable.code == "vm-unreadable"
    assert host.status == "partial"  # one VM could not be read, the rest is there


def test_duplicate_macs_and_uuids_are_conflicts(host):
    inventory = Inventory(hosts=[host])
    conflicts = {(c.kind, c.value): c for c in find_conflicts(inventory)}
    mac = conflicts[("duplicate-mac", "00:50:56:aa:00:01")]
    assert mac.members == [f"{URI} web01", f"{URI} web02"]
    uuid = conflicts[("duplicate-uuid", "502e71fa-0000-4c3d-8e9f-0a1b2c3d4e60")]
    assert sorted(uuid.members) == [f"{URI} web02", f"{URI} web02/copy"]


def test_networks_and_datastores(host):
    assert {(n.name, n.forward_mode) for n in host.networks} == {
        ("prod-web", "distributed-portgroup"), ("legacy-db", "portgroup")}
    (ds,) = host.storage_pools
    assert (ds.name, ds.type, ds.capacity_bytes, ds.allocation_bytes) == (
        "ds-gold-01", "vmfs", 4 << 40, 3 << 40)


def test_only_needed_paths_are_read():
    # The device list is read once per VM; nothing asks for whole objects.
    assert "config.hardware.device" in PATHS["VirtualMachine"]
    assert "config" not in PATHS["VirtualMachine"]
    assert all("." in p or p in ("name", "parent", "resourcePool", "key")
               for paths in PATHS.values() for p in paths)


def test_template_and_trunk_vlans():
    trunk = obj("DistributedVirtualPortgroup", "dvportgroup-50", name="trunk",
                key="dvportgroup-50", **{"config.defaultPortConfig": do(
                    "VMwareDVSPortSetting", vlan=do("VmwareDistributedVirtualSwitchTrunkVlanSpec",
                                                    vlanId=[do("NumericRange", start=100, end=102)]
                                                    ))})
    template = vm("vm-7", "tmpl", "502e0000-0000-4c3d-8e9f-0a1b2c3d4e99", "host-21", [
        nic(4000, "VirtualVmxnet3", "00:50:56:cc:00:01", dvs_backing("dvportgroup-50"))],
        **{"config.template": True, "runtime.powerState": "poweredOff"})
    result = build_inventory(URI, {}, [trunk, template])
    (tmpl,) = result.vms
    assert tmpl.nics[0].vlan == [100, 101, 102]
    assert [c.kind for c in tmpl.caveats] == ["vsphere-template"]


def test_unescape_names():
    assert unescape_name("a%2fb%5cc%25d") == "a/b\\c%d"
    assert unescape_name("plain") == "plain"
