from os_onboard.drivers.libvirt import hostxml
from os_onboard.drivers.libvirt.domxml import parse_domain
from os_onboard.inventory.models import Host, HostInventory, Inventory, PowerState, Vm
from os_onboard.inventory.storage import storage_view
from tests.conftest import read_data


def _vm(name: str) -> Vm:
    config = parse_domain(read_data("domains", name))
    fields = {k: v for k, v in vars(config).items() if k != "warnings"}
    return Vm(**fields, power_state=PowerState.RUNNING)


def test_every_disk_lands_on_its_storage_device():
    rbd_pool = hostxml.parse_pool(read_data("host", "pool-rbd.xml"))
    rbd_pool.volumes.append(hostxml.parse_volume(read_data("host", "vol-rbd.xml")))
    lvm = hostxml.parse_pool(read_data("host", "pool-logical.xml"))
    lvm.volumes.append(hostxml.parse_volume(read_data("host", "vol-lv.xml")))
    sdb = hostxml.parse_node_device(read_data("host", "nodedev-sdb.xml"))
    host = HostInventory(host=Host(uri="qemu:///system", kind="libvirt"),
                         vms=[_vm("enterprise-uefi.xml"), _vm("lab-style.xml")],
                         storage_pools=[rbd_pool, lvm], block_devices=[sdb])
    view = {(e.device_kind, e.device, e.volume): e for e in storage_view(Inventory(hosts=[host]))}

    def users(key):
        return [(u.vm, u.target) for u in view[key].users]

    assert users(("pool-rbd", "ceph-legacy", "db01-root")) == [("db01", "vda")]
    assert users(("pool-logical", "vg-data", "db01-logs")) == [("db01", "vdb")]
    # the LUN named by its by-id path is joined to the host's SCSI device by page 83
    lun = view[("block-device", "/dev/sdb", None)]
    assert [(u.vm, u.target) for u in lun.users] == [("db01", "sdc")]
    assert lun.scsi_page83 == "naa.600a098038303053453f463045727a51"
    assert users(("iscsi", "iqn.2001-05.com.equallogic:0-8a0906-db01data", "1")) == [
        ("db01", "sdb")]
    data = view[("directory", "/var/lib/lab/images", "legacy-web-data.raw")]
    assert data.serial == "DATA-legacy-web" and data.scsi_page83 == "naa.5000c5000000012d"
    # the empty CD-ROM tray uses no storage and appears nowhere
    assert not any(u.target == "hdc" for e in view.values() for u in e.users)
