"""Volume resolvers on real identifier shapes: udev by-id names, multipath WWIDs, sg_inq
and vSphere page-83 ids, libvirt RBD/LVM sources (the lab's own 'legacy/lab-vm2-data')."""

import pytest
from pydantic import ValidationError

from os_onboard.drivers.libvirt import hostxml
from os_onboard.drivers.libvirt.domxml import parse_domain
from os_onboard.exceptions import ConfigError, OnboardError, ResolutionError
from os_onboard.inventory.models import BlockDevice, Disk, DiskIdentifiers, Host, HostInventory
from os_onboard.mapping.resolvers import (
    BackendConfig,
    Confidence,
    ManageableVolume,
    available_resolvers,
    lookup_from_manageable,
    lookup_from_table,
    resolve_disk,
    resolver_for,
)
from os_onboard.mapping.resolvers.facts import split_dm_name
from os_onboard.mapping.resolvers.naa import disk_page83, parse_naa
from tests.conftest import read_data

# the lab's RBD disk, as lab/README.md shows lab-vm2's domain XML
LAB_VM2 = """<domain type='qemu'><name>lab-vm2</name>
<uuid>6c0f3a52-7d1e-4a43-9d7e-0b2a5c3e1f02</uuid><memory>98304</memory><vcpu>1</vcpu>
<devices><disk type='network' device='disk'>
  <driver name='qemu' type='raw' cache='writeback'/>
  <auth username='cinder'><secret type='ceph' uuid='b59338e8-f6fe-47bb-97f1-9df597c0a6d3'/></auth>
  <source protocol='rbd' name='legacy/lab-vm2-data'><host name='127.0.0.1' port='6789'/></source>
  <target dev='vdb' bus='virtio'/><serial>data-lab-vm2</serial>
</disk></devices></domain>"""

HOST = HostInventory(host=Host(uri="qemu+ssh://root@hv1/system", kind="libvirt", hostname="hv1"))


def lab_disk() -> Disk:
    return parse_domain(LAB_VM2).disks[0]


def enterprise() -> dict[str, Disk]:
    """db01: RBD root, EqualLogic iSCSI, NetApp LUN by wwn-0x…, qcow2 LV, Pure LUN by scsi-3…"""
    return {d.target: d for d in parse_domain(read_data("domains", "enterprise-uefi.xml")).disks}


def enterprise_host() -> HostInventory:
    rbd = hostxml.parse_pool(read_data("host", "pool-rbd.xml"))
    rbd.volumes.append(hostxml.parse_volume(read_data("host", "vol-rbd.xml")))
    lvm = hostxml.parse_pool(read_data("host", "pool-logical.xml"))
    lvm.volumes.append(hostxml.parse_volume(read_data("host", "vol-lv.xml")))
    sdb = hostxml.parse_node_device(read_data("host", "nodedev-sdb.xml"))
    return HOST.model_copy(update={"storage_pools": [rbd, lvm], "block_devices": [sdb]})


def block(source: str, **ids) -> Disk:
    return Disk(device="disk", target="sdx", format="raw", source_kind="block", source=source,
                identifiers=DiskIdentifiers(**ids))


def backend(driver: str, cinder_host: str = "ctl1@be#pool", lookup=None, manageable=None,
            **options):
    config = BackendConfig(name=f"{driver}-a", cinder_host=cinder_host, driver=driver,
                           options=options)
    return resolver_for(config, lookup=lookup, manageable=manageable)


# -- page-83 ids as hosts print them ---------------------------------------------------------

