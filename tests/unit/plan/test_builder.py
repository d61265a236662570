"""The pure planner (build_plan) and its text form (render_plan).

Inventories are built by hand; the CloudView holds plain dicts shaped like
os_onboard.cloud.openstack returns them (hypervisors, servers, ports, networks,
subnets, flavors).
"""

import pytest

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import (
    AddressSource,
    Caveat,
    Disk,
    Firmware,
    Host,
    HostInventory,
    Inventory,
    IpAddress,
    Nic,
    PowerState,
    Vm,
)
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan, read_cloud_view
from os_onboard.plan.cloudview import CloudView
from os_onboard.plan.model import MARKER_KEY, Op, Plan, SharedKind, StepKind, VmPlan
from os_onboard.plan.render import render_plan

GIB = 1024**3
HV_URI = "qemu+ssh://root@hv1/system"
UUID1 = "11111111-1111-4111-8111-111111111111"
UUID2 = "22222222-2222-4222-8222-222222222222"
UUID3 = "33333333-3333-4333-8333-333333333333"
MAC1, MAC2 = "52:54:00:0b:01:01", "52:54:00:0b:01:02"
IP1, IP2 = "192.168.150.11", "192.168.150.12"
ROOT_PATH = "/var/lib/libvirt/images/lab-vm1.qcow2"
CINDER_HOST = "lab@ceph-legacy#ceph-legacy"
NETWORK = {"id": "net-lab", "name": "onboard-lab", "physical_network": "physnet1",
           "network_type": "flat", "segment": None, "subnet_ids": ["sub-lab"]}
SUBNET = {"id": "sub-lab", "name": "onboard-lab-v4", "network_id": "net-lab",
          "cidr": "192.168.150.0/24", "enable_dhcp": False, "ip_version": 4}


# -- builders ---------------------------------------------------------------------------------

def mapping(**overrides) -> Mapping:
    """The lab's mapping (lab/mapping.yaml) with local_disks at its default, block."""
    data = {
        "owners": [{"match": {"name": "lab-*"}, "project": "demo", "user": "demo"}],
        "networks": [{"match": {"network": "onboard-lab"}, "neutron_network": "onboard-lab",
                      "subnet": "onboard-lab-v4"}],
        "backends": [{"name": "ceph-legacy", "cinder_host": CINDER_HOST, "driver": "rbd",
                      "options": {"rbd_pool": "legacy", "monitors": ["127.0.0.1:6789"]}}],
        "flavors": {"policy": "reuse-or-create", "prefix": "adopted"},
    }
    return Mapping.model_validate({**data, **overrides})


def hypervisor(node="hv1", state="up") -> dict:
    return {"node": node, "uuid": f"rp-{node}", "state": state, "status": "enabled",
            "host_ip": "10.0.0.1", "service_host": f"compute-{node}"}


def port(port_id, mac, *ips, device_id="", network_id="net-lab") -> dict:
    return {"id": port_id, "name": "", "network_id": network_id, "mac": mac,
            "fixed_ips": [{"subnet_id": "sub-lab", "ip_address": ip} for ip in ips],
            "device_id": device_id, "device_owner": "compute:nova" if device_id else "",
            "host": "", "vif_type": "unbound", "status": "DOWN", "description": ""}


def server(name, metadata=None) -> dict:
    return {"name": name, "status": "ACTIVE", "host": "compute-hv1", "node": "hv1",
            "metadata": metadata or {}, "project_id": "p-demo", "flavor": "m1.lab",
            "power_state": 1, "task_state": None}


def flavor(name, vcpus=1, ram=96, disk=1, *, ephemeral=0, swap=0, extra_specs=None) -> dict:
    return {"id": f"f-{name}", "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
            "ephemeral": ephemeral, "swap": swap, "is_public": True,
            "extra_specs": extra_specs or {}}


def cloud(**overrides) -> CloudView:
    view = {"hypervisors": [hypervisor()], "networks": [NETWORK], "subnets": [SUBNET],
            "projects": {"demo": "p-demo"}, "users": {"demo": "u-demo"}}
    return CloudView(**{**view, **overrides})


