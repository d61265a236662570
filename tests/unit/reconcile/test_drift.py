"""Drift detection (pure) and the per-kind policy parser."""

from dataclasses import replace

import pytest

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import (
    AddressSource,
    Disk,
    Host,
    HostInventory,
    HostStatus,
    Inventory,
    IpAddress,
    Location,
    Nic,
    PowerState,
    Problem,
    Severity,
    Vm,
)
from os_onboard.mapping.model import PolicyGroup
from os_onboard.reconcile.drift import AdoptedServer, DriftKind, find_drift
from os_onboard.reconcile.pending import Records, records_document, records_from_document
from os_onboard.reconcile.policy import parse_policies

UUID = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
MAC, IP = "52:54:00:0b:01:01", "192.168.150.11"
HOSTS = {"hv-a": "compute-a", "hv-b": "compute-b"}


def vm(uuid=UUID, name="web1", state=PowerState.RUNNING, macs=((MAC, IP),), vcpus=1,
       mem=96, disks=("vda",)) -> Vm:
    return Vm(uuid=uuid, name=name, power_state=state, vcpus=vcpus, memory_mib=mem,
              disks=[Disk(device="disk", target=t, source_kind="file", source=f"/d/{t}")
                     for t in disks],
              nics=[Nic(mac=m, source_kind="network", network="lab",
                        addresses=[IpAddress(family="ipv4", address=ip,
                                             source=AddressSource.DHCP_LEASE)] if ip else [])
                    for m, ip in macs])


def host(name, *vms) -> HostInventory:
    return HostInventory(host=Host(uri=f"qemu+ssh://{name}/system", kind="libvirt",
                                   hostname=name), vms=list(vms))


def server(status="ACTIVE", node="hv-a", ports=((MAC, (IP,), "compute-a"),), vcpus=1,
           ram=96, volumes=()) -> AdoptedServer:
    return AdoptedServer(uuid=UUID, name="web1", host=HOSTS[node], node=node, status=status,
                         vcpus=vcpus, ram=ram, ports=ports, volume_devices=volumes)


def kinds(inventory, servers):
    return [(d.kind, d.before, d.after) for d in find_drift(inventory, servers, HOSTS)]


def test_in_sync_means_no_drift():
    assert kinds(Inventory(hosts=[host("hv-a", vm()), host("hv-b")]), [server()]) == []


def test_out_of_band_migration_is_host_changed_with_the_destination():
    inventory = Inventory(hosts=[host("hv-a"), host("hv-b", vm())])
    [drift] = find_drift(inventory, [server()], HOSTS)
    assert drift.kind is DriftKind.HOST_CHANGED
    assert drift.detail == {"host": "compute-b", "node": "hv-b"}
    assert (drift.before, drift.after) == ("compute-a/hv-a", "compute-b/hv-b")


def test_leftover_shut_off_definition_on_the_source_does_not_hide_the_move():
    inventory = Inventory(hosts=[host("hv-a", vm(state=PowerState.SHUTOFF)),
                                 host("hv-b", vm())])
    assert [k for k, *_ in kinds(inventory, [server()])] == [DriftKind.HOST_CHANGED]


@pytest.mark.parametrize(("status", "actual"), [
    ("ACTIVE", PowerState.SHUTOFF), ("ACTIVE", PowerState.PAUSED),
    ("SHUTOFF", PowerState.RUNNING), ("PAUSED", PowerState.RUNNING)])
def test_power_changes(status, actual):
    inventory = Inventory(hosts=[host("hv-a", vm(state=actual))])
    found = [k for k in kinds(inventory, [server(status=status)])
             if k[0] is DriftKind.POWER_CHANGED]
    assert found == [(DriftKind.POWER_CHANGED, f"{status} ({_expected(status)})", str(actual))]


def _expected(status):
    return {"ACTIVE": "running", "SHUTOFF": "shutoff", "PAUSED": "paused"}[status]


def test_nic_added_removed_and_ip_changed():
    inventory = Inventory(hosts=[host("hv-a", vm(macs=((MAC, "192.168.150.99"),
                                                       ("52:54:00:0b:01:02", None))))])
    ports = ((MAC, (IP,), "compute-a"), ("52:54:00:0b:09:09", (), "compute-a"))
    found = {k for k, *_ in kinds(inventory, [server(ports=ports)])}
    assert found == {DriftKind.NIC_ADDED, DriftKind.NIC_REMOVED, DriftKind.IP_CHANGED}