@pytest.mark.parametrize(("shape", "expected"), [
    ("naa.600a098038303053453f463045727a51", "600a098038303053453f463045727a51"),
    ("NAA.600A098038303053453F463045727A51", "600a098038303053453f463045727a51"),
    ("/dev/disk/by-id/wwn-0x600a098038303053453f463045727a51",
     "600a098038303053453f463045727a51"),
    ("/dev/disk/by-id/scsi-3624a93701c0d5b5f6b5f4a5b00011a2c",
     "624a93701c0d5b5f6b5f4a5b00011a2c"),
    ("dm-uuid-mpath-3600507680c8006be780000000000001c", "600507680c8006be780000000000001c"),
    ("/dev/disk/by-id/dm-name-3600507680C8006BE780000000000001C",
     "600507680c8006be780000000000001c"),
    ("3624a93709a738ed78583fd1200143029", "624a93709a738ed78583fd1200143029"),  # multipath -ll
    ("/dev/mapper/3624a93708eabcb40cc4241b20a3ed51a", "624a93708eabcb40cc4241b20a3ed51a"),
    ("[0x60060e8007c350000030c35000002025]", "60060e8007c350000030c35000002025"),  # sg_inq
    ("0x60002ac0000000000000182d00021f6b", "60002ac0000000000000182d00021f6b"),  # lsblk WWN
    ("50002AC000020C3A", "50002ac000020c3a"),  # 64-bit NAA 5 (old 3PAR)
    ("/vmfs/devices/disks/naa.60000970000197802751533030303345",
     "60000970000197802751533030303345"),
])
def test_page83_shapes(shape, expected):
    assert parse_naa(shape).hex == expected


@pytest.mark.parametrize("shape", [
    None, "", "scsi-SATA_Samsung_SSD_860_S3Z9NB0K123456", "scsi-1ATA_ST1000DM003",
    "wwn-0x600a098038303053453f463045727a51-part1", "eui.0025385b71b0b7c4",
    "t10.ATA_____ST1000", "scsi-2002538b571b0b7c4", "naa.600a0980", "naa.400a098038303053",
    "dm-name-mpatha", "naa.600a098038303053453f463045727z51",
])
def test_not_page83(shape):
    assert parse_naa(shape) is None


def test_host_side_id_beats_the_guest_visible_wwn():
    disk = block("/dev/disk/by-id/wwn-0x600507680c8006be780000000000001c",
                 wwn="5000c500ab0b0101", scsi_page83="naa.5000c500ab0b0101")
    found = disk_page83(disk)
    assert found.naa.hex.startswith("6005076") and found.host_side
    guest_only = disk_page83(block("/dev/sdc", wwn="600507680c8006be780000000000001c",
                                   scsi_page83="naa.600507680c8006be780000000000001c"))
    assert not guest_only.host_side and guest_only.origin == "guest-visible <wwn>"


def test_host_device_supplies_the_page83_of_a_plain_dev_path():
    dev = BlockDevice(name="block_sdb", path="/dev/sdb",
                      scsi_page83="naa.624a93701c0d5b5f6b5f4a5b00011a2c")
    host = HOST.model_copy(update={"block_devices": [dev]})
    assert disk_page83(block("/dev/sdb"), host).origin == "host device /dev/sdb"


def test_conflicting_host_side_ids_are_an_error():
    disk = block("/dev/disk/by-id/scsi-3624a93701c0d5b5f6b5f4a5b00011a2c",
                 by_id=["wwn-0x600a098038303053453f463045727a51"])
    with pytest.raises(ResolutionError, match="conflicting page-83 ids"):
        disk_page83(disk)


# -- RBD -------------------------------------------------------------------------------------

def test_lab_rbd_disk_resolves_to_its_image():
    rbd = backend("rbd", "ctl1@ceph#ceph", rbd_pool="legacy", monitors=["127.0.0.1:6789"])
    ref = rbd.resolve(lab_disk())
    assert ref.ref == {"source-name": "lab-vm2-data"}
    assert ref.confidence is Confidence.DERIVED and ref.method == "rbd-image"
    assert ref.manage_request() == {"host": "ctl1@ceph#ceph",
                                    "ref": {"source-name": "lab-vm2-data"}}
    assert "legacy/lab-vm2-data" in ref.evidence
    assert any("volume-<id>" in n for n in ref.notes)


