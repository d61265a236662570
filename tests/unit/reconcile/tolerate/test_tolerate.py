"""The tolerate executors against the shipped in-memory cloud (os_onboard.cloud.fake).

Each test makes the drift find_drift would report for a hand-made inventory,
runs the executor, and checks what it wrote to the cloud and asked of the
Nova-side helper - and, for the safety rules, what it must never write.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from os_onboard.apply import release, steps
from os_onboard.cloud.fake import MARKER_KEY
from os_onboard.drivers.libvirt.hostwrite import persistent
from os_onboard.inventory.models import (
    Disk,
    HostStatus,
    Inventory,
    PowerState,
    Problem,
    Severity,
)
from os_onboard.plan.model import VM_NAME_KEY
from os_onboard.reconcile.drift import AdoptedServer, Drift, DriftKind, find_drift
from os_onboard.reconcile.tolerate import Context, Tolerator, base
from tests.unit.apply.test_runner import (
    HV_URI,
    HYPERVISOR,
    MAC1,
    MAC2,
    MAPPING,
    UUID1,
    guest,
    inventory,
    lab_cloud,
    nic,
    port,
)

MAC9 = "52:54:00:0b:09:09"
HOSTS = {"hv1": "compute-hv1"}


@pytest.fixture
def cloud(monkeypatch):
    """The shipped fake with lab-vm1 adopted (its server has the marker)."""
    cloud = lab_cloud()
    cloud.add_server(UUID1, "lab-vm1", "compute-hv1", "hv1", metadata={MARKER_KEY: "x"})
    monkeypatch.setattr(base, "run_helper", cloud.nova_helper)
    monkeypatch.setattr(release, "run_helper", cloud.nova_helper)
    monkeypatch.setattr(steps, "run_cinder_helper", cloud.cinder_helper)
    cloud.renames = []
    monkeypatch.setattr(persistent, "apply_renames", lambda uri, uuid, renames, dirs:
                        cloud.renames.append((uuid, dict(renames))) or True)
    return cloud


def ours(port_id, mac, *ips):
    return {**port(port_id, mac, *ips, device_id=UUID1,
                   description=steps.PORT_DESCRIPTION.format(name="lab-vm1")),
            "host": "compute-hv1", "vif_type": "bridge"}


def server(cloud, status="ACTIVE", vcpus=1, ram=96, devices=()) -> AdoptedServer:
    ports = tuple((p["mac"], tuple(i["ip_address"] for i in p["fixed_ips"]), p["host"])
                  for p in cloud.ports_ if p["device_id"] == UUID1)
    return AdoptedServer(uuid=UUID1, name="lab-vm1", host="compute-hv1", node="hv1",
                         status=status, vcpus=vcpus, ram=ram, ports=ports,
                         volume_devices=tuple(devices))


def tolerate(cloud, inv, srv, **kw):
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=inv, mapping=MAPPING,
                  host_options={"libvirt_config_dirs": ["/etc/libvirt"]}, **kw)
    drifts = find_drift(inv, [srv], HOSTS)
    return [Tolerator(ctx).apply(d, "tolerate") for d in drifts]


# -- power ------------------------------------------------------------------------

def test_pause_and_start_are_recorded_at_once(cloud):
    inv = inventory(guest("lab-vm1", UUID1, power=PowerState.PAUSED))
    [out] = tolerate(cloud, inv, server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.POWER_CHANGED, "tolerated")
    assert cloud.helper_log == [("update", {"uuid": UUID1, "vm_state": "paused",
                                         "power_state": 3})]
    cloud.helper_log.clear()
    [out] = tolerate(cloud, inventory(guest("lab-vm1", UUID1)), server(cloud, "SHUTOFF"))
    assert out.action == "tolerated"
    assert cloud.helper_log == [("update", {"uuid": UUID1, "vm_state": "active",
                                         "power_state": 1})]


def test_a_shutdown_is_recorded_only_after_the_grace(cloud):
    inv = inventory(guest("lab-vm1", UUID1, power=PowerState.SHUTOFF))
    seen = {"at": None}
    kw = {"seen_since": lambda uuid, kind, after: seen["at"], "shutdown_grace": 20}
    [out] = tolerate(cloud, inv, server(cloud), **kw)
    assert out.action == "deferred" and cloud.helper_log == []
    seen["at"] = datetime.now(UTC) - timedelta(seconds=5)
    [out] = tolerate(cloud, inv, server(cloud), **kw)
    assert out.action == "deferred" and cloud.helper_log == []
    assert out.recheck_in is not None and 14 < out.recheck_in <= 15  # a watcher's next pass
    seen["at"] = datetime.now(UTC) - timedelta(seconds=21)
    [out] = tolerate(cloud, inv, server(cloud), **kw)
    assert out.action == "tolerated"
    assert cloud.helper_log == [("update", {"uuid": UUID1, "vm_state": "stopped",
                                         "power_state": 4})]


def test_the_grace_is_the_vm_s_driver_s_unless_given(cloud):
    """libvirt waits (Nova's lifecycle events); vSphere records at once (its Nova
    driver has none, only the 600 s power sync)."""
    inv = inventory(guest("lab-vm1", UUID1, power=PowerState.SHUTOFF))
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=inv)
    assert ctx.grace_for(UUID1) == 20.0
    [out] = tolerate(cloud, inv, server(cloud), seen_since=lambda *a: None)
    assert out.action == "deferred" and cloud.helper_log == []
    inv.hosts[0].host.kind = "vsphere"
    assert ctx.grace_for(UUID1) == 0.0
    assert Context(cloud=cloud, hypervisors=[], inventory=inv,
                   shutdown_grace=7).grace_for(UUID1) == 7
    inv.hosts[0].host.kind = "no-such-driver"
    assert ctx.grace_for(UUID1) == 20.0


def test_pmsuspend_is_reported_only(cloud):
    inv = inventory(guest("lab-vm1", UUID1, power=PowerState.SUSPENDED))
    [out] = tolerate(cloud, inv, server(cloud))
    assert out.action == "reported" and cloud.helper_log == []


# -- NICs ---------------------------------------------------------------------------

def test_a_hot_plugged_nic_gets_a_bound_port_a_vif_and_the_cache(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11"),
                          nic(MAC2, "192.168.150.12")))
    [out] = tolerate(cloud, inv, server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.NIC_ADDED, "tolerated"), out
    [new] = [p for p in cloud.ports_ if p["mac"] == MAC2]
    assert (new["device_id"], new["device_owner"], new["host"]) == (
        UUID1, "compute:nova", "compute-hv1")
    assert [i["ip_address"] for i in new["fixed_ips"]] == ["192.168.150.12"]
    assert [c for c, _ in cloud.helper_log] == ["update", "network_cache"]
    assert cloud.helper_log[0][1]["add_vifs"] == [{"id": new["id"], "mac": MAC2}]


def test_an_unplugged_nic_leaves_nova_before_its_port_is_deleted(cloud):
    """Deleting a port Nova still owns sends network-vif-deleted (= a hot-unplug)."""
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11"), ours("port-9", MAC9)]
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11")))
    [out] = tolerate(cloud, inv, server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.NIC_REMOVED, "tolerated"), out
    writes = [(c.name, c.args[0], tuple(sorted(c.kwargs))) for c in cloud.log
              if c.name in ("update_port", "delete_port")]
    assert writes == [("update_port", "port-9", ("device_id", "device_owner")),
                      ("delete_port", "port-9", ())]
    assert cloud.helper_log[0] == ("update", {"uuid": UUID1, "remove_vifs": ["port-9"]})


def test_someone_elses_port_of_an_unplugged_nic_is_unbound_not_deleted(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11"),
                    {**port("port-9", MAC9, device_id=UUID1), "host": "compute-hv1"}]
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11")))
    [out] = tolerate(cloud, inv, server(cloud))
    assert out.action == "tolerated" and "kept" in out.detail
    assert [p["id"] for p in cloud.ports_] == ["port-1", "port-9"]
    assert cloud.ports_[1]["device_id"] == ""


def test_a_changed_ip_updates_the_port(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.77")))
    [out] = tolerate(cloud, inv, server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.IP_CHANGED, "tolerated"), out
    assert cloud.ports_[0]["fixed_ips"] == [{"subnet_id": "sub-lab",
                                             "ip_address": "192.168.150.77"}]


# -- disks --------------------------------------------------------------------------

def _rbd_disk(target):
    return Disk(device="disk", bus="virtio", target=target, format="raw",
                source_kind="network-rbd", source=f"legacy/lab-vm1-{target}",
                source_hosts=["127.0.0.1:6789"], capacity_bytes=2 * 1024**3)


def test_a_hot_plugged_disk_is_managed_attached_and_mapped(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    vm = guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11"))
    vm.disks.append(_rbd_disk("vdc"))
    [out] = tolerate(cloud, inventory(vm), server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.DISK_ADDED, "tolerated"), out
    [volume] = cloud.volumes_.values()
    assert volume["status"] == "in-use" and volume["ref"] == {"source-name": "lab-vm1-vdc"}
    [(command, item)] = cloud.helper_log
    [bdm] = item["add_bdms"]
    assert (command, bdm["volume_id"], bdm["device_name"]) == ("update", volume["id"],
                                                                "/dev/vdc")
    # the rename trap closed as at adoption: Cinder's name in the map and definition
    assert cloud.renames == [(UUID1, {"legacy/lab-vm1-vdc": f"legacy/volume-{volume['id']}"})]


def test_an_unplugged_disk_is_detached_in_the_records_only(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    vm = guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11"))
    vm.disks.append(_rbd_disk("vdc"))
    tolerate(cloud, inventory(vm), server(cloud))  # adopted as a volume first
    [volume_id] = cloud.volumes_
    vm.disks.pop()
    cloud.helper_log.clear()
    [out] = tolerate(cloud, inventory(vm), server(cloud, devices=("/dev/vdc",)))
    assert (out.drift.kind, out.action) == (DriftKind.DISK_REMOVED, "tolerated"), out
    assert "delete_attachment" not in cloud.calls
    assert "reset_volume_detached" in cloud.calls
    assert cloud.volumes_[volume_id]["status"] == "available"  # still managed
    assert cloud.helper_log == [("update", {"uuid": UUID1, "remove_bdms": [volume_id]})]


# -- resize, migration, gone ------------------------------------------------------------

def test_a_resize_takes_the_planners_flavor_and_resizes_the_allocation(cloud):
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    cloud.put_allocations(UUID1, "rp-hv1", {"VCPU": 1, "MEMORY_MB": 96, "DISK_GB": 1},
                          "p-demo", "u-demo", None)
    vm = guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11")).model_copy(update={"vcpus": 2})
    [out] = tolerate(cloud, inventory(vm), server(cloud))
    assert (out.drift.kind, out.action) == (DriftKind.RESIZED, "tolerated"), out
    [flavor] = cloud.flavors_
    assert (flavor["name"], flavor["vcpus"], flavor["ram"]) == ("adopted-2c-96m-1g", 2, 96)
    assert cloud.helper_log == [("update", {"uuid": UUID1, "flavor_id": flavor["id"]})]
    assert cloud.allocs[UUID1]["allocations"]["rp-hv1"]["resources"]["VCPU"] == 2


def test_a_migration_moves_the_volume_connectors(cloud):
    hv2 = {**HYPERVISOR, "node": "hv2", "uuid": "rp-hv2", "service_host": "compute-hv2",
           "host_ip": "10.0.0.2"}
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    vm = guest("lab-vm1", UUID1, nic(MAC1, "192.168.150.11"))
    vm.disks.append(_rbd_disk("vdc"))
    tolerate(cloud, inventory(vm), server(cloud))  # the volume, attached on hv1
    cloud.helper_log.clear()
    inv = Inventory(hosts=[inventory(uri=HV_URI).hosts[0],
                           inventory(vm, uri="qemu+ssh://hv2/system",
                                     hostname="hv2").hosts[0]])
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR), hv2], inventory=inv,
                  mapping=MAPPING)
    [drift] = find_drift(inv, [server(cloud, devices=("/dev/vdc",))],
                         {"hv1": "compute-hv1", "hv2": "compute-hv2"})
    out = Tolerator(ctx).apply(drift, "tolerate")
    assert (drift.kind, out.action) == (DriftKind.HOST_CHANGED, "tolerated"), out
    [(attachment_id, attachment)] = cloud.attachments_.items()
    assert [(c.args[0], c.args[1]["host"]) for c in cloud.log
            if c.name == "update_attachment"] == [(attachment_id, "compute-hv2")]
    assert attachment["status"] == "attached"  # completed again after the update
    assert cloud.ports_[0]["host"] == "compute-hv2"
    assert [sorted(item) for _, item in cloud.helper_log] == [
        ["host", "node", "power_state", "uuid"], ["bdm_connection_info", "uuid"]]


def test_a_vanished_vm_is_purged_unless_a_host_was_not_read(cloud):
    cloud.servers_[UUID1] = {"name": "lab-vm1", "status": "ACTIVE", "host": "compute-hv1",
                             "metadata": {"os-onboard:adopted": "x"}}
    cloud.ports_ = [ours("port-1", MAC1, "192.168.150.11")]
    dead = inventory(uri="qemu+ssh://hv2/system", hostname="hv2").hosts[0].model_copy(
        update={"status": HostStatus.UNREACHABLE, "problems": [Problem(
            severity=Severity.ERROR, code="host-unreachable", message="no answer")]})
    half = Inventory(hosts=[inventory().hosts[0], dead])
    assert tolerate(cloud, half, server(cloud)) == []  # not even drift
    earlier = datetime.now(UTC) - timedelta(seconds=3)  # a pass before saw it absent
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=half,
                  seen_since=lambda *a: earlier)
    drift = Drift(DriftKind.VM_GONE, UUID1, "lab-vm1", "on compute-hv1", "on no host")
    assert Tolerator(ctx).apply(drift, "tolerate").action == "deferred"  # nor acted on
    assert cloud.helper_log == [] and cloud.ports_
    [out] = tolerate(cloud, inventory(), server(cloud), seen_since=lambda *a: earlier)
    assert out.action == "tolerated", out
    assert [c for c, _ in cloud.helper_log] == ["release"]  # purge, never a soft delete
    assert cloud.ports_ == []


def test_a_vm_absent_from_one_pass_only_is_not_gone(cloud):
    """The first pass that misses a VM defers (and asks for a pass soon); only the
    second in a row removes the records."""
    cloud.servers_[UUID1] = {"name": "lab-vm1", "status": "ACTIVE", "host": "compute-hv1",
                             "metadata": {"os-onboard:adopted": "x"}}
    [out] = tolerate(cloud, inventory(), server(cloud), seen_since=lambda *a: None)
    assert (out.drift.kind, out.action) == (DriftKind.VM_GONE, "deferred")
    assert out.recheck_in is not None and out.recheck_in <= 5
    assert cloud.helper_log == [] and UUID1 in cloud.servers_


# -- renamed ----------------------------------------------------------------------------

def renamed(cloud, vm_name, display, key="lab-vm1"):
    cloud.servers_[UUID1].update(name=display, metadata={MARKER_KEY: "x", VM_NAME_KEY: key})
    inv = inventory(guest(vm_name, UUID1))
    inv.hosts[0].host.kind = "vsphere"  # names are display names there
    srv = replace(server(cloud), name=display, vm_name=key)
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=inv)
    drifts = [d for d in find_drift(inv, [srv], HOSTS)
              if d.kind is DriftKind.RENAMED]
    return [Tolerator(ctx).apply(d, "tolerate") for d in drifts]


@pytest.fixture
def vsphere_node(monkeypatch):
    """The fake inventory's VM has no cluster: name its node as libvirt would."""
    from os_onboard.drivers.vsphere import adoption
    monkeypatch.setattr(adoption.VsphereAdoption, "compute_node",
                        lambda self, host, vm: host.hostname)


