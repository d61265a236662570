"""apply (Applier, apply_lock) and unmanage against an in-memory cloud.

The plan is a real one (build_plan from a hand-made Inventory and the fake
cloud's CloudView); the journal is a temp SQLite store. The hypervisor
re-read (discover_hosts) and the Nova/Cinder-side helpers are monkeypatched.
"""

import os

import pytest

from os_onboard.apply import bulk, release, runner, steps
from os_onboard.apply.runner import Applier, ApplyOptions, StalePlanError, apply_lock
from os_onboard.apply.steps import DISK_KEY, ApplyEnv
from os_onboard.cloud.fake import FakeCloud
from os_onboard.drivers.libvirt.hostwrite import persistent
from os_onboard.exceptions import NovaHelperError, StateStoreError
from os_onboard.inventory.models import (
    AddressSource,
    Disk,
    Host,
    HostInventory,
    Inventory,
    IpAddress,
    Nic,
    PowerState,
    Vm,
)
from os_onboard.mapping.model import Mapping
from os_onboard.plan.builder import build_plan
from os_onboard.plan.cloudview import CloudView
from os_onboard.plan.model import MARKER_KEY
from os_onboard.state.journal import Journal
from os_onboard.state.store import StateStore

GIB = 1024**3
HV_URI, HV2_URI = "qemu+ssh://root@hv1/system", "qemu+ssh://root@hv2/system"
UUID1 = "11111111-1111-4111-8111-111111111111"
UUID2 = "22222222-2222-4222-8222-222222222222"
UUID3 = "33333333-3333-4333-8333-333333333333"
MAC1, MAC2, MAC3, MAC4 = (f"52:54:00:0b:01:0{i}" for i in range(1, 5))
IP1, IP2, IP3, IP4 = (f"192.168.150.1{i}" for i in range(1, 5))
CINDER_HOST = "lab@ceph-legacy#ceph-legacy"
HYPERVISOR = {"node": "hv1", "uuid": "rp-hv1", "state": "up", "status": "enabled",
              "host_ip": "10.0.0.1", "service_host": "compute-hv1"}
NETWORK = {"id": "net-lab", "name": "onboard-lab", "physical_network": "physnet1",
           "network_type": "flat", "segment": None, "subnet_ids": ["sub-lab"]}
SUBNET = {"id": "sub-lab", "name": "onboard-lab-v4", "network_id": "net-lab",
          "cidr": "192.168.150.0/24", "enable_dhcp": False, "ip_version": 4}


# -- the fake cloud -----------------------------------------------------------------

def lab_cloud():
    """The shipped fake with this lab's world: one compute node, network, project."""
    return FakeCloud(projects={"demo": "p-demo"}, users={"demo": "u-demo"},
                     hypervisors=[HYPERVISOR], networks=[NETWORK], subnets=[SUBNET],
                     rbd_pool="legacy")


# -- the inventory and the world --------------------------------------------------------

def port(port_id, mac, *ips, device_id, description=""):
    """A port placed by hand (unbound), shaped like OpenStackCloud.ports()."""
    return {"id": port_id, "name": "", "network_id": "net-lab", "mac": mac,
            "fixed_ips": [{"subnet_id": "sub-lab", "ip_address": ip} for ip in ips],
            "device_id": device_id, "device_owner": "compute:nova", "host": "",
            "vif_type": "unbound", "status": "DOWN", "description": description}


def nic(mac, ip):
    return Nic(mac=mac, model="virtio", source_kind="network", network="onboard-lab",
               bridge="virbr-onb", addresses=[IpAddress(family="ipv4", address=ip, prefix=24,
                                                        source=AddressSource.DHCP_LEASE)])