def test_rbd_monitor_spellings_and_unconfirmed_cluster():
    v2 = backend("rbd", rbd_pool="legacy", monitors=["v2:127.0.0.1:3300/0"])
    assert v2.resolve(lab_disk()).confidence is Confidence.DERIVED
    unpinned = backend("rbd", rbd_pool="legacy").resolve(lab_disk())
    assert unpinned.confidence is Confidence.PLAUSIBLE
    assert any("set monitors" in n for n in unpinned.notes)


@pytest.mark.parametrize("options", [
    {"rbd_pool": "volumes"},  # another pool
    {"rbd_pool": "legacy", "monitors": ["10.0.0.11:6789"]},  # same pool name, other cluster
])
def test_rbd_disk_on_another_pool_or_cluster(options):
    assert backend("rbd", **options).resolve(lab_disk()) is None


@pytest.mark.parametrize(("name", "error"), [
    ("legacy/lab-vm2-data@gold", "snapshot"), ("legacy/tenant-a/lab-vm2-data", "namespace")])
def test_rbd_snapshot_and_namespace_are_errors(name, error):
    disk = lab_disk().model_copy(update={"source": name})
    with pytest.raises(ResolutionError, match=error):
        backend("rbd", rbd_pool="legacy").resolve(disk)


def test_rbd_via_libvirt_pool_and_krbd_device():
    host, disks = enterprise_host(), enterprise()
    rbd = backend("rbd", rbd_pool="legacy", monitors=["10.0.0.11"])
    assert rbd.resolve(disks["vda"], host).ref == {"source-name": "db01-root"}
    pool_vol = disks["vda"].model_copy(update={"source_kind": "volume",
                                              "source": "ceph-legacy/db01-root"})
    assert rbd.resolve(pool_vol, host).evidence.endswith("(libvirt rbd pool ceph-legacy)")
    krbd = backend("rbd", rbd_pool="legacy").resolve(block("/dev/rbd/legacy/lab-vm2-data"))
    assert krbd.ref == {"source-name": "lab-vm2-data"}
    assert rbd.resolve(disks["vdc"], host) is None  # a Pure LUN


# -- LVM -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "lv"), [
    ("/dev/cinder-volumes/legacy-db", "legacy-db"),
    ("/dev/mapper/cinder--volumes-legacy--db--01", "legacy-db-01"),
    ("/dev/disk/by-id/dm-name-cinder--volumes-legacy--db--01", "legacy-db-01"),
])
def test_lvm_paths(source, lv):
    ref = backend("lvm").resolve(block(source), HOST)
    assert ref.ref == {"source-name": lv} and ref.confidence is Confidence.PLAUSIBLE


@pytest.mark.parametrize("source", [
    "/dev/vg0/legacy-db", "/dev/mapper/mpatha", "/dev/mapper/3624a93708eabcb40cc4241b20a3ed51a",
    "/dev/sdb", "/dev/mapper/cinder--volumes-legacy-real", "/dev/md/data",
])
def test_not_an_lv_of_the_backend(source):
    assert backend("lvm").resolve(block(source), HOST) is None


def test_dm_name_escaping():
    assert split_dm_name("a---b") == ("a-", "b")
    assert split_dm_name("vg-lv-cow") is None


def test_lvm_libvirt_logical_pool_and_host_pinning():
    host, vdb = enterprise_host(), enterprise()["vdb"]  # 'vg-data/db01-logs', qcow2
    pinned = backend("lvm", volume_group="vg-data", hypervisor_hosts=["hv1"]).resolve(vdb, host)
    assert pinned.ref == {"source-name": "db01-logs"} and pinned.confidence is Confidence.DERIVED
    assert any(n.startswith("disk format is qcow2") for n in pinned.notes)
    other = backend("lvm", volume_group="vg-data", hypervisor_hosts=["hv2"])
    assert other.resolve(vdb, host) is None


