"""vSphere VMs through the planner: the VMware driver's node, port groups, nothing written
to vCenter, and what is refused (standalone hosts, opaque networks, twin instanceUuids)."""

import pytest

from os_onboard.inventory.models import (
    AddressSource,
    Caveat,
    Disk,
    Host,
    HostInventory,
    Inventory,
    IpAddress,
    Location,
    Nic,
    PowerState,
    Vm,
)
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan
from os_onboard.plan.cloudview import CloudView
from os_onboard.plan.model import Op, StepKind

VC_URI = "vsphere://onboard@vc.example/"
VC_UUID = "dbed6e0c-bd88-4ef6-b594-21283e1c677f"
NODE = f"domain-c7.{VC_UUID}"
UUID1 = "50011111-1111-4111-8111-111111111111"
UUID2 = "50022222-2222-4222-8222-222222222222"
MAC1, MAC2 = "00:50:56:01:01:01", "00:50:56:01:01:02"
NETWORK = {"id": "net-vc", "name": "vc-net", "physical_network": "physnet-vc",
           "network_type": "flat", "segment": None, "subnet_ids": ["sub-vc"]}
SUBNET = {"id": "sub-vc", "name": "vc-net-v4", "network_id": "net-vc",
          "cidr": "10.20.0.0/24", "enable_dhcp": False, "ip_version": 4}


def mapping(**overrides) -> Mapping:
    data = {"owners": [{"match": {"name": "app-*"}, "project": "demo", "user": "demo"}],
            "networks": [{"match": {"network": "DC0_DVPG0"}, "neutron_network": "vc-net",
                          "subnet": "vc-net-v4"}],
            "flavors": {"policy": "reuse-or-create", "prefix": "adopted"}}
    return Mapping.model_validate({**data, **overrides})


def cloud() -> CloudView:
    hyp = {"node": NODE, "uuid": "rp-c7", "state": "up", "status": "enabled",
           "host_ip": "127.0.0.1", "service_host": "vc-compute-c0"}
    return CloudView(hypervisors=[hyp], networks=[NETWORK], subnets=[SUBNET],
                     projects={"demo": "p-demo"}, users={"demo": "u-demo"})


def vmdk(target="scsi0:0", name="disk1", capacity=2 * 1024**3, thin=True) -> Disk:
    return Disk(device="disk", bus="scsi", target=target, format="vmdk", source_kind="file",
                source=f"[LocalDS_0] app/{name}.vmdk", capacity_bytes=capacity,
                controller=target, thin=thin)


def nic(mac=MAC1, ip="10.20.0.11", kind="distributed-portgroup", network="DC0_DVPG0") -> Nic:
    return Nic(mac=mac, model="vmxnet3", source_kind=kind, network=network,
               portgroup=network,
               addresses=[IpAddress(family="ipv4", address=ip, prefix=24,
                                    source=AddressSource.GUEST_AGENT)])


def vm(name="app-1", uuid=UUID1, *, cluster="domain-c7", disks=None, nics=None,
       power_state=PowerState.RUNNING, **fields) -> Vm:
    return Vm(uuid=uuid, name=name, power_state=power_state, vcpus=2, memory_mib=2048,
              guest_os="otherLinux64Guest", virt_type="vmx", machine_type="vmx-13",
              location=Location(datacenter="DC0", cluster="DC0_C0" if cluster else None,
                                cluster_id=cluster, host="esx-1"),
              disks=[vmdk()] if disks is None else disks,
              nics=[nic()] if nics is None else nics, **fields)


def plan_of(*vms, vc_uuid=VC_UUID, **mapping_overrides):
    host = Host(uri=VC_URI, kind="vsphere", hostname="vc.example", uuid=vc_uuid)
    inv = Inventory(hosts=[HostInventory(host=host, vms=list(vms))])
    return build_plan(inv, 1, cloud(), mapping(**mapping_overrides))


