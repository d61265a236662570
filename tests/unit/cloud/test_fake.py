"""The shipped fake cloud keeps the contract and the semantics plan, apply,
release and reconcile rely on (os_onboard.cloud.fake)."""

import inspect

import pytest

from os_onboard.cloud.base import Cloud
from os_onboard.cloud.fake import MARKER_KEY, FakeCloud
from os_onboard.exceptions import CloudError, TemporaryCloudError, VolumeWentToError

NET = {"id": "net-1", "name": "lab", "physical_network": "physnet1", "network_type": "flat",
       "segment": None, "subnet_ids": ["sub-1"]}
SUB = {"id": "sub-1", "name": "lab-v4", "network_id": "net-1", "cidr": "10.0.0.0/24",
       "enable_dhcp": False, "ip_version": 4}
HOST = "lab@ceph#ceph"
UUID = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def cloud():
    return FakeCloud(projects={"demo": "p-demo"}, users={"demo": "u-demo"},
                     hypervisors=[{"node": "hv1", "uuid": "rp-1", "state": "up",
                                   "status": "enabled", "host_ip": "10.0.0.1",
                                   "service_host": "compute-hv1"}],
                     networks=[NET], subnets=[SUB])


def port(mac, ip=None, network="net-1", **attrs):
    fixed = [{"subnet_id": "sub-1", "ip_address": ip}] if ip else []
    return {"network_id": network, "mac_address": mac, "fixed_ips": fixed, **attrs}


def status(excinfo):
    return getattr(excinfo.value, "status_code", None)


# -- the contract -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(Cloud.__abstractmethods__))
def test_the_fake_and_the_real_class_keep_the_contracts_signatures(name):
    from os_onboard.cloud.openstack import OpenStackCloud

    wanted = inspect.signature(getattr(Cloud, name))
    assert inspect.signature(getattr(FakeCloud, name)) == wanted
    assert inspect.signature(getattr(OpenStackCloud, name)) == wanted


def test_answers_are_copies_not_the_records(cloud):
    cloud.create_port(**port("52:54:00:00:00:01"))
    cloud.ports()[0]["device_id"] = "changed by a caller"
    assert cloud.ports_[0]["device_id"] == ""


# -- Nova ---------------------------------------------------------------------------

def test_a_server_uuid_is_taken_once(cloud):
    cloud.add_server(UUID, "vm1", "compute-hv1", "hv1")
    with pytest.raises(CloudError) as excinfo:
        cloud.add_server(UUID, "vm2")
    assert status(excinfo) == 409
    assert cloud.server(UUID)["name"] == "vm1" and set(cloud.servers()) == {UUID}


def test_adopt_helper_makes_the_server_once_and_refuses_someone_elses(cloud):
    flavor = cloud.create_flavor("adopted-1c", 1, 96, 1, "p-demo", "")
    item = {"uuid": UUID, "name": "vm1", "host": "compute-hv1", "node": "hv1",
            "metadata": {MARKER_KEY: "x"}, "project_id": "p-demo", "flavor_id": flavor["id"],
            "power_state": 1, "vm_state": "active", "network_cache": True}
    assert cloud.nova_helper("adopt", [], stdin=[item]) == [
        {"uuid": UUID, "network_cache": {"vifs": []}}]
    assert cloud.nova_helper("adopt", [], stdin=[item])[0] == {  # idempotent
        "uuid": UUID, "network_cache": {"vifs": []}}
    server = cloud.servers()[UUID]
    assert (server["status"], server["flavor"], server["vcpus"]) == ("ACTIVE", "adopted-1c", 1)

    cloud.add_server("someone-elses", "theirs")
    [result] = cloud.nova_helper("adopt", [], stdin=[{**item, "uuid": "someone-elses"}])
    assert "was not adopted by os-onboard" in result["error"]
    [result] = cloud.nova_helper("update", [], stdin=[{"uuid": UUID, "vm_state": "stopped",
                                                       "power_state": 4}])
    assert result["after"]["vm_state"] == "stopped" and cloud.server(UUID)["status"] == "SHUTOFF"
    assert cloud.nova_helper("release", [], stdin=[{"uuid": UUID}]) == [
        {"uuid": UUID, "purged": True}]
    assert cloud.server(UUID) is None
    assert cloud.calls.count("helper:adopt") == 3
    assert [c for c, _ in cloud.helper_log] == ["adopt", "adopt", "adopt", "update", "release"]


def test_flavors_are_made_once_per_name_with_access_for_the_project(cloud):
    first = cloud.create_flavor("adopted-1c", 1, 96, 1, "p-demo", "")
    again = cloud.create_flavor("adopted-1c", 1, 96, 1, "p-other", "")
    assert first == again and len(cloud.flavors()) == 1
    assert cloud.flavor_access[first["id"]] == {"p-demo", "p-other"}