# -- SAN arrays ------------------------------------------------------------------------------

STORWIZE = "/dev/disk/by-id/dm-uuid-mpath-3600507680c8006be780000000000001c"


def test_storwize_vdisk_uid_and_in_use_flag():
    ref = backend("ibm-storwize-svc").resolve(block(STORWIZE))
    assert ref.ref == {"source-id": "600507680C8006BE780000000000001C", "manage_if_in_use": True}
    assert ref.confidence is Confidence.PLAUSIBLE and any("naa_prefix" in n for n in ref.notes)
    pinned = backend("ibm-storwize-svc", naa_prefix="naa.600507680C8006BE78").resolve(
        block(STORWIZE))
    assert pinned.confidence is Confidence.DERIVED
    other = backend("ibm-storwize-svc", naa_prefix="60050768108101c7c")
    assert other.resolve(block(STORWIZE)) is None
    strict = backend("ibm-storwize-svc", manage_if_in_use=False).resolve(block(STORWIZE))
    assert strict.ref == {"source-id": "600507680C8006BE780000000000001C"}


def test_storwize_negative_cases():
    storwize = backend("ibm-storwize-svc")
    assert storwize.resolve(enterprise()["vdc"]) is None  # a Pure LUN
    assert storwize.resolve(lab_disk()) is None  # not a LUN at all
    with pytest.raises(ResolutionError, match="NAA 5"):
        storwize.resolve(block("/dev/disk/by-id/wwn-0x5005076801401234"))
    guest = storwize.resolve(block("/dev/sdc", wwn="600507680c8006be780000000000001c",
                                   scsi_page83="naa.600507680c8006be780000000000001c"))
    assert guest.confidence is Confidence.PLAUSIBLE
    assert any("guest-visible" in n for n in guest.notes)


def test_storwize_cross_checked_against_cinders_list():
    listed = [ManageableVolume(reference={"source-id": "600507680c8006be780000000000001c"},
                               size=10, safe_to_manage=False, reason_not_safe="volume in use")]
    ref = backend("ibm-storwize-svc", manageable=listed).resolve(block(STORWIZE))
    assert ref.confidence is Confidence.LISTED and ref.listing.size == 10
    with pytest.raises(ResolutionError, match="manageable list"):
        backend("ibm-storwize-svc", manageable=[]).resolve(block(STORWIZE))
    # hex ids match in any case, image names do not
    shouting = [ManageableVolume(reference={"source-name": "LAB-VM2-DATA"})]
    with pytest.raises(ResolutionError, match="has no such volume"):
        backend("rbd", rbd_pool="legacy", manageable=shouting).resolve(lab_disk())


def test_pure_serial_lookup():
    vdc = enterprise()["vdc"]  # /dev/disk/by-id/scsi-3624a93701c0d5b5f6b5f4a5b00011a2c
    purevol = lookup_from_table({"1c0d5b5f6b5f4a5b00011a2c": "db01-data"})  # any case
    ref = backend("pure-flasharray", lookup=purevol).resolve(vdc)
    assert ref.ref == {"name": "db01-data"} and ref.confidence is Confidence.LISTED
    assert "serial 1C0D5B5F6B5F4A5B00011A2C" in ref.evidence
    assert any("connected to hosts" in n for n in ref.notes)


def test_pure_negative_cases():
    vdc = enterprise()["vdc"]
    with pytest.raises(ConfigError, match="needs a lookup"):
        backend("pure-flasharray")
    with pytest.raises(ResolutionError, match="not in the lookup"):
        backend("pure-flasharray", lookup=lambda serial: None).resolve(vdc)
    with pytest.raises(ResolutionError, match="pod"):
        backend("pure-flasharray", lookup=lambda serial: "pod1::db01").resolve(vdc)

    def broken(serial):
        raise OSError("export unreadable")

    with pytest.raises(ResolutionError, match="export unreadable"):
        backend("pure-flasharray", lookup=broken).resolve(vdc)
    with pytest.raises(ResolutionError, match="layout"):
        backend("pure-flasharray", lookup=lambda s: "x").resolve(
            block("/dev/mapper/3624a93719a738ed78583fd1200143029"))