def test_a_vm_in_a_cluster_is_planned_on_the_clusters_compute_node():
    [p] = plan_of(vm()).vms
    assert p.op is Op.CREATE, p.blocked
    assert (p.node, p.host) == (NODE, "vc-compute-c0")
    # Nothing on the hypervisor side: no host steps at all.
    assert [s.kind for s in p.steps] == [StepKind.PORT, StepKind.SERVER, StepKind.ALLOCATION,
                                         StepKind.NETWORK_CACHE]
    port = p.steps[0]
    assert port.params["mac"] == MAC1 and port.params["network"] == "vc-net"
    assert [f["ip_address"] for f in port.params["fixed_ips"]] == ["10.20.0.11"]
    server = next(s for s in p.steps if s.kind is StepKind.SERVER)
    assert server.params["root_kind"] == "local" and server.params["vm_state"] == "active"
    # a name Nova parses when it names the next attached volume (not vSphere's scsi0:0)
    assert server.params["root_device_name"] == "/dev/sda"
    assert server.params["system_metadata"] == {
        "image_vmware_ostype": "otherLinux64Guest", "image_hw_vif_model": "vmxnet3",
        "image_vmware_disktype": "thin"}
    assert any("stays in the VM" in n for n in p.notes)
    assert any("no nvp.vm-uuid" in n for n in p.notes)
    assert p.rebuild_changes == []


def test_a_vm_on_a_standalone_host_or_an_unknown_vcenter_is_refused():
    [p] = plan_of(vm(cluster=None)).vms
    assert p.op is Op.BLOCKED and p.steps == []
    assert any("standalone host esx-1" in b for b in p.blocked)
    [q] = plan_of(vm(), vc_uuid=None).vms
    assert any("instance UUID was not read" in b for b in q.blocked)


def test_a_cluster_without_its_nova_compute_is_refused():
    [p] = plan_of(vm(cluster="domain-c9")).vms
    assert p.op is Op.BLOCKED
    assert any(f"no nova-compute manages compute node domain-c9.{VC_UUID}" in b
               for b in p.blocked)


def test_an_nsx_nic_is_refused_with_its_backing():
    [p] = plan_of(vm(nics=[nic(kind="opaque-network", network="ls-42")])).vms
    assert any("NIC 00:50:56:01:01:01 is on a opaque-network" in b for b in p.blocked)


def test_twins_sharing_an_instance_uuid_are_both_refused():
    plan = plan_of(vm("app-1"), vm("app-1-clone", nics=[nic(MAC2, "10.20.0.12")]))
    assert {p.op for p in plan.vms} == {Op.BLOCKED}
    for p in plan.vms:
        assert any(f"UUID {UUID1} is used by several VMs" in b for b in p.blocked)


def test_a_template_is_refused_as_a_caveat():
    template = vm(caveats=[Caveat(kind="vsphere-template", detail="config.template = true",
                                  reason="a template is not a runnable VM")])
    [p] = plan_of(template).vms
    assert any("vsphere-template" in b for b in p.blocked)


@pytest.mark.parametrize("keep", [False, True])
def test_a_vmdk_data_disk_needs_a_backend_or_local_disks_keep(keep):
    disks = [vmdk(), vmdk("scsi0:1", "data", thin=False)]
    overrides = {"local_disks": "keep"} if keep else {}
    [p] = plan_of(vm(disks=disks), **overrides).vms
    if keep:
        assert p.op is Op.CREATE
        assert any("stays attached to the VM" in c for c in p.rebuild_changes)
    else:
        assert any("disk scsi0:1" in b and "no Cinder backend" in b for b in p.blocked)


# -- drift: the VMware driver's nodes are clusters ---------------------------------------

def _server(uuid=UUID1, node=NODE, status="ACTIVE"):
    from os_onboard.reconcile.drift import AdoptedServer

    return AdoptedServer(uuid=uuid, name="app-1", host="vc-compute-c0", node=node,
                         status=status, vcpus=2, ram=2048,
                         ports=((MAC1, ("10.20.0.11",), "vc-compute-c0"),))