def test_a_rename_in_vcenter_becomes_the_display_name_and_the_key(cloud, vsphere_node):
    [out] = renamed(cloud, "lab-vm1-new", "lab-vm1")
    assert out.action == "tolerated" and "overwritten" not in out.detail
    record = cloud.servers_[UUID1]
    assert (record["name"], record["metadata"][VM_NAME_KEY]) == ("lab-vm1-new", "lab-vm1-new")
    assert record["metadata"][MARKER_KEY] == "x"  # merged, not replaced
    assert renamed(cloud, "lab-vm1-new", "lab-vm1-new", "lab-vm1-new") == []  # no echo
    assert cloud.helper_log == []  # Nova's API, not its database


def test_renamed_on_both_sides_the_vm_wins_and_says_what_it_overwrote(cloud, vsphere_node):
    [out] = renamed(cloud, "lab-vm1-new", "renamed-in-openstack")
    assert out.action == "tolerated"
    assert "'renamed-in-openstack' set through OpenStack is overwritten" in out.detail
    assert cloud.servers_[UUID1]["name"] == "lab-vm1-new"


def test_a_rename_while_nova_acts_is_queued_with_the_key_left_behind(cloud, vsphere_node):
    cloud.servers_[UUID1]["task_state"] = "rebooting"
    [out] = renamed(cloud, "lab-vm1-new", "lab-vm1")
    assert out.action == "failed" and "409" in out.detail
    # the key still differs: the next pass (Nova done) writes both again
    assert cloud.servers_[UUID1]["metadata"][VM_NAME_KEY] == "lab-vm1"
    cloud.servers_[UUID1]["task_state"] = None
    [out] = renamed(cloud, "lab-vm1-new", cloud.servers_[UUID1]["name"])
    assert out.action == "tolerated"
    assert cloud.servers_[UUID1]["metadata"][VM_NAME_KEY] == "lab-vm1-new"