@pytest.mark.parametrize(("source", "ldev", "shown"), [
    ("/dev/mapper/360060e8007c350000030c35000002025", "8229", "00:20:25"),  # VSP G1000 sg_inq
    ("/dev/disk/by-id/wwn-0x60060E8006D2AD000000D2AD00000502", "1282", "00:05:02"),  # VSP
])
def test_hitachi_ldev(source, ldev, shown):
    ref = backend("hitachi-vsp").resolve(block(source))
    assert ref.ref == {"source-id": ldev} and shown in ref.evidence


@pytest.mark.parametrize(("source", "error"), [
    ("/dev/mapper/360060e80104b669004f3257100000000", "modular"),  # AMS2100
    ("/dev/mapper/360060e8006d2ad000000d2ad00010502", "LDEV number"),
])
def test_hitachi_malformed(source, error):
    with pytest.raises(ResolutionError, match=error):
        backend("hitachi-vsp").resolve(block(source))


POWERMAX = "ctl1@powermax#Diamond+SRP_1+000197802751"


def test_powermax_device_id_on_its_array():
    ref = backend("dell-powermax", POWERMAX).resolve(
        block("/dev/mapper/360000970000197802751533030303345"))
    assert ref.ref == {"source-name": "0003E"} and ref.confidence is Confidence.DERIVED
    mixed = block("/vmfs/devices/disks/NAA.60000970000297700461533030333846")
    assert backend("dell-powermax", "c@pm#Gold+SRP_1+000297700461").resolve(mixed).ref == {
        "source-name": "0038F"}
    assert backend("dell-powermax", POWERMAX).resolve(mixed) is None  # another array


def test_powermax_negative_cases():
    with pytest.raises(ConfigError, match="12-digit array"):
        backend("dell-powermax", "ctl1@powermax#SRP_1")
    with pytest.raises(ResolutionError, match="VMAX3/PowerMax"):
        backend("dell-powermax", POWERMAX).resolve(
            block("/dev/mapper/3600009700001978027515330305a5a5a"))


def test_hpe_3par_vsphere_rdm_and_naa5():
    rdm = Disk(device="lun", target="scsi0:1", format="raw", source_kind="block",
               source="/vmfs/devices/disks/naa.60002ac0000000000000182d00021f6b",
               identifiers=DiskIdentifiers(scsi_page83="naa.60002ac0000000000000182d00021f6b"))
    showvv = lookup_from_table({"60002AC0000000000000182D00021F6B": "legacy-sql-01",
                                "50002AC000020C3A": "old-vv"})
    hpe = backend("hpe-3par", lookup=showvv)
    assert hpe.resolve(rdm).ref == {"source-name": "legacy-sql-01"}
    assert hpe.resolve(block("/dev/disk/by-id/wwn-0x50002ac000020c3a")).ref == {
        "source-name": "old-vv"}


def test_netapp_serial_lookup_from_the_hosts_lun():
    sdc, host = enterprise()["sdc"], enterprise_host()  # wwn-0x600a0980… and its /dev/sdb
    lun_show = lookup_from_table({"800SE?F0ErzQ": "/vol/db01_vol/lun0"})
    ref = backend("netapp-ontap", lookup=lun_show).resolve(sdc, host)
    assert ref.ref == {"source-name": "/vol/db01_vol/lun0"} and "800SE?F0ErzQ" in ref.evidence
    by_uuid = backend("netapp-ontap", lookup=lambda s: "4c9f1e3a-8d0b-4a47-9d63-2f1c0e6b7a55")
    assert by_uuid.resolve(sdc, host).ref == {"source-id": "4c9f1e3a-8d0b-4a47-9d63-2f1c0e6b7a55"}


