from os_onboard.inventory.conflicts import find_conflicts
from os_onboard.inventory.models import Host, HostInventory, Inventory, Nic, PowerState, Vm


def _vm(name, uuid, mac, state=PowerState.RUNNING):
    return Vm(uuid=uuid, name=name, power_state=state, vcpus=1, memory_mib=96,
              nics=[Nic(mac=mac, source_kind="network")])


def _host(uri, *vms):
    return HostInventory(host=Host(uri=uri, kind="libvirt"), vms=list(vms))


def test_duplicate_macs_and_uuids_are_reported():
    inv = Inventory(hosts=[
        _host("qemu+ssh://a/system", _vm("web", "u-1", "52:54:00:00:00:01"),
              _vm("db", "u-2", "52:54:00:00:00:02")),
        _host("qemu+ssh://b/system", _vm("web", "u-1", "52:54:00:00:00:01", PowerState.SHUTOFF),
              _vm("clone", "u-3", "52:54:00:00:00:02"),
              _vm("split-brain", "u-2", "52:54:00:00:00:09")),
    ])
    by_value = {c.value: c for c in find_conflicts(inv)}
    assert by_value["52:54:00:00:00:02"].members == ["qemu+ssh://a/system db",
                                                    "qemu+ssh://b/system clone"]
    assert by_value["52:54:00:00:00:01"].kind == "duplicate-mac"
    assert "leftover definition" in by_value["u-1"].detail
    assert by_value["u-2"].detail == "active on 2 hosts at once"
    assert "52:54:00:00:00:09" not in by_value and "u-3" not in by_value


def test_a_vm_with_two_nics_on_one_mac_is_not_a_conflict_with_itself():
    vm = _vm("dual", "u-9", "52:54:00:00:00:05")
    vm.nics.append(Nic(mac="52:54:00:00:00:05", source_kind="bridge"))
    assert find_conflicts(Inventory(hosts=[_host("test:///default", vm)])) == []


def test_a_migrated_guest_gets_its_lease_from_the_network_owning_host():
    from os_onboard.inventory.leases import join_leases_across_hosts
    from os_onboard.inventory.models import AddressSource, IpAddress, Lease, Network

    lease = Lease(mac="52:54:00:00:00:01", address=IpAddress(
        family="ipv4", address="192.168.150.10", prefix=24, source=AddressSource.DHCP_LEASE))
    owner = _host("qemu:///system")
    owner.networks = [Network(name="lab", bridge="virbr-onb", dhcp=True, leases=[lease])]
    moved = _vm("web", "u-1", "52:54:00:00:00:01")
    moved.domain_id = 7
    moved.nics[0].network = "lab"
    stopped = _vm("old", "u-2", "52:54:00:00:00:01", PowerState.SHUTOFF)
    inv = Inventory(hosts=[owner, _host("qemu+tcp://127.0.0.2/system", moved, stopped)])
    join_leases_across_hosts(inv)
    assert [a.address for a in moved.nics[0].addresses] == ["192.168.150.10"]
    assert stopped.nics[0].addresses == []  # not running: no address