def test_report_writes_nothing(cloud):
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC2, "192.168.150.12"),
                          power=PowerState.PAUSED))
    drifts = find_drift(inv, [server(cloud)], HOSTS)
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=inv, mapping=MAPPING)
    outcomes = [Tolerator(ctx).apply(d, "report") for d in drifts]
    assert {o.action for o in outcomes} == {"reported"} and len(outcomes) == 2
    assert cloud.calls == [] and cloud.helper_log == []


def test_new_records_without_a_mapping_fail_with_the_reason(cloud):
    inv = inventory(guest("lab-vm1", UUID1, nic(MAC2, "192.168.150.12")))
    ctx = Context(cloud=cloud, hypervisors=[dict(HYPERVISOR)], inventory=inv)
    [drift] = find_drift(inv, [server(cloud)], HOSTS)
    out = Tolerator(ctx).apply(drift, "tolerate")
    assert out.action == "failed" and "--mapping" in out.detail


def test_first_sighting_of_a_drift_comes_from_its_run_in_the_audit_log(tmp_path):
    from os_onboard.cli.reconcile import _seen_since
    from os_onboard.state.audit import AuditEntry, AuditLog
    from os_onboard.state.store import StateStore

    audit = AuditLog(StateStore(f"sqlite:///{tmp_path}/s.db"))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def add(minute, kind, after, action):
        audit.add(AuditEntry(t0 + timedelta(minutes=minute), UUID1, "lab-vm1", kind,
                             "ACTIVE (running)", after, "pass", action, ""))

    assert _seen_since(audit, UUID1, "power-changed", "shutoff") is None
    add(0, "power-changed", "shutoff", "tolerated")   # an earlier shutdown, recorded
    add(1, "power-changed", "paused", "tolerated")
    add(2, "power-changed", "shutoff", "deferred")    # this run starts here
    add(3, "nic-added", "NIC x", "reported")          # other kinds do not break it
    add(4, "power-changed", "shutoff", "deferred")
    assert _seen_since(audit, UUID1, "power-changed", "shutoff") == t0 + timedelta(minutes=2)
    assert _seen_since(audit, UUID1, "power-changed", "paused") is None