def test_keystone_names_and_ids(cloud):
    assert (cloud.project_id("demo"), cloud.project_id("p-demo")) == ("p-demo", "p-demo")
    assert cloud.user_id("nobody") is None
    assert cloud.current_ids() == ("p-admin", "u-admin")
    assert cloud.compute_services() == [{"host": "compute-hv1", "state": "up",
                                         "status": "enabled"}]


# -- Neutron ------------------------------------------------------------------------

def test_a_mac_is_taken_by_one_port_per_network(cloud):
    cloud.create_network("other", "physnet2", "flat", None, None)
    other = cloud.networks()[-1]["id"]
    cloud.create_port(**port("52:54:00:00:00:01"))
    with pytest.raises(CloudError) as excinfo:
        cloud.create_port(**port("52:54:00:00:00:01".upper()))
    assert status(excinfo) == 409 and "in use" in str(excinfo.value)
    cloud.create_port(**port("52:54:00:00:00:01", network=other))  # another network: fine
    assert len(cloud.ports(mac_address="52:54:00:00:00:01")) == 2


def test_an_ip_is_taken_by_one_port_per_subnet(cloud):
    cloud.create_port(**port("52:54:00:00:00:01", "10.0.0.5"))
    with pytest.raises(CloudError) as excinfo:
        cloud.create_port(**port("52:54:00:00:00:02", "10.0.0.5"))
    assert status(excinfo) == 409


def test_a_bulk_create_is_all_or_none(cloud):
    cloud.create_port(**port("52:54:00:00:00:03"))
    with pytest.raises(CloudError) as excinfo:
        cloud.create_ports([port("52:54:00:00:00:01"), port("52:54:00:00:00:03")])
    assert status(excinfo) == 409 and len(cloud.ports()) == 1
    with pytest.raises(CloudError):  # a clash inside the one request
        cloud.create_ports([port("52:54:00:00:00:01"), port("52:54:00:00:00:01")])
    made = cloud.create_ports([port("52:54:00:00:00:02"), port("52:54:00:00:00:01")])
    assert [p["mac"] for p in made] == ["52:54:00:00:00:02", "52:54:00:00:00:01"]


def test_binding_and_port_updates(cloud):
    unbound = cloud.create_port(**port("52:54:00:00:00:01"))
    assert unbound["vif_type"] == "unbound"
    bound = cloud.update_port(unbound["id"], binding_host_id="compute-hv1")
    assert (bound["host"], bound["vif_type"]) == ("compute-hv1", "bridge")
    cloud.bind_fail.add("52:54:00:00:00:02")
    failed = cloud.create_port(**port("52:54:00:00:00:02", binding_host_id="compute-hv1"))
    assert failed["vif_type"] == "binding_failed"
    cloud.delete_port(failed["id"])
    cloud.delete_port(failed["id"])  # gone already: not an error
    with pytest.raises(CloudError) as excinfo:
        cloud.update_port("port-nope", device_id="")
    assert status(excinfo) == 404
    with pytest.raises(CloudError) as excinfo:
        cloud.create_port(**port("52:54:00:00:00:09", network="net-nope"))
    assert status(excinfo) == 404


# -- Cinder -------------------------------------------------------------------------

def manage(cloud, name="vm1-vdb", ref="vm1-data"):
    return cloud.manage_volume(HOST, {"source-name": ref}, name, {"k": "v"})


def test_volume_states_through_manage_attach_reset_unmanage(cloud):
    volume = manage(cloud)
    assert volume["status"] == "creating"
    assert cloud.wait_volume(volume["id"], ("available",))["status"] == "available"
    attachment = cloud.create_attachment(volume["id"], UUID, {"host": "compute-hv1",
                                                              "mountpoint": "/dev/vdb"})
    assert cloud.volume(volume["id"])["status"] == "attaching"
    with pytest.raises(CloudError) as excinfo:  # not multiattach
        cloud.create_attachment(volume["id"], "another", {"host": "compute-hv1"})
    assert status(excinfo) == 400
    cloud.complete_attachment(attachment["id"])
    shown = cloud.volume(volume["id"])
    assert (shown["status"], shown["attach_status"]) == ("in-use", "attached")
    assert shown["attachments"][0]["server_id"] == UUID
    assert [a["status"] for a in cloud.attachments(volume["id"])] == ["attached"]
    with pytest.raises(CloudError) as excinfo:  # in use: refused
        cloud.unmanage_volume(volume["id"])
    assert status(excinfo) == 400
    cloud.reset_volume_detached(volume["id"])
    assert cloud.volume(volume["id"])["status"] == "available"
    assert cloud.attachments(volume["id"]) == []
    cloud.unmanage_volume(volume["id"])
    cloud.unmanage_volume(volume["id"])  # gone already: not an error
    assert cloud.volume(volume["id"]) is None