def _drift(*vms, servers=()):
    from os_onboard.reconcile.drift import find_drift

    host = Host(uri=VC_URI, kind="vsphere", hostname="vc.example", uuid=VC_UUID)
    inv = Inventory(hosts=[HostInventory(host=host, vms=list(vms))])
    hosts = {NODE: "vc-compute-c0", f"domain-c9.{VC_UUID}": "vc-compute-c1"}
    return {(d.kind.value, d.uuid): d for d in find_drift(inv, list(servers), hosts)}


def test_a_vmotion_to_another_cluster_moves_the_server_to_that_clusters_node():
    drifts = _drift(vm(cluster="domain-c9"), servers=[_server()])
    moved = drifts[("host-changed", UUID1)]
    assert moved.detail == {"host": "vc-compute-c1", "node": f"domain-c9.{VC_UUID}"}
    assert _drift(vm(), servers=[_server()]) == {}  # within the cluster: nothing to do


def test_a_cold_relocation_moves_the_server_too():
    """A powered-off VM is registered on one host: its place counts (libvirt's shut-off
    definitions do not)."""
    off = vm(cluster="domain-c9", power_state=PowerState.SHUTOFF)
    drifts = _drift(off, servers=[_server(status="SHUTOFF")])
    assert set(drifts) == {("host-changed", UUID1)}
    assert drifts[("host-changed", UUID1)].detail["node"] == f"domain-c9.{VC_UUID}"


def test_a_volume_nova_attached_is_matched_by_its_disk_uuid_not_its_name():
    """Nova's VMware driver calls an attached volume sdb; vSphere's slot is scsi0:1 and
    the disk's backing uuid is the volume id: neither disk-added nor disk-removed."""
    from os_onboard.reconcile.drift import AdoptedServer

    volume = "6a0e6c5e-1b6d-4f7e-9a55-5b1d3d2e9f10"
    data = vmdk().model_copy(update={"target": "scsi0:1", "controller": "scsi0:1",
                                     "source_kind": "block", "disk_uuid": volume.upper(),
                                     "source": "[LocalDS_0] volume-x/volume-x.vmdk"})
    recorded = AdoptedServer(uuid=UUID1, name="app-1", host="vc-compute-c0", node=NODE,
                             status="ACTIVE", vcpus=2, ram=2048,
                             ports=((MAC1, ("10.20.0.11",), "vc-compute-c0"),),
                             volume_devices=("/dev/sdb",), volume_ids=(volume,))
    assert _drift(vm(disks=[vmdk(), data]), servers=[recorded]) == {}
    # ...and a detach seen in vCenter is still one
    assert set(_drift(vm(), servers=[recorded])) == {("disk-removed", UUID1)}


def test_vcenter_drift_not_adopted_gone_and_standalone():
    drifts = _drift(vm("app-2", UUID2), vm("app-3", "50033333-3333-4333-8333-333333333333",
                                            cluster=None), servers=[_server()])
    assert ("not-adopted", UUID2) in drifts  # in a cluster a nova-compute manages
    assert ("vm-gone", UUID1) in drifts       # the vCenter answered without it
    assert not any(u.startswith("50033333") for _k, u in drifts)  # standalone: no node


# -- data disks: VMDK volumes recorded in place, RDM LUNs through the SAN resolvers ---------

DISK_UUID = "6000c298-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
VMDK_BACKEND = {"name": "vmdk", "cinder_host": "ctl@vmdk#vmdk", "driver": "vmware-vmdk",
                "options": {"datastores": ["LocalDS_0"], "vcenter": VC_UUID}}
RDM_NAA = "naa.600507680c8006be780000000000001c"


def data_vmdk(**update) -> Disk:
    return vmdk("scsi0:1", "data").model_copy(update={"disk_uuid": DISK_UUID, **update})