@pytest.mark.parametrize(("lookup", "source", "error"), [
    ({"800se?f0erzq": "/vol/v/l"}, "wwn-0x600a098038303053453f463045727a51", "not in the lookup"),
    ({"800SE?F0ErzQ": "lun0"}, "wwn-0x600a098038303053453f463045727a51", "neither a LUN path"),
    ({}, "wwn-0x60a98000486e2f65686f4a6f5a6d4c38", "7-Mode"),
    ({}, "wwn-0x600a098000000000000000000000001f", "printable"),
])
def test_netapp_negative_cases(lookup, source, error):
    with pytest.raises(ResolutionError, match=error):
        backend("netapp-ontap", lookup=lookup_from_table(lookup)).resolve(
            block("/dev/disk/by-id/" + source))


def test_netapp_eseries_is_another_vendor():
    eseries = block("/dev/disk/by-id/wwn-0x600a0b800026d63a0000ee9e4b4e2c8d")
    assert backend("netapp-ontap", lookup=lambda s: "x").resolve(eseries) is None


# -- Cinder's manageable list ----------------------------------------------------------------

RBD_LISTING = [
    {"reference": {"source-name": "lab-vm2-data"}, "size": 1, "safe_to_manage": False,
     "reason_not_safe": "volume in use", "cinder_id": None, "extra_info": None},
    {"reference": {"source-name": "volume-9ba5"}, "size": 1, "safe_to_manage": False,
     "reason_not_safe": "already managed", "cinder_id": "9ba5", "extra_info": None,
     "a_future_field": True},
]


def test_manageable_list_by_name_in_its_namespace():
    entries = [ManageableVolume(**e) for e in RBD_LISTING]
    listed = backend("cinder-manageable", manageable=entries, match=["name"], namespace="legacy")
    ref = listed.resolve(lab_disk())
    assert ref.ref == {"source-name": "lab-vm2-data"} and ref.confidence is Confidence.LISTED
    assert ref.listing.reason_not_safe == "volume in use"
    assert any("not safe to manage: volume in use" in n for n in ref.notes)
    other_pool = lab_disk().model_copy(update={"source": "other/lab-vm2-data"})
    assert listed.resolve(other_pool) is None
    with pytest.raises(ConfigError, match="namespace"):
        backend("cinder-manageable", manageable=entries, match=["name"])
    with pytest.raises(ConfigError, match="manageable list"):
        backend("cinder-manageable")


def test_manageable_list_by_page83_in_extra_info_and_ambiguity():
    sdc, host = enterprise()["sdc"], enterprise_host()
    entry = ManageableVolume(reference={"source-name": "/vol/db01_vol/lun0"},
                             extra_info={"wwn": "3600A098038303053453F463045727A51"})
    ref = backend("cinder-manageable", manageable=[entry]).resolve(sdc, host)
    assert ref.ref == {"source-name": "/vol/db01_vol/lun0"}
    twice = [entry, entry.model_copy(update={"reference": {"source-name": "/vol/x/lun0"}})]
    with pytest.raises(ResolutionError, match="matches 2 entries"):
        backend("cinder-manageable", manageable=twice).resolve(sdc, host)
    pure_style = [ManageableVolume(reference={"name": "myVol1"})]  # no serial listed
    assert backend("cinder-manageable", manageable=pure_style).resolve(sdc, host) is None


def test_lookups_built_from_lists():
    entries = [ManageableVolume(reference={"source-name": "vv-1"}, extra_info={"wwn": "60002AC1"}),
               ManageableVolume(reference={"source-name": "vv-2"}, extra_info={"wwn": "60002ac1"})]
    with pytest.raises(ResolutionError, match="names 2 volumes"):
        lookup_from_manageable(entries, "wwn")("60002AC1")
    assert lookup_from_manageable(entries[:1], "wwn")("60002ac1") == "vv-1"
    assert lookup_from_table({"LUN-a": "x"})("lun-a") is None  # names stay case-sensitive