def test_a_nic_without_a_lease_is_not_an_ip_change():
    inventory = Inventory(hosts=[host("hv-a", vm(macs=((MAC, None),)))])
    assert kinds(inventory, [server()]) == []


def test_resize_and_disk_removed():
    inventory = Inventory(hosts=[host("hv-a", vm(vcpus=2, mem=128))])
    found = {k for k, *_ in kinds(inventory, [server(volumes=("/dev/vdb",))])}
    assert found == {DriftKind.RESIZED, DriftKind.DISK_REMOVED}


def test_vm_gone_only_when_its_host_was_read():
    gone = Inventory(hosts=[host("hv-a"), host("hv-b")])
    assert [k for k, *_ in kinds(gone, [server()])] == [DriftKind.VM_GONE]
    dead = host("hv-a").model_copy(update={"status": HostStatus.UNREACHABLE, "problems": [
        Problem(severity=Severity.ERROR, code="host-unreachable", message="no answer",
                host="qemu+ssh://hv-a/system")]})
    unreadable = Inventory(hosts=[dead, host("hv-b")])
    assert kinds(unreadable, [server()]) == []


def test_a_vm_on_a_managed_host_that_openstack_does_not_know():
    inventory = Inventory(hosts=[host("hv-a", vm(), vm(uuid=OTHER, name="new1"))])
    assert kinds(inventory, [server()]) == [
        (DriftKind.NOT_ADOPTED, "not in OpenStack", "running on hv-a")]


def test_policies_per_kind():
    policies = parse_policies("tolerate", ["power-changed=report"])
    assert policies.of(DriftKind.HOST_CHANGED) == "tolerate"
    assert policies.of(DriftKind.POWER_CHANGED) == "report"
    with pytest.raises(ConfigError, match="kind must be one of"):
        parse_policies("report", ["teleported=tolerate"])
    with pytest.raises(ConfigError, match="policy must be one of"):
        parse_policies("report", ["vm-gone=delete"])
    with pytest.raises(ConfigError):
        parse_policies("ignore", [])


def test_disk_added_only_for_disks_cinder_could_manage():
    """A hot-plugged RBD disk is drift; a local file (kept out of the records at
    adoption, like lab-vm1's data file) is not; a recorded root volume is no removal."""
    rbd = [Disk(device="disk", target=t, source_kind="network-rbd", source=f"legacy/{t}")
           for t in ("vda", "vdc")]
    guest = vm(disks=("sdb",)).model_copy(update={"disks": [*rbd, *vm(disks=("sdb",)).disks]})
    found = kinds(Inventory(hosts=[host("hv-a", guest)]), [server(volumes=("/dev/vda",))])
    assert found == [(DriftKind.DISK_ADDED, "no volume", "disk vdc (legacy/vdc)")]


def test_policies_per_host_group_first_match_by_uri_or_hostname():
    groups = [PolicyGroup(hosts="qemu+ssh://prod-*", policy="report"),
              PolicyGroup(hosts="wave1-*", policy="tolerate", kinds={"vm-gone": "report"}),
              PolicyGroup(hosts="*", policy="tolerate")]  # never reached for prod/wave1
    policies = parse_policies("report", ["host-changed=tolerate"], groups)
    prod = ("qemu+ssh://prod-7/system", "prod-7")
    assert policies.of(DriftKind.HOST_CHANGED, *prod) == "report"
    assert policies.of(DriftKind.VM_GONE, "qemu+tcp://wave1-3/system", "wave1-3") == "report"
    assert policies.of(DriftKind.POWER_CHANGED, None, "wave1-3") == "tolerate"
    assert policies.of(DriftKind.POWER_CHANGED, "qemu:///system", "other") == "tolerate"
    only_named = parse_policies("report", ["host-changed=tolerate"], groups[:2])
    assert only_named.of(DriftKind.HOST_CHANGED, "qemu:///system", "other") == "tolerate"
    assert only_named.of(DriftKind.POWER_CHANGED, "qemu:///system", "other") == "report"


def test_a_host_group_with_an_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="policies: hosts 'hv-\\*': kind must be one of"):
        parse_policies("report", [], [PolicyGroup(hosts="hv-*", policy="tolerate",
                                                  kinds={"teleported": "report"})])