def test_a_vmdk_data_disk_is_recorded_in_place_and_the_root_stays_in_the_vm():
    [p] = plan_of(vm(disks=[vmdk(), data_vmdk()]), backends=[VMDK_BACKEND]).vms
    assert p.op is Op.CREATE, p.blocked
    kinds = [s.kind for s in p.steps]
    assert kinds == [StepKind.PORT, StepKind.VOLUME, StepKind.HOST, StepKind.SERVER,
                     StepKind.ALLOCATION, StepKind.NETWORK_CACHE]
    volume = p.steps[1]
    assert volume.params["target"] == "scsi0:1" and volume.params["in_place"] == "vmdk"
    assert volume.params["volume_id"] == DISK_UUID and volume.params["vm_uuid"] == UUID1
    assert volume.params["ref"] == {"source-name": "[LocalDS_0] app/data.vmdk"}
    assert "in place" in volume.summary and f"volume-{DISK_UUID}" in volume.summary
    # the one write to the VM, named: Nova's detach looks the disk up by this key
    host = p.steps[2]
    assert host.params["keys"] == {f"volume-{DISK_UUID}": DISK_UUID}
    assert "ReconfigVM_Task" in host.summary and "guest does not see" in host.summary
    server = next(s for s in p.steps if s.kind is StepKind.SERVER)
    assert server.params["root_kind"] == "local"  # the backend could take it; the VM keeps it


@pytest.mark.parametrize(("update", "reason"), [
    ({"disk_uuid": None}, "has no uuid"),
    ({"backing_chain": [{"format": "vmdk", "source_kind": "file",
                         "source": "[LocalDS_0] app/data-000001.vmdk"}]}, "snapshot deltas"),
    ({"shareable": True}, "multi-writer"),
])
def test_a_vmdk_data_disk_cinder_cannot_hold_is_refused_with_why(update, reason):
    [p] = plan_of(vm(disks=[vmdk(), data_vmdk(**update)]), backends=[VMDK_BACKEND]).vms
    assert p.op is Op.BLOCKED and any(reason in b for b in p.blocked), p.blocked


def test_a_vmdk_backend_of_another_vcenter_or_datastore_does_not_claim_the_disk():
    other_vc = {**VMDK_BACKEND, "options": {"vcenter": "0000-other"}}
    other_ds = {**VMDK_BACKEND, "options": {"datastores": ["SharedDS"]}}
    for backend in (other_vc, other_ds):
        [p] = plan_of(vm(disks=[vmdk(), data_vmdk()]), backends=[backend]).vms
        assert any("disk scsi0:1" in b and "no Cinder backend" in b for b in p.blocked)


def rdm() -> Disk:
    from os_onboard.inventory.models import DiskIdentifiers

    return Disk(device="lun", bus="scsi", target="scsi0:2", format="raw", source_kind="block",
                source=f"/vmfs/devices/disks/{RDM_NAA}", controller="scsi0:2",
                identifiers=DiskIdentifiers(scsi_page83=RDM_NAA, vendor="IBM",
                                            product="2145", by_id=[RDM_NAA]))


def test_an_rdm_lun_is_resolved_by_its_naa_id_or_refused():
    svc = {"name": "svc", "cinder_host": "ctl@svc#pool", "driver": "ibm-storwize-svc",
           "options": {"naa_prefix": "naa.600507680c8006be78"}}
    [p] = plan_of(vm(disks=[vmdk(), rdm()]), backends=[svc]).vms
    assert p.op is Op.CREATE, p.blocked
    [volume] = [s for s in p.steps if s.kind is StepKind.VOLUME]
    assert volume.params["ref"]["source-id"] == "600507680C8006BE780000000000001C"
    assert not volume.params.get("in_place")  # Cinder's manage API: a LUN is not moved
    [q] = plan_of(vm(disks=[vmdk(), rdm()])).vms
    assert any("disk scsi0:2" in b and "no Cinder backend" in b for b in q.blocked)


def test_a_data_vmdk_no_volume_records_is_disk_added_but_the_root_never_is():
    drifts = _drift(vm(disks=[vmdk(), data_vmdk()]), servers=[_server()])
    assert set(drifts) == {("disk-added", UUID1)}
    assert drifts[("disk-added", UUID1)].detail == {"target": "scsi0:1"}
    assert _drift(vm(disks=[vmdk()]), servers=[_server()]) == {}  # the root stays in the VM