def nic(mac=MAC1, *ips, source_kind="network", network="onboard-lab", model="virtio") -> Nic:
    return Nic(mac=mac, model=model, source_kind=source_kind, network=network,
               bridge="virbr-onb",
               addresses=[IpAddress(family="ipv6" if ":" in ip else "ipv4", address=ip,
                                    prefix=64 if ":" in ip else 24,
                                    source=AddressSource.DHCP_LEASE) for ip in ips])


def root_file(capacity=3 * GIB // 2) -> Disk:
    return Disk(device="disk", bus="virtio", target="vda", format="qcow2", source_kind="file",
                source=ROOT_PATH, capacity_bytes=capacity, boot_order=1)


def rbd_disk(target="vdb", image="lab-vm1-data", capacity=3 * GIB // 2, boot_order=None) -> Disk:
    return Disk(device="disk", bus="virtio", target=target, format="raw",
                source_kind="network-rbd", source=f"legacy/{image}",
                source_hosts=["127.0.0.1:6789"], capacity_bytes=capacity,
                boot_order=boot_order)


def local_data_disk() -> Disk:
    return Disk(device="disk", bus="scsi", target="sdb", format="raw", source_kind="file",
                source="/var/lib/libvirt/images/lab-vm1-data.raw", capacity_bytes=GIB)


def vm(name="lab-vm1", uuid=UUID1, power=PowerState.RUNNING, *, disks=None, nics=None,
       **fields) -> Vm:
    """A one-disk, one-NIC running guest unless told otherwise."""
    return Vm(uuid=uuid, name=name, power_state=power, vcpus=1, memory_mib=96,
              machine_type="pc-q35-8.2",
              disks=[root_file()] if disks is None else disks,
              nics=[nic(MAC1, IP1)] if nics is None else nics, **fields)


def full_vm(**fields) -> Vm:
    """qcow2 root file + RBD data disk + two NICs on the mapped network."""
    return vm(disks=[root_file(), rbd_disk()], nics=[nic(MAC1, IP1), nic(MAC2, IP2)], **fields)


def inventory(*vms: Vm, hostname="hv1") -> Inventory:
    host = Host(uri=HV_URI, kind="libvirt", hostname=hostname)
    return Inventory(hosts=[HostInventory(host=host, vms=list(vms))])


def plan_of(*vms: Vm, view: CloudView | None = None, rules: Mapping | None = None,
            **kwargs) -> Plan:
    return build_plan(inventory(*vms), 7, view or cloud(), rules or mapping(), **kwargs)


def one(*vms: Vm, **kwargs) -> VmPlan:
    plan = plan_of(*vms, **kwargs)
    assert len(plan.vms) == 1
    return plan.vms[0]


def step(vm_plan: VmPlan, key: str):
    return next(s for s in vm_plan.steps if s.key == key)


def shared(plan: Plan, kind: SharedKind) -> list:
    return [s for s in plan.shared if s.kind is kind]


def assert_blocked(vm_plan: VmPlan, *fragments: str) -> None:
    assert vm_plan.op is Op.BLOCKED
    assert vm_plan.steps == []
    for fragment in fragments:
        assert any(fragment in reason for reason in vm_plan.blocked), (fragment, vm_plan.blocked)


# -- a VM that can be adopted -----------------------------------------------------------------

def test_full_vm_steps_in_apply_order():
    vm_plan = one(full_vm())
    assert (vm_plan.op, vm_plan.blocked) == (Op.CREATE, [])
    assert [s.kind for s in vm_plan.steps] == [
        StepKind.PORT, StepKind.PORT, StepKind.VOLUME, StepKind.HOST,
        StepKind.HOST, StepKind.SERVER, StepKind.ALLOCATION, StepKind.NETWORK_CACHE]
    assert [s.key for s in vm_plan.steps] == [
        f"port:{MAC1}", f"port:{MAC2}", "volume:vdb", "domain-definition", "instance-dir",
        "server", "allocation", "network-cache"]
    assert all(s.op is Op.CREATE for s in vm_plan.steps)
    assert (vm_plan.host, vm_plan.node, vm_plan.host_uri) == ("compute-hv1", "hv1", HV_URI)


def test_port_step_binds_mac_and_ips_in_the_mapped_subnet():
    vm_plan = one(full_vm())
    first = step(vm_plan, f"port:{MAC1}")
    assert first.params == {"mac": MAC1, "network": "onboard-lab",
                            "fixed_ips": [{"subnet": "sub-lab", "ip_address": IP1}],
                            "bridge": "virbr-onb", "model": "virtio", "port_id": None}
    assert first.summary == f"port {MAC1} on onboard-lab ({IP1}), bound to compute-hv1"
    assert step(vm_plan, f"port:{MAC2}").params["fixed_ips"] == [
        {"subnet": "sub-lab", "ip_address": IP2}]


def test_port_mac_is_lowercased():
    vm_plan = one(vm(nics=[nic(MAC1.upper(), IP1)]))
    assert [s.key for s in vm_plan.steps if s.kind is StepKind.PORT] == [f"port:{MAC1}"]
    assert step(vm_plan, f"port:{MAC1}").params["mac"] == MAC1


def test_own_existing_port_is_reused():
    view = cloud(ports=[port("port-own", MAC1, IP1, device_id=UUID1)])
    port_step = step(one(vm(), view=view), f"port:{MAC1}")
    assert port_step.op is Op.EXISTS
    assert port_step.params["port_id"] == "port-own"


def test_rbd_volume_step_rounds_size_up_and_names_the_image():
    vm_plan = one(full_vm())
    volume = step(vm_plan, "volume:vdb")
    assert {k: volume.params[k] for k in ("target", "bus", "source", "cinder_host", "ref",
                                           "size_gib", "boot")} == {
        "target": "vdb", "bus": "virtio", "source": "legacy/lab-vm1-data",
        "cinder_host": CINDER_HOST, "ref": {"source-name": "lab-vm1-data"},
        "size_gib": 2, "boot": False}
    assert "as a 2 GiB volume, attached in-use as vdb" in volume.summary
    assert step(vm_plan, "domain-definition").params == {"sources": ["legacy/lab-vm1-data"]}
    assert any(n.startswith("vdb: Cinder renames the image") for n in vm_plan.notes)


def _checked_mapping() -> Mapping:
    rules = mapping()
    rules.backends[0] = rules.backends[0].model_copy(update={"cross_check": True})
    return rules


def _listed(*names: str) -> dict[str, list[dict]]:
    return {CINDER_HOST: [{"reference": {"source-name": n}, "size": 2, "safe_to_manage": True,
                           "reason_not_safe": None, "cinder_id": None, "extra_info": None}
                          for n in names]}


def test_cross_check_confirms_a_reference_cinder_lists():
    vm_plan = one(full_vm(), view=cloud(manageable=_listed("other", "lab-vm1-data")),
                  rules=_checked_mapping())
    assert vm_plan.op is Op.CREATE and not vm_plan.blocked
    assert step(vm_plan, "volume:vdb").params["ref"] == {"source-name": "lab-vm1-data"}


def test_cross_check_blocks_a_disk_cinder_does_not_list():
    # e.g. the image was renamed after discovery: Cinder's manage would go to error
    vm_plan = one(full_vm(), view=cloud(manageable=_listed("lab-vm1-data-moved")),
                  rules=_checked_mapping())
    assert vm_plan.op is Op.BLOCKED and not vm_plan.steps
    assert any("manageable list for lab@ceph-legacy#ceph-legacy has no such volume" in b
               for b in vm_plan.blocked), vm_plan.blocked


def test_cross_check_needs_the_list_read():
    with pytest.raises(ConfigError, match="manageable list of lab@ceph-legacy#ceph-legacy "
                                          "was not read"):
        plan_of(full_vm(), rules=_checked_mapping())


def test_the_view_reads_the_manageable_lists_the_mapping_wants():
    class Reader:
        asked: list[str] = []

        def __getattr__(self, name):
            return lambda *a: [] if name not in ("project_id", "user_id", "servers") else (
                {} if name == "servers" else None)

        def manageable_volumes(self, host):
            self.asked.append(host)
            return _listed("x")[CINDER_HOST]

    view = read_cloud_view(Reader(), mapping())
    assert Reader.asked == [] and view.manageable == {}
    view = read_cloud_view(Reader(), _checked_mapping())
    assert Reader.asked == [CINDER_HOST] and len(view.manageable[CINDER_HOST]) == 1


def test_instance_dir_links_the_root_file():
    instance_dir = step(one(full_vm()), "instance-dir")
    assert instance_dir.params == {"source": ROOT_PATH, "format": "qcow2", "kernel": None,
                                   "initrd": None}
    assert f"<instances_path>/{UUID1}/disk -> {ROOT_PATH} (qcow2)" in instance_dir.summary


def test_server_step_of_a_running_vm():
    params = step(one(full_vm()), "server").params
    assert (params["vm_state"], params["power_state"]) == ("active", 1)
    assert (params["name"], params["project_id"], params["user_id"]) == (
        "lab-vm1", "p-demo", "u-demo")
    assert params["flavor"] == "flavor:adopted-1c-96m-1g"
    assert params["images"] == {"image": "image:os-onboard-placeholder", "kernel": None,
                                "ramdisk": None}
    assert (params["root_device_name"], params["root_kind"]) == ("/dev/vda", "local")
    assert params["system_metadata"] == {"image_hw_machine_type": "pc-q35-8.2",
                                         "image_hw_disk_bus": "virtio",
                                         "image_hw_vif_model": "virtio"}


def test_uefi_guest_keeps_uefi_firmware_on_rebuild():
    params = step(one(vm(firmware=Firmware.UEFI)), "server").params
    assert params["system_metadata"]["image_hw_firmware_type"] == "uefi"
    bios = step(one(vm(firmware=Firmware.BIOS)), "server").params
    assert "image_hw_firmware_type" not in bios["system_metadata"]


def test_allocation_counts_vcpu_memory_and_floored_root_disk():
    allocation = step(one(full_vm()), "allocation")
    assert allocation.summary == "Placement: 1 VCPU, 96 MEMORY_MB, 1 DISK_GB on hv1"
    assert allocation.params == {"project_id": "p-demo", "user_id": "u-demo"}


def test_flavor_is_created_with_the_root_size_floored():
    plan = plan_of(full_vm())  # root file of 1.5 GiB
    [flavor_step] = shared(plan, SharedKind.FLAVOR)
    assert (flavor_step.key, flavor_step.op) == ("flavor:adopted-1c-96m-1g", Op.CREATE)
    assert flavor_step.params == {"name": "adopted-1c-96m-1g", "vcpus": 1, "ram": 96,
                                  "disk": 1, "projects": ["p-demo"]}
    [image] = shared(plan, SharedKind.IMAGE)
    assert (image.key, image.op) == ("image:os-onboard-placeholder", Op.CREATE)


def test_vms_of_one_shape_share_one_flavor():
    plan = plan_of(vm(), vm("lab-vm2", UUID2, nics=[nic(MAC2, IP2)]))
    assert [v.op for v in plan.vms] == [Op.CREATE, Op.CREATE]
    assert [s.key for s in plan.shared] == ["flavor:adopted-1c-96m-1g",
                                             "image:os-onboard-placeholder"]
    assert shared(plan, SharedKind.FLAVOR)[0].params["projects"] == ["p-demo"]


def test_exact_existing_flavor_is_reused():
    view = cloud(flavors=[flavor("m1.tiny", disk=2), flavor("m1.lab", disk=1)])
    plan = plan_of(full_vm(), view=view)
    [flavor_step] = shared(plan, SharedKind.FLAVOR)
    assert (flavor_step.key, flavor_step.op) == ("flavor:m1.lab", Op.EXISTS)
    assert flavor_step.params == {"name": "m1.lab", "id": "f-m1.lab"}
    assert step(plan.vms[0], "server").params["flavor"] == "flavor:m1.lab"


@pytest.mark.parametrize("near_miss", [
    flavor("ceil", disk=2),
    flavor("swap", swap=512),
    flavor("ephemeral", ephemeral=1),
    flavor("pinned", extra_specs={"hw:cpu_policy": "dedicated"}),
    flavor("bigger", ram=128),
], ids=lambda f: f["name"])
def test_inexact_flavor_is_not_reused(near_miss):
    plan = plan_of(full_vm(), view=cloud(flavors=[near_miss]))
    assert [(s.key, s.op) for s in shared(plan, SharedKind.FLAVOR)] == [
        ("flavor:adopted-1c-96m-1g", Op.CREATE)]


def test_reuse_only_policy_without_a_match_blocks():
    vm_plan = one(vm(), rules=mapping(flavors={"policy": "reuse-only"}))
    assert_blocked(vm_plan, "no flavor with 1 vCPU, 96 MiB, 1 GB and the policy is reuse-only")


def test_rbd_root_boots_from_volume_without_disk_gb_or_image():
    plan = plan_of(vm(disks=[rbd_disk("vda", "lab-vm1-root", boot_order=1)]))
    vm_plan = plan.vms[0]
    assert [s.key for s in vm_plan.steps] == [f"port:{MAC1}", "volume:vda", "domain-definition",
                                              "server", "allocation", "network-cache"]
    assert step(vm_plan, "volume:vda").params["boot"] is True
    params = step(vm_plan, "server").params
    assert (params["root_kind"], params["flavor"]) == ("volume", "flavor:adopted-1c-96m-0g")
    assert params["images"] == {"image": None, "kernel": None, "ramdisk": None}
    assert step(vm_plan, "allocation").summary == "Placement: 1 VCPU, 96 MEMORY_MB on hv1"
    assert shared(plan, SharedKind.IMAGE) == []


@pytest.mark.parametrize(("power", "vm_state", "nova_power"), [
    (PowerState.SHUTOFF, "stopped", 4),
    (PowerState.PAUSED, "paused", 3),
])
def test_stopped_and_paused_vms_keep_their_state(power, vm_state, nova_power):
    vm_plan = one(vm(power=power))
    assert vm_plan.op is Op.CREATE
    assert vm_plan.power_state == power
    params = step(vm_plan, "server").params
    assert (params["vm_state"], params["power_state"]) == (vm_state, nova_power)
    assert f", {vm_state}, flavor adopted-1c-96m-1g" in step(vm_plan, "server").summary


def test_nic_without_ip_gets_a_port_without_fixed_ips():
    vm_plan = one(vm(nics=[nic(MAC1)]))
    port_step = step(vm_plan, f"port:{MAC1}")
    assert port_step.params["fixed_ips"] == []
    assert "(no IP)" in port_step.summary
    assert f"NIC {MAC1} shows no IP (no lease): its port gets none either" in vm_plan.notes


def test_link_local_addresses_are_not_fixed_ips():
    vm_plan = one(vm(nics=[nic(MAC1, IP1, "fe80::5054:ff:fe0b:101", "169.254.7.7")]))
    assert vm_plan.op is Op.CREATE
    assert step(vm_plan, f"port:{MAC1}").params["fixed_ips"] == [
        {"subnet": "sub-lab", "ip_address": IP1}]


def test_dhcp_on_the_subnet_is_noted():
    view = cloud(subnets=[{**SUBNET, "enable_dhcp": True}])
    vm_plan = one(vm(), view=view)
    assert vm_plan.op is Op.CREATE
    assert any(n.startswith("subnet onboard-lab-v4 has DHCP on") for n in vm_plan.notes)


def test_missing_network_with_create_rule_becomes_a_shared_step():
    rule = {"match": {"network": "onboard-lab"}, "neutron_network": "prod-105",
            "subnet": "prod-105-v4",
            "create": {"physical_network": "physnet1", "network_type": "vlan", "segment": 105,
                       "cidr": "192.168.150.0/24"}}
    plan = plan_of(vm(), rules=mapping(networks=[rule]))
    [network] = shared(plan, SharedKind.NETWORK)
    assert (network.key, network.op) == ("network:prod-105", Op.CREATE)
    assert network.params["subnet"] == "prod-105-v4"
    assert step(plan.vms[0], f"port:{MAC1}").params["fixed_ips"] == [
        {"subnet": "prod-105-v4", "ip_address": IP1}]


# -- blocked VMs: nothing written -------------------------------------------------------------

def test_mac_of_another_devices_port_blocks():
    view = cloud(ports=[port("port-x", MAC1, device_id=UUID3)])
    assert_blocked(one(vm(), view=view),
                   f"MAC {MAC1} is already used by Neutron port port-x of {UUID3}")


def test_mac_of_an_unbound_port_blocks():
    view = cloud(ports=[port("port-free", MAC1)])
    vm_plan = one(vm(), view=view)
    assert_blocked(vm_plan, f"MAC {MAC1} is already used by Neutron port port-free")
    assert not any(" of " in reason for reason in vm_plan.blocked)


def test_ip_of_another_port_blocks():
    view = cloud(ports=[port("port-y", "fa:16:3e:00:00:01", IP1, device_id=UUID3)])
    assert_blocked(one(vm(), view=view),
                   f"IP {IP1} of NIC {MAC1} is already used by Neutron port port-y")


def test_same_ip_on_another_network_does_not_block():
    view = cloud(ports=[port("port-z", "fa:16:3e:00:00:01", IP1, device_id=UUID3,
                             network_id="net-other")])
    assert one(vm(), view=view).op is Op.CREATE


def test_ip_outside_every_mapped_subnet_blocks():
    assert_blocked(one(vm(nics=[nic(MAC1, "10.9.9.9")])),
                   f"IP 10.9.9.9 of NIC {MAC1} is outside every mapped subnet "
                   "(192.168.150.0/24)")


def test_missing_neutron_network_without_create_blocks():
    assert_blocked(one(vm(), view=cloud(networks=[], subnets=[])),
                   "Neutron network 'onboard-lab' does not exist (add 'create:'")


def test_uuid_of_a_foreign_nova_server_blocks():
    view = cloud(servers={UUID1: server("legacy-web")})
    assert_blocked(one(vm(), view=view),
                   f"UUID {UUID1} already belongs to Nova server 'legacy-web' not adopted "
                   "by os-onboard")


def test_uuid_of_an_adopted_server_is_already_there():
    view = cloud(servers={UUID1: server("lab-vm1", {MARKER_KEY: "hv1 2024-05-01"})})
    vm_plan = one(vm(), view=view)
    assert (vm_plan.op, vm_plan.blocked, vm_plan.steps) == (Op.EXISTS, [], [])
    assert vm_plan.notes == ["already adopted (hv1 2024-05-01); server lab-vm1 is ACTIVE on "
                             "compute-hv1"]


def test_local_data_disk_blocks_by_default():
    vm_plan = one(vm(disks=[root_file(), local_data_disk()]))
    assert_blocked(vm_plan, "disk sdb (file /var/lib/libvirt/images/lab-vm1-data.raw) has no "
                            "Cinder backend in the mapping (or set local_disks: keep)")


def test_local_data_disk_is_kept_outside_nova_with_local_disks_keep():
    vm_plan = one(vm(disks=[root_file(), local_data_disk()]),
                  rules=mapping(local_disks="keep"))
    assert (vm_plan.op, vm_plan.blocked) == (Op.CREATE, [])
    assert not any("sdb" in s.key for s in vm_plan.steps)
    assert any(c.startswith("disk sdb (/var/lib/libvirt/images/lab-vm1-data.raw) stays a "
                            "local file Nova does not know") for c in vm_plan.rebuild_changes)


def test_unresolvable_block_disk_blocks_without_keep_hint():
    disk = Disk(device="disk", bus="virtio", target="vdc", source_kind="block",
                source="/dev/sdz")
    vm_plan = one(vm(disks=[root_file(), disk]), rules=mapping(local_disks="keep"))
    assert_blocked(vm_plan, "disk vdc (block /dev/sdz) has no Cinder backend in the mapping")
    assert not any("local_disks" in reason for reason in vm_plan.blocked)


def test_vm_without_disks_blocks():
    assert_blocked(one(vm(disks=[])), "no disk to boot from")


def test_caveats_block():
    caveat = Caveat(kind="hostdev-pci", detail="0000:3b:00.0", reason="PCI passthrough")
    assert_blocked(one(vm(caveats=[caveat])),
                   "devices Nova cannot represent: hostdev-pci (0000:3b:00.0)")


def test_transient_domain_blocks():
    assert_blocked(one(vm(persistent=False)), "transient domain")


def test_host_without_nova_compute_blocks():
    vm_plan = one(vm(), view=cloud(hypervisors=[hypervisor("hv2")]))
    assert_blocked(vm_plan, "host hv1 has no nova-compute service: run 'os-onboard "
                            "prepare-host'")
    assert vm_plan.host == "hv1"


def test_hypervisor_down_blocks():
    assert_blocked(one(vm(), view=cloud(hypervisors=[hypervisor(state="down")])),
                   "nova-compute on compute-hv1 is down")


def test_no_owner_rule_blocks():
    assert_blocked(one(vm("web-1")), "no owner rule of the mapping matches this VM")


@pytest.mark.parametrize(("projects", "users", "reason"), [
    ({"demo": None}, {"demo": "u-demo"}, "project 'demo' does not exist in Keystone"),
    ({"demo": "p-demo"}, {"demo": None}, "user 'demo' does not exist in Keystone"),
])
def test_unknown_owner_in_keystone_blocks(projects, users, reason):
    assert_blocked(one(vm(), view=cloud(projects=projects, users=users)), reason)


def test_direct_nic_blocks():
    assert_blocked(one(vm(nics=[nic(MAC1, IP1, source_kind="direct")])),
                   f"NIC {MAC1} is direct: only NICs on a bridge or libvirt network")


def test_nic_on_an_unmapped_network_blocks():
    assert_blocked(one(vm(nics=[nic(MAC1, IP1, network="other-net")])),
                   f"NIC {MAC1} (network other-net, bridge virbr-onb) matches no network rule")


@pytest.mark.parametrize("power", [PowerState.CRASHED, PowerState.SUSPENDED,
                                   PowerState.SHUTDOWN, PowerState.BLOCKED, PowerState.UNKNOWN])
def test_unrecordable_power_state_blocks(power):
    assert_blocked(one(vm(power=power)),
                   f"power state {power.value} cannot be recorded safely")


def test_every_reason_is_listed():
    vm_plan = one(vm("web-1", power=PowerState.CRASHED, nics=[nic(MAC1, "10.9.9.9")]),
                  view=cloud(hypervisors=[]))
    assert_blocked(vm_plan, "no nova-compute service", "power state crashed",
                   "no owner rule", "outside every mapped subnet")
    assert len(vm_plan.blocked) == 4


def test_two_vms_with_one_mac_are_both_blocked():
    plan = plan_of(vm(), vm("lab-vm2", UUID2, nics=[nic(MAC1, IP2)]),
                   vm("lab-vm3", UUID3, nics=[nic("52:54:00:0b:01:03", "192.168.150.13")]))
    for vm_plan in plan.vms[:2]:
        assert_blocked(vm_plan, f"MAC {MAC1} is used by several VMs (lab-vm1, lab-vm2)")
    assert plan.vms[2].op is Op.CREATE


def test_two_vms_with_one_ip_are_both_blocked():
    plan = plan_of(vm(), vm("lab-vm2", UUID2, nics=[nic(MAC2, IP1)]))
    for vm_plan in plan.vms:
        assert_blocked(vm_plan,
                       f"IP {IP1} on onboard-lab is used by several VMs (lab-vm1, lab-vm2)")


# -- the plan as a whole ----------------------------------------------------------------------

def test_only_restricts_to_named_vms():
    vms = (vm(), vm("lab-vm2", UUID2, nics=[nic(MAC2, IP2)]),
           vm("lab-vm3", UUID3, nics=[nic("52:54:00:0b:01:03")]))
    assert [v.name for v in plan_of(*vms, only={"lab-vm2"}).vms] == ["lab-vm2"]
    assert [v.name for v in plan_of(*vms, only={UUID3, "lab-vm1"}).vms] == ["lab-vm1",
                                                                             "lab-vm3"]
    assert len(plan_of(*vms, only=None).vms) == 3


def test_plan_records_its_basis():
    view = cloud()
    plan = build_plan(inventory(vm()), 42, view, mapping(), mapping_file="lab/mapping.yaml")
    assert (plan.snapshot_id, plan.mapping_file) == (42, "lab/mapping.yaml")
    assert plan.cloud_fingerprint == view.fingerprint()
    assert plan.counts() == {"create": 1, "update": 0, "exists": 0, "blocked": 0}


# -- render_plan ------------------------------------------------------------------------------

def mixed_plan() -> Plan:
    view = cloud(servers={UUID3: server("lab-vm3", {MARKER_KEY: "hv1 2024-05-01"})})
    return plan_of(full_vm(), vm("lab-vm2", UUID2, PowerState.CRASHED, nics=[nic(MAC2, IP2)]),
                   vm("lab-vm3", UUID3, nics=[nic("52:54:00:0b:01:03")]), view=view)


def test_render_plan_lines():
    text = render_plan(mixed_plan(), 12)
    lines = text.splitlines()
    assert lines[0].startswith("Plan 12 from inventory snapshot 7, OpenStack state ")
    assert lines[1] == "+ create   ~ update   = already there   ! blocked (nothing written)"
    assert "Shared records:" in lines
    assert "  + private flavor adopted-1c-96m-1g (1 vCPU, 96 MiB, 1 GB) for 1 project(s)" in lines
    assert f"+ lab-vm1 ({UUID1}) running on hv1 -> nova-compute compute-hv1" in lines
    assert f"    + port: port {MAC1} on onboard-lab ({IP1}), bound to compute-hv1" in lines
    assert f"! lab-vm2 ({UUID2}) crashed on hv1 -> nova-compute compute-hv1" in lines
    assert any(line.startswith("    ! power state crashed cannot be recorded safely")
               for line in lines)
    assert f"= lab-vm3 ({UUID3}) running on hv1 -> nova-compute compute-hv1" in lines
    assert lines[-1] == "Plan: 1 to adopt, 1 already adopted, 1 blocked."


def test_render_plan_shows_rebuild_changes_of_blocked_vms_only_when_verbose():
    plan = plan_of(vm(power=PowerState.CRASHED))
    header = "    a Nova rebuild (stop/start, hard reboot, migration) would change:"
    assert header not in render_plan(plan).splitlines()
    verbose = render_plan(plan, verbose=True).splitlines()
    assert header in verbose
    assert "      - domain name becomes instance-<id> (UUID " + UUID1 + " is kept)" in verbose
    assert render_plan(plan).splitlines()[0].startswith("Plan from inventory snapshot 7")


# -- CloudView.fingerprint --------------------------------------------------------------------

def busy_cloud() -> CloudView:
    return cloud(hypervisors=[hypervisor("hv1"), hypervisor("hv2")],
                 ports=[port("p1", MAC1, IP1, IP2, device_id=UUID1), port("p2", MAC2)],
                 networks=[NETWORK, {**NETWORK, "id": "net-2", "name": "other"}],
                 subnets=[SUBNET, {**SUBNET, "id": "sub-2", "cidr": "10.0.0.0/24"}],
                 flavors=[flavor("a"), flavor("b", disk=2)],
                 servers={UUID1: server("x"), UUID2: server("y")})


def test_fingerprint_changes_when_a_port_is_added():
    before = busy_cloud()
    after = busy_cloud()
    after.ports.append(port("p3", "fa:16:3e:00:00:03"))
    assert before.fingerprint() != after.fingerprint()


def test_fingerprint_ignores_list_order():
    view = busy_cloud()
    shuffled = busy_cloud()
    for name in ("hypervisors", "ports", "networks", "subnets", "flavors"):
        getattr(shuffled, name).reverse()
    shuffled.ports[-1]["fixed_ips"].reverse()
    shuffled.servers = dict(reversed(list(shuffled.servers.items())))
    assert view.fingerprint() == shuffled.fingerprint()


# -- Nova live migration before the first rebuild (libvirt's ABI check) ----------

def _nic_with_driver(driver: dict[str, str] | None) -> Nic:
    return nic(MAC1, IP1).model_copy(update={"driver": driver})


@pytest.mark.parametrize(("virt_type", "driver", "refused"), [
    ("qemu", None, True),                  # Nova adds <driver name='qemu'/>
    ("qemu", {"name": "qemu"}, False),
    ("qemu", {"name": "vhost"}, False),    # backend name is not compared
    ("kvm", None, False),                  # neither side has <driver>
    ("kvm", {"name": "vhost", "queues": "4"}, True),
    ("qemu", {"name": "qemu", "iommu": "on"}, True),
])
def test_nova_live_migration_limit_follows_libvirts_virtio_abi_rule(virt_type, driver, refused):
    vm_plan = one(vm(nics=[_nic_with_driver(driver)], virt_type=virt_type))
    limits = [n for n in vm_plan.notes if "refuses a Nova live migration" in n]
    assert bool(limits) is refused, vm_plan.notes
    if refused:
        assert MAC1 in limits[0] and f"virt_type {virt_type}" in limits[0]


def test_non_virtio_nic_has_no_live_migration_limit():
    e1000 = nic(MAC1, IP1, model="e1000")
    assert not [n for n in one(vm(nics=[e1000], virt_type="qemu")).notes
                if "live migration" in n]