def test_a_server_nova_booted_is_not_called_not_adopted():
    # Nova knows it (no os-onboard marker): nothing to adopt, nothing to report.
    inventory = Inventory(hosts=[host("hv-a", vm(), vm(uuid=OTHER, name="nova-booted"))])
    assert find_drift(inventory, [server()], HOSTS, others={OTHER}) == []
    [drift] = find_drift(inventory, [server()], HOSTS)
    assert (drift.kind, drift.uuid) == (DriftKind.NOT_ADOPTED, OTHER)


def test_records_keep_nova_s_other_servers_across_the_cache():
    records = Records([server()], HOSTS, [], frozenset({OTHER}))
    assert records_from_document(records_document(records)) == records


def test_adopt_is_a_policy_for_not_adopted_only():
    policies = parse_policies("tolerate", ["not-adopted=adopt"])
    assert policies.of(DriftKind.NOT_ADOPTED) == "adopt"
    assert policies.of(DriftKind.HOST_CHANGED) == "tolerate"
    group = PolicyGroup(hosts="wave1-*", policy="report", kinds={"not-adopted": "adopt"})
    assert parse_policies("report", [], [group]).of(
        DriftKind.NOT_ADOPTED, None, "wave1-2") == "adopt"
    with pytest.raises(ConfigError, match="'adopt' is for not-adopted only"):
        parse_policies("report", ["vm-gone=adopt"])
    with pytest.raises(ConfigError, match=r"policies: hosts 'hv-\*': .*'adopt' is for"):
        parse_policies("report", [], [PolicyGroup(hosts="hv-*", policy="report",
                                                  kinds={"power-changed": "adopt"})])
    with pytest.raises(ConfigError):
        parse_policies("adopt", [])  # not a default for every kind


# -- renamed (vSphere: the VM's name is the one people give it) ----------------------

VC = "5f2a1c9e-0000-4000-8000-00000000vc01"


def vc_host(*vms) -> HostInventory:
    return HostInventory(host=Host(uri="vsphere://u@vc/", kind="vsphere", hostname="vc",
                                   uuid=VC), vms=list(vms))


def vc_vm(name: str) -> Vm:
    return vm(name=name).model_copy(update={"location": Location(cluster_id="domain-c7")})


def vc_server(name: str, vm_name: str | None) -> AdoptedServer:
    return AdoptedServer(uuid=UUID, name=name, host="vc-c0", node=f"domain-c7.{VC}",
                         status="ACTIVE", vcpus=1, ram=96, ports=((MAC, (IP,), "vc-c0"),),
                         vm_name=vm_name)


def renames(vm_name: str, server: AdoptedServer, kind=vc_host) -> list:
    inventory = Inventory(hosts=[kind(vc_vm(vm_name))])
    return [(d.before, d.after, d.detail) for d in
            find_drift(inventory, [server], {f"domain-c7.{VC}": "vc-c0"})]


def test_a_rename_in_vcenter_is_drift_against_the_name_last_taken_from_it():
    assert renames("web1", vc_server("web1", "web1")) == []
    assert renames("web2", vc_server("web1", "web1")) == [
        ("web1", "web2", {"name": "web2", "vm_name_was": "web1"})]


def test_a_rename_through_openstack_is_no_drift():
    assert renames("web1", vc_server("frontend", "web1")) == []


def test_both_renamed_at_once_the_vm_wins_and_the_openstack_name_is_kept_in_the_detail():
    assert renames("web2", vc_server("frontend", "web1")) == [
        ("frontend", "web2", {"name": "web2", "vm_name_was": "web1",
                              "openstack_name": "frontend"})]


def test_no_rename_drift_without_the_key_nor_on_libvirt():
    assert renames("web2", vc_server("web1", None)) == []  # adopted before the key existed
    # libvirt: Nova names the domains it redefines instance-<n>; that is no rename
    inventory = Inventory(hosts=[host("hv-a", vm(name="instance-0000002a"))])
    assert find_drift(inventory, [replace(server(), vm_name="web1")], HOSTS) == []


def test_the_vm_name_survives_the_records_cache():
    records = Records([vc_server("frontend", "web1")], {}, [], frozenset())
    assert records_from_document(records_document(records)) == records