def guest(name, uuid, *nics, power=PowerState.RUNNING, rbd=False):
    """A root qcow2 file (1.5 GiB: flavor disk 1), optionally an RBD data disk."""
    disks = [Disk(device="disk", bus="virtio", target="vda", format="qcow2", source_kind="file",
                  source=f"/var/lib/libvirt/images/{name}.qcow2", capacity_bytes=3 * GIB // 2,
                  boot_order=1)]
    if rbd:
        disks.append(Disk(device="disk", bus="virtio", target="vdb", format="raw",
                          source_kind="network-rbd", source=f"legacy/{name}-data",
                          source_hosts=["127.0.0.1:6789"], capacity_bytes=3 * GIB // 2))
    return Vm(uuid=uuid, name=name, power_state=power, vcpus=1, memory_mib=96,
              machine_type="pc-q35-8.2", disks=disks, nics=list(nics))


def vm1(**kw):
    return guest("lab-vm1", UUID1, nic(MAC1, IP1), nic(MAC2, IP2), rbd=True, **kw)


def inventory(*vms, uri=HV_URI, hostname="hv1"):
    return Inventory(hosts=[HostInventory(host=Host(uri=uri, kind="libvirt", hostname=hostname),
                                          vms=list(vms))])


MAPPING = Mapping.model_validate({
    "owners": [{"match": {"name": "lab-*"}, "project": "demo", "user": "demo"}],
    "networks": [{"match": {"network": "onboard-lab"}, "neutron_network": "onboard-lab",
                  "subnet": "onboard-lab-v4"}],
    "backends": [{"name": "ceph-legacy", "cinder_host": CINDER_HOST, "driver": "rbd",
                  "options": {"rbd_pool": "legacy", "monitors": ["127.0.0.1:6789"]}}],
    "flavors": {"policy": "reuse-or-create", "prefix": "adopted"}})


class World:
    def __init__(self, tmp_path, monkeypatch):
        self.tmp, self.cloud = tmp_path, lab_cloud()
        self.journal = Journal(StateStore(f"sqlite:///{tmp_path}/s.db"))
        self.live: Inventory | None = None  # what discover_hosts sees (None: as planned)
        self.renames: list[tuple[str, dict]] = []
        monkeypatch.setattr(bulk, "run_helper", self.nova_helper)
        monkeypatch.setattr(bulk, "HelperStream", self.stream)
        self.streams: list[str] = []  # commands of the long-lived helpers started
        self.stream_dies_after = None  # batches a stream answers before it dies
        monkeypatch.setattr(release, "run_helper", self.nova_helper)
        monkeypatch.setattr(steps, "run_cinder_helper", self.cloud.cinder_helper)
        monkeypatch.setattr(runner, "discover_hosts", lambda uris: self.live or self.planned)
        monkeypatch.setattr(persistent, "apply_renames", lambda uri, uuid, renames, dirs:
                            self.renames.append((uuid, dict(renames))) or True)

    def nova_helper(self, command, args, python=None, config_files=(), timeout=0, stdin=None):
        """The fake's helper, run with apply's --nova-python/--nova-config."""
        assert (python, list(config_files)) == ("nova-python", ["nova.conf"])
        return self.cloud.nova_helper(command, args, python, config_files, timeout, stdin)

    def stream(self, command, python, config_files):
        """bulk.HelperStream: one helper fed batch after batch."""
        world = self
        world.streams.append(command)

        class Stream:
            answered = 0

            def run(self, items, timeout):
                if world.stream_dies_after is not None and \
                        self.answered >= world.stream_dies_after:
                    # killed half-way through the batch: the first half is written
                    world.nova_helper(command, [], python, config_files,
                                      stdin=items[:len(items) // 2])
                    raise NovaHelperError(f"os_onboard_nova.{command} failed: killed")
                self.answered += 1
                return world.nova_helper(command, [], python, config_files, stdin=items)

            def close(self):
                pass

        return Stream()

    def plan(self, *vms):
        self.planned = inventory(*vms)
        view = CloudView.read(self.cloud, {"demo"}, {"demo"})
        return self.journal.load_plan(self.journal.save_plan(
            build_plan(self.planned, 1, view, MAPPING)))

    def apply(self, plan_id, plan, check_fingerprint=True):
        env = ApplyEnv(cloud=self.cloud, host_options={
            "instances_path": str(self.tmp / "instances"),
            "libvirt_config_dirs": [str(self.tmp / "libvirt")]})
        options = ApplyOptions(parallel=2, nova_python="nova-python", nova_config=["nova.conf"],
                               check_fingerprint=check_fingerprint)
        return {o.name: o for o in Applier(plan_id, plan, self.journal, env, options).run()}

    def ports_of(self, mac):
        return [p for p in self.cloud.ports_ if p["mac"] == mac]


@pytest.fixture
def world(tmp_path, monkeypatch):
    return World(tmp_path, monkeypatch)


# -- apply ------------------------------------------------------------------------------

def test_first_apply_adopts_the_vm(world):
    plan_id, plan = world.plan(vm1())
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert (outcome.status, outcome.steps_done) == ("adopted", len(plan.vms[0].steps))

    journal = world.journal.steps(plan_id)
    expected = {("", s.key) for s in plan.shared} | {(UUID1, s.key) for s in plan.vms[0].steps}
    assert set(journal) == expected
    assert {s.status for s in journal.values()} == {"done"}

    port_ids = []
    for mac, ip in ((MAC1, IP1), (MAC2, IP2)):
        [port] = world.ports_of(mac)
        assert (port["device_id"], port["host"], port["project_id"], port["device_owner"]) == (
            UUID1, "compute-hv1", "p-demo", "compute:nova")
        assert port["fixed_ips"] == [{"subnet_id": "sub-lab", "ip_address": ip}]
        port_ids.append(port["id"])

    [volume] = world.cloud.volumes_.values()
    assert volume["metadata"][DISK_KEY] == f"{UUID1}/vdb" and MARKER_KEY in volume["metadata"]
    assert (volume["status"], volume["ref"]) == ("in-use", {"source-name": "lab-vm1-data"})
    assert volume["os-vol-tenant-attr:tenant_id"] == "p-demo" and volume["service_uuid"]
    [attachment] = world.cloud.attachments_.values()
    assert (attachment["status"], attachment["connector"]["host"]) == ("attached", "compute-hv1")
    assert world.renames == [(UUID1, {"legacy/lab-vm1-data": f"legacy/volume-{volume['id']}"})]
    link = world.tmp / "instances" / UUID1 / "disk"
    assert os.readlink(link) == "/var/lib/libvirt/images/lab-vm1.qcow2"

    [item] = world.cloud.helper_items["adopt"]
    [flavor] = world.cloud.flavors_
    assert flavor["name"] == "adopted-1c-96m-1g" and item["flavor_id"] == flavor["id"]
    image_id = world.cloud.images["os-onboard-placeholder"]["id"]
    assert (item["image_ref"], item["kernel_id"], item["ramdisk_id"]) == (image_id, None, None)
    assert (item["host"], item["node"], item["project_id"], item["user_id"]) == (
        "compute-hv1", "hv1", "p-demo", "u-demo")
    assert (item["vm_state"], item["power_state"]) == ("active", 1)
    assert item["ports"] == [{"id": port_ids[0], "mac": MAC1}, {"id": port_ids[1], "mac": MAC2}]
    root, data = item["bdms"]
    assert (root["source_type"], root["boot_index"], root["image_id"]) == ("image", 0, image_id)
    assert (data["volume_id"], data["attachment_id"], data["boot_index"]) == (
        volume["id"], attachment["id"], None)
    assert data["connection_info"]["serial"] == volume["id"]
    assert MARKER_KEY in item["metadata"]
    # The adopt run rebuilt the network cache too: no second helper run.
    assert item["network_cache"] is True and "network_cache" not in world.cloud.helper_items
    assert journal[(UUID1, "network-cache")].result == {
        "vifs": [{"id": port_ids[0], "mac": MAC1}, {"id": port_ids[1], "mac": MAC2}]}
    assert [c for c in world.cloud.calls if c.startswith("helper:")] == ["helper:adopt"]
    allocation = world.cloud.allocs[UUID1]
    assert allocation["allocations"]["rp-hv1"]["resources"] == {
        "VCPU": 1, "MEMORY_MB": 96, "DISK_GB": 1}
    assert {k: allocation[k] for k in ("consumer_generation", "project_id", "user_id")} == {
        "consumer_generation": 1, "project_id": "p-demo", "user_id": "u-demo"}


def test_rerun_is_a_no_op(world):
    plan_id, plan = world.plan(vm1())
    world.apply(plan_id, plan)
    before = len(world.cloud.writes())
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert (outcome.status, outcome.detail) == ("adopted", "done in an earlier run")
    assert world.cloud.writes()[before:] == []
    assert len(world.ports_of(MAC1)) == len(world.ports_of(MAC2)) == 1


def test_failed_step_resumes_on_rerun(world):
    plan_id, plan = world.plan(vm1())
    # The bulk write fails, and so does the one-by-one retry of its VM.
    world.cloud.fail("post_allocations")
    world.cloud.fail("put_allocations")
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "failed"
    assert "allocation: put_allocations: injected failure" in outcome.detail
    assert "rerun 'os-onboard apply'" in outcome.detail
    journal = world.journal.steps(plan_id)
    assert journal[(UUID1, "allocation")].status == "failed"
    assert journal[(UUID1, "network-cache")].status == "done"  # built with the server

    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "adopted"
    assert {s.status for s in world.journal.steps(plan_id).values()} == {"done"}
    assert len(world.ports_of(MAC1)) == len(world.ports_of(MAC2)) == 1
    assert len(world.cloud.volumes_) == len(world.cloud.attachments_) == 1
    counts = {c: world.cloud.calls.count(c) for c in (
        "create_ports", "create_port", "manage_volume", "helper:adopt", "post_allocations",
        "allocations", "put_allocations", "helper:network_cache")}
    assert counts == {"create_ports": 1, "create_port": 0, "manage_volume": 1,
                      "helper:adopt": 1, "post_allocations": 1, "allocations": 2,
                      "put_allocations": 2, "helper:network_cache": 0}
    assert world.cloud.allocs[UUID1]["allocations"]["rp-hv1"]["resources"]["VCPU"] == 1


def test_a_failed_manage_is_released_and_tried_again_by_the_rerun(world):
    plan_id, plan = world.plan(vm1())
    world.cloud.manage_fails.add("lab-vm1-vdb")  # e.g. the image renamed since discovery
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "failed"
    assert "Cinder could not manage {'source-name': 'lab-vm1-data'}" in outcome.detail
    assert "went to error" in outcome.detail
    [failed] = world.cloud.volumes_.values()
    assert failed["status"] == "error"

    outcome = world.apply(plan_id, plan)["lab-vm1"]  # the cause not yet fixed
    assert outcome.status == "failed"
    assert [v["id"] for v in world.cloud.volumes_.values()] != [failed["id"]]
    assert len(world.cloud.volumes_) == 1  # the first record released, not piled up

    world.cloud.manage_fails.clear()  # the operator put the image back
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "adopted"
    [volume] = world.cloud.volumes_.values()
    assert volume["status"] == "in-use"
    assert world.cloud.calls.count("unmanage_volume") == 2
    assert "delete_attachment" not in world.cloud.calls


def test_volumes_renamed_before_one_fails_are_recorded_for_the_host_at_once(world):
    vm = vm1()
    vm.disks.append(vm.disks[1].model_copy(update={"target": "vdc",
                                                   "source": "legacy/lab-vm1-logs"}))
    plan_id, plan = world.plan(vm)
    world.cloud.manage_fails.add("lab-vm1-vdc")
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "failed" and "volume:vdc" in outcome.detail
    assert "renamed so far are in the rename map" in outcome.detail
    [managed] = [v for v in world.cloud.volumes_.values() if v["name"] == "lab-vm1-vdb"]
    # restartable now, whether the operator resumes or runs unmanage
    assert world.renames == [(UUID1, {"legacy/lab-vm1-data": f"legacy/volume-{managed['id']}"})]
    assert (UUID1, "domain-definition") not in world.journal.steps(plan_id)  # not a step run

    world.cloud.manage_fails.clear()
    assert world.apply(plan_id, plan)["lab-vm1"].status == "adopted"
    assert set(world.renames[-1][1]) == {"legacy/lab-vm1-data", "legacy/lab-vm1-logs"}


def test_kill_between_write_and_journal_reuses_the_records(world):
    plan_id, plan = world.plan(vm1())
    # what a first run killed right after the port and the volume writes left behind
    world.cloud.ports_.append(port("port-early", MAC1, IP1, device_id=UUID1,
                                   description="os-onboard: adopted NIC of lab-vm1"))
    world.cloud.manage_volume(CINDER_HOST, {"source-name": "lab-vm1-data"}, "lab-vm1-vdb",
                              {DISK_KEY: f"{UUID1}/vdb"})
    [early] = world.cloud.ports_
    world.journal.record(plan_id, UUID1, f"port:{MAC1}", "started")
    world.journal.record(plan_id, UUID1, "volume:vdb", "started")
    world.cloud.calls.clear()

    assert world.apply(plan_id, plan)["lab-vm1"].status == "adopted"
    assert [p["id"] for p in world.ports_of(MAC1)] == [early["id"]]
    assert world.ports_of(MAC1)[0]["host"] == "compute-hv1"  # bound on resume
    assert len(world.ports_of(MAC2)) == 1
    # MAC1's step was started: looked up and bound; MAC2's had not: created (in bulk).
    assert (world.cloud.calls.count("create_port"), world.cloud.calls.count("create_ports")) \
        == (0, 1)
    assert "manage_volume" not in world.cloud.calls and len(world.cloud.volumes_) == 1
    assert world.journal.steps(plan_id)[(UUID1, f"port:{MAC1}")].result["port_id"] == early["id"]


@pytest.mark.parametrize("mac, ip", [(MAC2, "10.9.9.9"), ("52:54:00:99:99:98", IP2)],
                         ids=["same-mac", "same-ip"])
def test_stale_plan_is_refused_before_any_write(world, mac, ip):
    plan_id, plan = world.plan(vm1())
    world.cloud.ports_.append(port("port-x", mac, ip, device_id="someone-else"))
    with pytest.raises(StalePlanError, match=f"plan {plan_id} is stale"):
        world.apply(plan_id, plan)
    assert world.cloud.writes() == []
    assert not world.journal.started(plan_id)

    # another team's port (other MAC, other IP) does not concern this plan
    world.cloud.ports_ = [port("port-y", "52:54:00:99:99:99", "10.9.9.8", device_id="other")]
    assert world.apply(plan_id, plan)["lab-vm1"].status == "adopted"


def test_vm_that_changed_since_the_plan_is_skipped(world):
    vms = [vm1(), guest("lab-vm2", UUID2, nic(MAC3, IP3)), guest("lab-vm3", UUID3, nic(MAC4, IP4))]
    plan_id, plan = world.plan(*vms)
    world.live = inventory(vm1(power=PowerState.SHUTOFF), vms[2])
    world.live.hosts += inventory(vms[1], uri=HV2_URI, hostname="hv2").hosts
    outcomes = world.apply(plan_id, plan)

    assert outcomes["lab-vm1"].status == outcomes["lab-vm2"].status == "skipped"
    assert "power state is shutoff now, running in the plan" in outcomes["lab-vm1"].detail
    assert f"moved to {HV2_URI}" in outcomes["lab-vm2"].detail
    assert outcomes["lab-vm3"].status == "adopted"
    assert [p["device_id"] for p in world.cloud.ports_] == [UUID3]
    assert [i["uuid"] for i in world.cloud.helper_items["adopt"]] == [UUID3]
    assert set(world.cloud.allocs) == {UUID3} and not world.cloud.volumes_


def test_unbindable_port_fails_the_vm_before_nova(world):
    plan_id, plan = world.plan(vm1())
    world.cloud.bind_fail.add(MAC1)
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "failed"
    assert f"port:{MAC1}" in outcome.detail and "binding_failed" in outcome.detail
    assert [c for c in world.cloud.calls if ":" in c] == []  # no Nova (nor Cinder) helper
    assert "manage_volume" not in world.cloud.calls and UUID1 not in world.cloud.allocs
    assert world.journal.steps(plan_id)[(UUID1, f"port:{MAC1}")].status == "failed"


def three_vms():
    return [vm1(), guest("lab-vm2", UUID2, nic(MAC3, IP3)), guest("lab-vm3", UUID3, nic(MAC4, IP4))]


def test_new_records_are_written_in_bulk(world):
    plan_id, plan = world.plan(*three_vms())
    outcomes = world.apply(plan_id, plan)
    assert {o.status for o in outcomes.values()} == {"adopted"}
    assert {s.status for s in world.journal.steps(plan_id).values()} == {"done"}
    # one request for the four ports, one for the three allocations, one helper run
    writes = [c for c in world.cloud.writes() if c not in ("create_flavor",
                                                           "create_image_record")]
    assert sorted(set(writes)) == ["cinder:adopt_volume", "complete_attachment",
                                   "create_attachment", "create_ports", "helper:adopt",
                                   "manage_volume", "post_allocations"]
    assert (writes.count("create_ports"), writes.count("post_allocations"),
            writes.count("helper:adopt")) == (1, 1, 1)
    assert sorted(p["mac"] for p in world.cloud.ports_) == [MAC1, MAC2, MAC3, MAC4]
    assert {p["device_id"] for p in world.cloud.ports_ if p["mac"] == MAC3} == {UUID2}
    assert set(world.cloud.allocs) == {UUID1, UUID2, UUID3}
    assert world.cloud.allocs[UUID2]["allocations"]["rp-hv1"]["resources"]["VCPU"] == 1


def test_bulk_writes_whose_answer_was_lost_create_no_duplicates(world):
    plan_id, plan = world.plan(*three_vms())
    # Both bulk requests commit, then time out: each VM's step looks its record up.
    world.cloud.lose_answers.update({"create_ports", "post_allocations"})
    outcomes = world.apply(plan_id, plan)
    assert {o.status for o in outcomes.values()} == {"adopted"}
    assert sorted(p["mac"] for p in world.cloud.ports_) == [MAC1, MAC2, MAC3, MAC4]
    assert world.cloud.calls.count("create_port") == 0  # found, not created again
    assert world.cloud.calls.count("put_allocations") == 0  # found as wanted
    assert {a["consumer_generation"] for a in world.cloud.allocs.values()} == {1}
    journal = world.journal.steps(plan_id)
    assert journal[(UUID2, f"port:{MAC3}")].result["port_id"] == world.ports_of(MAC3)[0]["id"]


def test_a_port_clash_in_a_bulk_fails_only_its_vm(world):
    plan_id, plan = world.plan(*three_vms())
    # Someone takes MAC3 after the plan's check: Neutron refuses the whole bulk.
    world.cloud.ports_.append(port("port-x", MAC3, "10.9.9.9", device_id="someone-else"))
    outcomes = world.apply(plan_id, plan, check_fingerprint=False)
    assert outcomes["lab-vm2"].status == "failed"
    assert f"MAC {MAC3} is now used by port port-x" in outcomes["lab-vm2"].detail
    assert outcomes["lab-vm1"].status == outcomes["lab-vm3"].status == "adopted"
    assert [p["device_id"] for p in world.ports_of(MAC3)] == ["someone-else"]
    assert [i["uuid"] for i in world.cloud.helper_items["adopt"]] == [UUID1, UUID3]
    assert set(world.cloud.allocs) == {UUID1, UUID3}


def test_cache_the_adopt_run_could_not_build_is_rebuilt_after(world):
    plan_id, plan = world.plan(*three_vms())
    world.cloud.cache_fail.add(UUID2)
    outcomes = world.apply(plan_id, plan)
    assert {o.status for o in outcomes.values()} == {"adopted"}
    assert world.cloud.helper_items["network_cache"] == [{"uuid": UUID2, "host": "compute-hv1"}]
    assert world.journal.steps(plan_id)[(UUID2, "network-cache")].result["vifs"] == [
        {"id": world.ports_of(MAC3)[0]["id"], "mac": MAC3}]


def test_kill_after_the_adopt_run_rebuilds_only_the_cache(world):
    plan_id, plan = world.plan(vm1())
    world.apply(plan_id, plan)
    # as if killed after the helper's answer, before the cache's journal entry
    world.journal.record(plan_id, UUID1, "network-cache", "started")
    world.cloud.calls.clear()
    assert world.apply(plan_id, plan)["lab-vm1"].status == "adopted"
    assert [c for c in world.cloud.writes()] == ["helper:network_cache"]
    assert world.journal.steps(plan_id)[(UUID1, "network-cache")].status == "done"


def many_vms(count):
    return [guest(f"lab-m{i:02d}", f"{i:08x}-0000-4000-8000-000000000000",
                  nic(f"52:54:00:0c:00:{i:02x}", f"192.168.150.{100 + i}"))
            for i in range(count)]


def test_vms_go_through_the_pipeline_in_chunks(world):
    vms = many_vms(2 * bulk.PIPELINE_CHUNK + 3)
    plan_id, plan = world.plan(*vms)
    outcomes = world.apply(plan_id, plan)
    assert {o.status for o in outcomes.values()} == {"adopted"}
    assert {s.status for s in world.journal.steps(plan_id).values()} == {"done"}
    assert world.streams == ["adopt"]  # one helper process for every chunk
    calls = world.cloud.calls
    assert (calls.count("helper:adopt"), calls.count("create_ports"),
            calls.count("post_allocations")) == (3, 3, 3)
    assert sorted(i["uuid"] for i in world.cloud.helper_items["adopt"]) == sorted(
        v.uuid for v in vms)
    assert len(world.cloud.ports_) == len(world.cloud.allocs) == len(vms)


def test_a_helper_that_dies_mid_apply_is_replaced(world):
    vms = many_vms(2 * bulk.PIPELINE_CHUNK)
    plan_id, plan = world.plan(*vms)
    world.stream_dies_after = 1  # the second chunk's run dies half-way
    outcomes = world.apply(plan_id, plan)
    assert {o.status for o in outcomes.values()} == {"adopted"}
    # the stream's two runs (the second one died), then a one-shot run of the second
    # chunk, whose first half the helper sees for the second time (adopt is idempotent)
    assert world.cloud.calls.count("helper:adopt") == 3
    sent = [i["uuid"] for i in world.cloud.helper_items["adopt"]]
    chunk = bulk.PIPELINE_CHUNK
    assert sent == [v.uuid for v in vms[:chunk + chunk // 2]] + [v.uuid for v in vms[chunk:]]
    assert set(world.cloud.servers_) == {v.uuid for v in vms}
    assert {s.status for s in world.journal.steps(plan_id).values()} == {"done"}


def test_apply_lock_is_exclusive_and_released(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    held = pytest.raises(StateStoreError, match=f"another apply .*pid {os.getpid()}")
    with apply_lock(url), held, apply_lock(url):
        pass
    with apply_lock(url):  # released after the with-block
        pass


# -- unmanage ---------------------------------------------------------------------------

def test_unmanage_releases_in_order(world):
    plan_id, plan = world.plan(vm1())
    world.apply(plan_id, plan)
    foreign = port("port-foreign", "52:54:00:aa:aa:aa", device_id=UUID1,
                   description="someone's extra NIC")
    world.cloud.ports_.append(foreign)
    world.cloud.calls.clear()

    out = release.unmanage(world.cloud, UUID1, host=None, nova_python="nova-python",
                           nova_config=["nova.conf"],
                           host_options={"instances_path": str(world.tmp / "instances")})
    assert out.error == "" and out.name == "lab-vm1"
    assert world.cloud.writes() == ["delete_allocations", "helper:release", "delete_port",
                                    "delete_port", "reset_volume_detached", "unmanage_volume"]
    assert world.cloud.helper_items["release"] == [{"uuid": UUID1, "host": "compute-hv1"}]
    assert world.cloud.ports_ == [foreign] and any("port-foreign" in k for k in out.kept)
    assert not world.cloud.volumes_ and not world.cloud.allocs and not world.cloud.servers_
    assert not (world.tmp / "instances" / UUID1).exists()


def test_unmanage_of_many_vms_lists_the_volumes_once(world):
    plan_id, plan = world.plan(vm1(), guest("lab-vm2", UUID2, nic(MAC3, IP3), rbd=True))
    world.apply(plan_id, plan)
    assert len(world.cloud.volumes_) == 2
    world.cloud.calls.clear()
    volumes = world.cloud.volumes()
    for uuid in (UUID1, UUID2):
        out = release.unmanage(world.cloud, uuid, host=None, nova_python="nova-python",
                               nova_config=["nova.conf"], volumes=volumes)
        assert out.error == "" and any("unmanaged" in r for r in out.removed), out
    assert world.cloud.calls.count("volumes") == 1
    assert world.cloud.calls.count("unmanage_volume") == 2 and not world.cloud.volumes_


def test_unmanage_refuses_a_server_without_the_marker(world):
    world.cloud.servers_[UUID2] = {"name": "theirs", "status": "ACTIVE", "host": "compute-hv1",
                                   "metadata": {}}
    world.cloud.put_allocations(UUID2, "rp-hv1", {"VCPU": 1}, "p-demo", "u-demo", None)
    world.cloud.calls.clear()
    out = release.unmanage(world.cloud, UUID2, host="compute-hv1")
    assert "no marker" in out.error and out.removed == []
    assert world.cloud.calls == ["server"]
    assert UUID2 in world.cloud.allocs and UUID2 in world.cloud.servers_


def test_unwritable_instances_path_fails_the_vm_not_the_run(world):
    plan_id, plan = world.plan(vm1())
    (world.tmp / "instances").write_text("a file, not a directory")
    outcome = world.apply(plan_id, plan)["lab-vm1"]
    assert outcome.status == "failed" and outcome.detail.startswith("instance-dir: ")
    assert world.journal.steps(plan_id)[(UUID1, "instance-dir")].status == "failed"
    assert "helper:adopt" not in world.cloud.calls


# -- the adopt policy (reconcile: not-adopted=adopt) ------------------------------------

def adopt_by_policy(world, vm, first_seen=None):
    """One not-adopted drift of ``vm`` through the tolerator, as a pass would
    (``first_seen``: when an earlier pass saw it; None: this is the first)."""
    from os_onboard.reconcile.drift import Drift, DriftKind
    from os_onboard.reconcile.tolerate import Context, Tolerator

    world.planned = inventory(vm)
    ctx = Context(cloud=world.cloud, hypervisors=[dict(HYPERVISOR)], inventory=world.planned,
                  mapping=MAPPING, nova_python="nova-python", nova_config=["nova.conf"],
                  host_options={"libvirt_config_dirs": [str(world.tmp / "libvirt")],
                                "instances_path": str(world.tmp / "instances")},
                  journal=world.journal,
                  state_url=f"sqlite:///{world.tmp}/s.db",
                  seen_since=lambda uuid, kind, after: first_seen)
    drift = Drift(DriftKind.NOT_ADOPTED, vm.uuid, vm.name, "not in OpenStack",
                  "running on hv1")
    return Tolerator(ctx).apply(drift, "adopt")


def test_the_adopt_policy_adopts_a_vm_as_plan_and_apply_would(world):
    outcome = adopt_by_policy(world, vm1())
    assert outcome.action == "tolerated", outcome.detail
    server = world.cloud.servers_[UUID1]
    assert MARKER_KEY in server["metadata"]
    assert len(world.ports_of(MAC1)) == len(world.ports_of(MAC2)) == 1
    [volume] = world.cloud.volumes_.values()
    assert volume["status"] == "in-use"
    plan_id, plan = world.journal.load_plan()  # saved: 'apply PLAN' shows the same
    assert [v.uuid for v in plan.vms] == [UUID1] and f"plan {plan_id}" in outcome.detail


def test_the_adopt_policy_resumes_the_plan_that_stopped_halfway(world):
    world.cloud.fail("post_allocations")
    world.cloud.fail("put_allocations")
    failed = adopt_by_policy(world, vm1())
    assert failed.action == "failed" and "the next pass retries" in failed.detail
    plan_id, _ = world.journal.load_plan()

    outcome = adopt_by_policy(world, vm1())
    assert outcome.action == "tolerated" and "(resumed)" in outcome.detail
    assert world.journal.load_plan()[0] == plan_id  # no second plan
    assert {s.status for s in world.journal.steps(plan_id).values()} == {"done"}
    assert len(world.ports_of(MAC1)) == len(world.ports_of(MAC2)) == 1
    assert world.cloud.calls.count("manage_volume") == world.cloud.calls.count(
        "helper:adopt") == 1


def test_the_adopt_policy_leaves_a_released_vm_and_a_blocked_plan_alone(world):
    assert adopt_by_policy(world, vm1()).action == "tolerated"
    release.unmanage(world.cloud, UUID1, host="compute-hv1", nova_python="nova-python",
                     nova_config=["nova.conf"],
                     host_options={"instances_path": str(world.tmp / "instances")})
    world.journal.forget_vm(UUID1)  # what 'os-onboard unmanage' records
    writes = len(world.cloud.writes())
    outcome = adopt_by_policy(world, vm1())
    assert (outcome.action, outcome.detail.split(":")[0]) == (
        "reported", "released with 'os-onboard unmanage'")

    stranger = guest("db-7", UUID2, nic(MAC3, IP3))  # no owner rule matches its name
    outcome = adopt_by_policy(world, stranger)
    assert outcome.action == "reported" and "the plan blocks it" in outcome.detail
    assert len(world.cloud.writes()) == writes


def test_the_adopt_policy_waits_for_an_operator_s_apply(world):
    with apply_lock(f"sqlite:///{world.tmp}/s.db"):
        outcome = adopt_by_policy(world, vm1())
    assert outcome.action == "failed" and "another apply or unmanage" in outcome.detail
    assert world.cloud.writes() == []


def test_the_adopt_policy_waits_for_a_new_vm_s_ip_then_adopts_without(world):
    from datetime import UTC, datetime, timedelta

    no_lease = guest("lab-vm9", UUID3, nic(MAC4, IP4).model_copy(update={"addresses": []}))
    outcome = adopt_by_policy(world, no_lease)
    assert outcome.action == "deferred" and f"NIC {MAC4} shows no IP yet" in outcome.detail
    assert outcome.recheck_in == 60.0 and world.cloud.writes() == []
    # The wait is over (a static address never shows as a lease): adopted as it is.
    outcome = adopt_by_policy(world, no_lease, datetime.now(UTC) - timedelta(seconds=61))
    assert outcome.action == "tolerated", outcome.detail
    [port] = world.ports_of(MAC4)
    assert port["fixed_ips"] == [] and port["device_id"] == UUID3


def test_a_helper_failure_keeps_its_traceback_in_the_journal(world):
    plan_id, plan = world.plan(vm1())
    # Someone's server takes the UUID between plan and apply (fingerprint not checked).
    world.cloud.add_server(UUID1, "theirs", "compute-hv1", "hv1", metadata={})
    outcome = world.apply(plan_id, plan, check_fingerprint=False)["lab-vm1"]
    assert outcome.status == "failed" and "was not adopted by os-onboard" in outcome.detail
    assert "Traceback" not in outcome.detail  # one line for the operator
    state = world.journal.steps(plan_id)[(UUID1, "server")]
    assert state.status == "failed"
    assert state.result["traceback"].startswith("Traceback (most recent call last)")


def test_the_adopt_policy_reads_openstack_once_a_pass_for_vms_it_only_reports(world):
    """Many not-adopted VMs no owner rule names: one read of OpenStack's plan view a
    pass (it was one per VM), read again only after a write."""
    from os_onboard.reconcile.drift import Drift, DriftKind
    from os_onboard.reconcile.tolerate import Context, Tolerator

    strangers = [guest(f"db-{i}", f"3333333{i}-3333-4333-8333-333333333333",
                       nic(f"52:54:00:cc:00:0{i}", f"192.168.150.4{i}")) for i in range(3)]
    world.planned = inventory(vm1(), *strangers)
    ctx = Context(cloud=world.cloud, hypervisors=[dict(HYPERVISOR)], inventory=world.planned,
                  mapping=MAPPING, nova_python="nova-python", nova_config=["nova.conf"],
                  host_options={"libvirt_config_dirs": [str(world.tmp / "libvirt")],
                                "instances_path": str(world.tmp / "instances")},
                  journal=world.journal, state_url=f"sqlite:///{world.tmp}/s.db")
    tolerator = Tolerator(ctx)
    world.cloud.calls.clear()
    drifts = [Drift(DriftKind.NOT_ADOPTED, v.uuid, v.name, "not in OpenStack", "running on hv1")
              for v in strangers]
    assert {tolerator.apply(d, "adopt").action for d in drifts} == {"reported"}
    assert world.cloud.calls.count("servers") == 1
    adopted = tolerator.apply(Drift(DriftKind.NOT_ADOPTED, UUID1, "lab-vm1", "not in OpenStack",
                                    "running on hv1"), "adopt")
    assert adopted.action == "tolerated", adopted.detail
    reads = world.cloud.calls.count("servers")
    tolerator.apply(drifts[0], "adopt")  # after a write: read anew, once
    assert world.cloud.calls.count("servers") == reads + 1