def test_a_manage_goes_to_error_when_the_backend_has_no_such_object(cloud):
    cloud.add_backend_volume(HOST, "vm1-data", size=3)
    assert [v["safe_to_manage"] for v in cloud.manageable_volumes(HOST)] == [True]
    good = manage(cloud)
    assert cloud.wait_volume(good["id"], ("available",))["size"] == 3
    assert [v["cinder_id"] for v in cloud.manageable_volumes(HOST)] == [good["id"]]
    for bad in (manage(cloud, "vm1-vdc", "renamed"), manage(cloud, "again")):  # or managed
        with pytest.raises(VolumeWentToError):
            cloud.wait_volume(bad["id"], ("available",))
    cloud.manage_fails.add("vm1-vdd")
    with pytest.raises(VolumeWentToError):
        cloud.wait_volume(manage(cloud, "vm1-vdd")["id"], ("available",))
    assert len(cloud.volumes(metadata='{"k": "v"}')) == 4
    assert cloud.volumes(metadata={"k": "other"}) == []


def test_a_wait_for_a_status_the_volume_does_not_reach_times_out(cloud):
    volume = manage(cloud)
    with pytest.raises(TemporaryCloudError, match="still available"):
        cloud.wait_volume(volume["id"], ("in-use",))


# -- Placement ----------------------------------------------------------------------

def test_allocations_per_consumer_with_generations(cloud):
    assert cloud.allocations(UUID) == {"allocations": {}}
    cloud.put_allocations(UUID, "rp-1", {"VCPU": 1}, "p-demo", "u-demo", None)
    first = cloud.allocations(UUID)
    assert first["consumer_generation"] == 1
    assert first["allocations"]["rp-1"]["resources"] == {"VCPU": 1}
    with pytest.raises(CloudError) as excinfo:  # a new-consumer write of a known one
        cloud.put_allocations(UUID, "rp-1", {"VCPU": 2}, "p-demo", "u-demo", None)
    assert status(excinfo) == 409
    cloud.put_allocations(UUID, "rp-1", {"VCPU": 2}, "p-demo", "u-demo", 1)
    assert cloud.allocations(UUID)["consumer_generation"] == 2
    assert cloud.usages("rp-1") == {"VCPU": 2}
    cloud.delete_allocations(UUID)
    cloud.delete_allocations(UUID)  # none: not an error
    assert cloud.allocs == {}


def test_a_bulk_allocation_is_all_or_none(cloud):
    cloud.put_allocations("c1", "rp-1", {"VCPU": 1}, "p", "u", None)
    request = {uuid: {"provider": "rp-1", "resources": {"VCPU": 1}, "project_id": "p",
                      "user_id": "u", "generation": None} for uuid in ("c2", "c1")}
    with pytest.raises(CloudError) as excinfo:
        cloud.post_allocations(request)
    assert status(excinfo) == 409 and set(cloud.allocs) == {"c1"}
    request["c1"]["generation"] = 1
    cloud.post_allocations(request)
    assert {c: a["consumer_generation"] for c, a in cloud.allocs.items()} == {"c1": 2, "c2": 1}


# -- errors on demand ---------------------------------------------------------------

def test_injected_failures_come_before_any_effect_and_run_out(cloud):
    cloud.fail("create_port", status=409, times=2)
    for _ in range(2):
        with pytest.raises(CloudError) as excinfo:
            cloud.create_port(**port("52:54:00:00:00:01"))
        assert status(excinfo) == 409 and not excinfo.value.temporary
    assert cloud.ports() == []
    cloud.create_port(**port("52:54:00:00:00:01"))

    cloud.fail("allocations", status=503)
    with pytest.raises(TemporaryCloudError) as excinfo:
        cloud.allocations(UUID)
    assert status(excinfo) == 503 and excinfo.value.temporary
    cloud.fail("servers")
    with pytest.raises(CloudError, match="servers: injected failure"):
        cloud.servers()
    cloud.fail("helper:adopt")
    with pytest.raises(CloudError):
        cloud.nova_helper("adopt", [], stdin=[])


def test_a_cloud_that_is_down_refuses_every_call(cloud):
    cloud.down = True
    for call in (cloud.servers, cloud.hypervisors, lambda: cloud.allocations(UUID),
                 lambda: cloud.create_port(**port("52:54:00:00:00:01"))):
        with pytest.raises(TemporaryCloudError, match="Connection refused"):
            call()
    cloud.down = False
    assert cloud.ports() == [] and cloud.servers() == {}


def test_a_lost_answer_leaves_the_write_done(cloud):
    cloud.lose_answers.add("create_ports")
    with pytest.raises(TemporaryCloudError, match="timed out"):
        cloud.create_ports([port("52:54:00:00:00:01")])
    assert [p["mac"] for p in cloud.ports()] == ["52:54:00:00:00:01"]


def test_calls_and_writes_are_logged(cloud):
    cloud.ports()
    made = cloud.create_port(**port("52:54:00:00:00:01"))
    cloud.update_port(made["id"], binding_host_id="compute-hv1")
    assert cloud.calls == ["ports", "create_port", "update_port"]
    assert cloud.writes() == ["create_port", "update_port"]
    assert cloud.log[-1].args == (made["id"],)
    assert cloud.log[-1].kwargs == {"binding_host_id": "compute-hv1"}