# -- registry and the choice among backends --------------------------------------------------

def test_entry_points_and_configuration_errors():
    assert set(available_resolvers()) == {
        "rbd", "lvm", "ibm-storwize-svc", "pure-flasharray", "hitachi-vsp", "dell-powermax",
        "hpe-3par", "netapp-ontap", "cinder-manageable", "vmware-vmdk"}
    with pytest.raises(ConfigError, match="no volume resolver 'cinder-nfs'"):
        backend("cinder-nfs")
    with pytest.raises(ConfigError, match="rbd_pool"):
        backend("rbd")
    with pytest.raises(ConfigError, match="rbd_user"):
        backend("rbd", rbd_pool="legacy", rbd_user="cinder")  # unknown options are refused
    with pytest.raises(ConfigError, match="hex prefix"):
        backend("ibm-storwize-svc", naa_prefix="lun-7")
    with pytest.raises(ValidationError, match="host@backend#pool"):
        BackendConfig(name="x", cinder_host="ctl1@rbd", driver="rbd")
    assert issubclass(ResolutionError, ConfigError) and issubclass(ResolutionError, OnboardError)


def test_each_enterprise_disk_finds_its_backend():
    host, disks = enterprise_host(), enterprise()
    backends = [
        backend("rbd", "ctl1@ceph#ceph", rbd_pool="legacy", monitors=["10.0.0.12:6789"]),
        backend("lvm", "hv1@lvm#lvm", volume_group="vg-data", hypervisor_hosts=["hv1"]),
        backend("pure-flasharray", "ctl1@pure#pure", lookup=lambda s: "db01-data"),
        backend("netapp-ontap", "ctl1@ontap#db01_vol", lookup=lambda s: "/vol/db01_vol/lun0"),
        backend("ibm-storwize-svc", "ctl1@svc#pool0"),
    ]
    found = {t: resolve_disk(d, host, backends) for t, d in disks.items()}
    assert {t: r.backend if r else None for t, r in found.items()} == {
        "vda": "rbd-a", "sdb": None, "sdc": "netapp-ontap-a", "vdb": "lvm-a",
        "vdc": "pure-flasharray-a"}


def test_choosing_among_sibling_arrays():
    disk = block(STORWIZE)
    twins = [backend("ibm-storwize-svc", "c@svc1#p"), backend("ibm-storwize-svc", "c@svc2#p")]
    with pytest.raises(ResolutionError, match="claimed by several backends"):
        resolve_disk(disk, None, twins)
    twins[1] = backend("ibm-storwize-svc", "c@svc2#p", naa_prefix="600507680c8006be78")
    assert resolve_disk(disk, None, twins).cinder_host == "c@svc2#p"
    # a sibling Pure array's lookup misses; the one that lists the volume wins
    vdc = enterprise()["vdc"]
    pures = [backend("pure-flasharray", "c@pure1#p", lookup=lambda s: None),
             backend("pure-flasharray", "c@pure2#p", lookup=lambda s: "db01-data")]
    assert resolve_disk(vdc, None, pures).cinder_host == "c@pure2#p"
    with pytest.raises(ResolutionError, match=r"pure-flasharray-a: .*not in the lookup"):
        resolve_disk(vdc, None, pures[:1])
    # ...but a mere plausible guess does not hide another backend's error
    guess_and_error = [backend("ibm-storwize-svc", "c@svc1#p"),
                       backend("ibm-storwize-svc", "c@svc2#p", manageable=[])]
    with pytest.raises(ResolutionError, match="has no such volume"):
        resolve_disk(disk, None, guess_and_error)
