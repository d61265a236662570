"""The executors of a VM's steps: each one *ensures* its record.

Every executor first looks for the record it would create (by the VM's UUID,
MAC or os-onboard's marker) and adopts what it finds, so a rerun after a
crash between "write" and "journal" creates no duplicate. Each returns the
ids it made or found, which the journal keeps for later steps and for
unmanage.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from os_onboard.cloud.base import Cloud
from os_onboard.cloud.nova_helper import run_cinder_helper
from os_onboard.drivers.adoption import Adoption, HostTarget
from os_onboard.drivers.registry import driver_for
from os_onboard.exceptions import CloudError, ConfigError, NovaHelperError, VolumeWentToError
from os_onboard.plan.model import (
    MARKER_KEY,
    PORT_DESCRIPTION_PREFIX,
    VM_NAME_KEY,
    Step,
    StepKind,
    VmPlan,
)

#: Volume metadata key naming the disk a volume was adopted from.
DISK_KEY = "os-onboard:disk"
#: Volume metadata key of a volume recorded in place (its Cinder-side helper's kind,
#: e.g. "vmdk"): ``unmanage`` asks that helper to release it before Cinder does.
IN_PLACE_KEY = "os-onboard:in-place"
PORT_DESCRIPTION = PORT_DESCRIPTION_PREFIX + "{name}"


@dataclass
class ApplyEnv:
    """What executors need beyond the plan: the cloud and where things are."""

    cloud: Cloud
    #: the drivers' settings (e.g. libvirt's instances_path, libvirt_config_dirs)
    host_options: dict[str, Any] = field(default_factory=dict)
    availability_zone: str = "nova"
    hypervisors: dict[str, dict] = field(default_factory=dict)  # node -> hypervisor
    shared: dict[str, dict] = field(default_factory=dict)        # shared key -> result
    default_user_id: str = ""  # owner rules without a user: the applying user
    _networks: list[dict] | None = None  # read once per apply
    _subnets: list[dict] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def networks(self) -> list[dict]:
        with self._lock:
            if self._networks is None:
                self._networks = self.cloud.networks()
            return self._networks

    def subnets(self) -> list[dict]:
        with self._lock:
            if self._subnets is None:
                self._subnets = self.cloud.subnets()
            return self._subnets


def marker(vm: VmPlan, when: str) -> str:
    return f"host={vm.host_uri} node={vm.node} at={when}"


def _network_id(env: ApplyEnv, name_or_id: str) -> str:
    network = env.shared.get(f"network:{name_or_id}", {}).get("id")
    if network is None:
        found = [n for n in env.networks() if name_or_id in (n["id"], n["name"])]
        if not found:
            raise ConfigError(f"Neutron network {name_or_id!r} not found")
        network = found[0]["id"]
    return network


def port_request(env: ApplyEnv, vm: VmPlan, step: Step) -> dict:
    """The attributes of the port a PORT step creates (one create, or one of a bulk)."""
    p = step.params
    network = _network_id(env, p["network"])
    subnets = {s["name"]: s["id"] for s in env.subnets() if s["network_id"] == network}
    fixed_ips = [{"subnet_id": subnets.get(f["subnet"], f["subnet"]),
                  "ip_address": f["ip_address"]} for f in p["fixed_ips"]]
    return {"network_id": network, "mac_address": p["mac"], "fixed_ips": fixed_ips,
            "device_id": vm.uuid, "device_owner": f"compute:{env.availability_zone}",
            "binding_host_id": vm.host, "project_id": vm_project(vm),
            "name": f"{vm.name}-{p['mac'].replace(':', '')[-6:]}",
            "description": PORT_DESCRIPTION.format(name=vm.name)}


def port_result(vm: VmPlan, step: Step, port: dict) -> dict:
    """What the journal keeps of a PORT step; refuses a port nobody bound."""
    p = step.params
    if port["vif_type"] in ("binding_failed", "unbound", None):
        # nova-compute would die plugging it on its next restart (os-vif):
        # refuse before Nova ever sees the instance.
        raise CloudError(f"port {port['id']} ({p['mac']}) is {port['vif_type']} on host "
                         f"{vm.host}: no mechanism driver binds it there (configure "
                         f"onboard_bridge for bridge {p['bridge']})")
    return {"port_id": port["id"], "mac": p["mac"], "vif_type": port["vif_type"],
            "ips": [f["ip_address"] for f in port["fixed_ips"]]}


def ensure_port(env: ApplyEnv, vm: VmPlan, step: Step, resume: bool = True) -> dict:
    p = step.params
    network = _network_id(env, p["network"])
    # On a first attempt a port of ours cannot exist yet, and someone else's
    # with this MAC makes the create fail with 409: no look-up needed.
    ports = env.cloud.ports(mac_address=p["mac"], network_id=network) if resume else []
    mine = [q for q in ports if q["device_id"] == vm.uuid]
    if ports and not mine:
        raise CloudError(f"MAC {p['mac']} is now used by port {ports[0]['id']} "
                         f"(device {ports[0]['device_id'] or 'none'}); run 'os-onboard plan' "
                         "again")
    if mine:
        port = mine[0]
        if port["host"] != vm.host:
            port = env.cloud.update_port(port["id"], binding_host_id=vm.host)
    else:
        port = env.cloud.create_port(**port_request(env, vm, step))
    return port_result(vm, step, port)


def create_ports(env: ApplyEnv, batch: list[tuple[VmPlan, Step]]) -> list[dict]:
    """First attempts of many PORT steps in one Neutron request (all or none).

    Returns the ports in ``batch`` order (``port_result`` checks each); a
    caller whose bulk failed retries the steps one by one (resume=True: a
    look-up first), so the step at fault fails alone.
    """
    ports = env.cloud.create_ports([port_request(env, vm, step) for vm, step in batch])
    by_mac = {p["mac"]: p for p in ports}
    out = []
    for _vm, step in batch:
        port = by_mac.get(step.params["mac"].lower())
        if port is None:
            raise CloudError(f"bulk port create returned no port for {step.params['mac']}")
        out.append(port)
    return out


def _connector(env: ApplyEnv, vm: VmPlan, target: str) -> dict:
    hyp = env.hypervisors.get(vm.node or "", {})
    # What os-brick's get_connector_properties reports for a host without
    # iSCSI/FC initiators; Nova sends the same for RBD attachments.
    return {"host": vm.host, "ip": hyp.get("host_ip") or "127.0.0.1", "platform": "x86_64",
            "mountpoint": f"/dev/{target}",
            "os_type": "linux", "multipath": False, "enforce_multipath": False,
            "do_local_attach": False}


def _managed(env: ApplyEnv, vm: VmPlan, step: Step, when: str) -> dict:
    """The volume Cinder's manage API made of the disk (found again on a rerun)."""
    p = step.params
    disk_id = f"{vm.uuid}/{p['target']}"
    found = [v for v in env.cloud.volumes(metadata=json.dumps({DISK_KEY: disk_id}))
             if (v.get("metadata") or {}).get(DISK_KEY) == disk_id]
    usable = [v for v in found if not _failed_manage(v) and v["status"] != "deleting"]
    if usable:
        volume = usable[0]
    else:
        for failed in filter(_failed_manage, found):
            # An earlier manage Cinder could not finish: its record is released
            # so this rerun can try again. Unmanage, never delete: a delete asks
            # the driver to remove the backend object (Cinder's own name for it).
            env.cloud.unmanage_volume(failed["id"])
        volume = env.cloud.manage_volume(
            p["cinder_host"], p["ref"], name=f"{vm.name}-{p['target']}",
            metadata={MARKER_KEY: marker(vm, when), DISK_KEY: disk_id,
                      "os-onboard:source": p["source"] or ""},
            bootable=bool(p["boot"]))
    return volume


def _record_in_place(env: ApplyEnv, vm: VmPlan, step: Step, when: str) -> dict:
    """The volume the backend's Cinder-side helper recorded where the disk is (no manage
    API: it would move the disk); the helper finds its own work on a rerun."""
    p = step.params
    item = {"id": p["volume_id"], "cinder_host": p["cinder_host"], "path": p["source"],
            "capacity_kb": p["capacity_kb"], "disk_type": p["disk_type"],
            "vm_uuid": p["vm_uuid"], "name": f"{vm.name}-{p['target']}",
            "project_id": vm_project(vm), "user_id": vm_user(env, vm),
            "metadata": {MARKER_KEY: marker(vm, when), DISK_KEY: f"{vm.uuid}/{p['target']}",
                         "os-onboard:source": p["source"] or "", IN_PLACE_KEY: p["in_place"]}}
    try:
        [result] = run_cinder_helper(f"record_{p['in_place']}", [item], timeout=300)
    except NovaHelperError as exc:
        raise CloudError(f"disk {p['target']} ({p['source']}): {exc}") from exc
    if "error" in result:
        raise CloudError(f"disk {p['target']} ({p['source']}): Cinder-side helper: "
                         f"{result['error']}")
    return {"id": result["id"]}


def ensure_volume(env: ApplyEnv, vm: VmPlan, step: Step, when: str) -> dict:
    p = step.params
    volume = (_record_in_place(env, vm, step, when) if p.get("in_place")
              else _managed(env, vm, step, when))
    try:
        volume = env.cloud.wait_volume(volume["id"], ("available", "in-use", "attaching",
                                                      "reserved"))
    except VolumeWentToError as exc:
        raise CloudError(
            f"Cinder could not manage {p['ref']} on {p['cinder_host']} (volume {volume['id']} "
            "went to error; cinder-volume's log says why, e.g. the object was renamed or "
            "removed since discovery); a rerun releases that record and tries again") from exc
    project_id = vm_project(vm)
    if not volume.get("service_uuid") or (project_id and volume.get(
            "os-vol-tenant-attr:tenant_id") != project_id):
        _finish_volume(volume["id"], project_id, vm_user(env, vm))
    attachments = [a for a in env.cloud.attachments(volume["id"])
                   if a.get("instance") == vm.uuid or a.get("instance_uuid") == vm.uuid]
    if attachments:
        attachment = attachments[0]
    else:
        attachment = env.cloud.create_attachment(volume["id"], vm.uuid,
                                                 _connector(env, vm, p["target"]))
    if attachment.get("status") != "attached":
        env.cloud.complete_attachment(attachment["id"])
    info = _nova_connection_info(attachment.get("connection_info") or {}, volume["id"])
    return {"volume_id": volume["id"], "attachment_id": attachment["id"],
            "connection_info": info, "size_gib": volume["size"],
            "renamed_from": [s for s in (p["source"], p.get("current_source")) if s],
            "renamed_to": None if p.get("in_place") else _backend_name(info)}


def _failed_manage(volume: dict) -> bool:
    """Cinder shows a manage that failed (error_managing) as a detached 'error' volume."""
    return volume["status"] == "error" and volume.get("attach_status", "detached") == "detached"


def _nova_connection_info(flat: dict, volume_id: str) -> dict:
    """Cinder v3 attachments return connection info flat; Nova's BDMs keep the old
    shape (nova.volume.cinder._translate_attachment_ref) plus the volume id as serial."""
    data = {k: v for k, v in flat.items() if k not in ("driver_volume_type", "attachment_id")}
    return {"driver_volume_type": flat.get("driver_volume_type"), "data": _no_passwords(data),
            "serial": volume_id}


def _no_passwords(value: Any) -> Any:
    """Without the credentials some drivers put in connection info (Cinder's VMDK driver:
    ``config.vmware_host_password``, for os-brick's vmdk connector, which Nova's VMware
    driver does not use): they would land in the journal and in Nova's BDM."""
    if isinstance(value, dict):
        return {k: _no_passwords(v) for k, v in value.items() if "password" not in k.lower()}
    if isinstance(value, list):
        return [_no_passwords(v) for v in value]
    return value


def _backend_name(info: dict) -> str | None:
    data = info.get("data") or {}
    return data.get("name") or data.get("device_path")


def _finish_volume(volume_id: str, project_id: str | None, user_id: str) -> None:
    """service_uuid (manage leaves it NULL) and ownership (see extras/cinder)."""
    item = {"id": volume_id, "project_id": project_id, "user_id": user_id}
    try:
        [result] = run_cinder_helper("adopt_volume", [item])
    except NovaHelperError as exc:
        raise CloudError(f"volume {volume_id}: {exc}") from exc
    if "error" in result:
        raise CloudError(f"volume {volume_id}: Cinder-side helper: {result['error']}")


def vm_project(vm: VmPlan) -> str | None:
    server = next((s for s in vm.steps if s.kind is StepKind.SERVER), None)
    return server.params["project_id"] if server else None


def vm_user(env: ApplyEnv, vm: VmPlan) -> str:
    server = next((s for s in vm.steps if s.kind is StepKind.SERVER), None)
    return (server.params["user_id"] if server else None) or env.default_user_id


def adoption_of(vm: VmPlan) -> Adoption:
    """The adoption capability of the driver of the VM's host."""
    driver = driver_for(vm.host_uri)
    if driver.adoption is None:
        raise ConfigError(f"os-onboard's {driver.name} driver cannot adopt VMs")
    return driver.adoption


def host_target(vm: VmPlan) -> HostTarget:
    return HostTarget(uuid=vm.uuid, name=vm.name, host_uri=vm.host_uri)


def ensure_host_step(env: ApplyEnv, vm: VmPlan, step: Step, results: dict[str, dict]) -> dict:
    """A hypervisor-side step, run by the host's driver (named in the plan)."""
    return adoption_of(vm).execute(step.key, host_target(vm), step.params, results,
                                   env.host_options)


def volumes_managed(env: ApplyEnv, vm: VmPlan, results: dict[str, dict]) -> dict:
    """Tell the host's driver which volumes Cinder managed so far (e.g. renamed)."""
    volumes = {k: r for k, r in results.items() if k.startswith("volume:")}
    return adoption_of(vm).volumes_managed(host_target(vm), volumes, env.host_options)


def server_item(env: ApplyEnv, vm: VmPlan, step: Step, results: dict[str, dict],
                when: str) -> dict:
    """The Nova-side helper's input for one VM, from the plan and earlier results."""
    p = step.params
    flavor = env.shared[p["flavor"]]
    images = {role: env.shared[key]["id"] if key else None
              for role, key in p["images"].items()}
    bdms: list[dict] = []
    if p["root_kind"] == "local":
        bdms.append({"source_type": "image", "destination_type": "local", "boot_index": 0,
                     "device_name": p["root_device_name"], "image_id": images["image"],
                     "disk_bus": p["system_metadata"].get("image_hw_disk_bus"),
                     "delete_on_termination": True})
    for s in vm.steps:
        if s.kind is StepKind.VOLUME:
            r = results[s.key]
            bdms.append({"source_type": "volume", "destination_type": "volume",
                         "boot_index": 0 if s.params["boot"] else None,
                         "device_name": f"/dev/{s.params['target']}",
                         "disk_bus": s.params["bus"], "volume_id": r["volume_id"],
                         "attachment_id": r["attachment_id"],
                         "connection_info": r["connection_info"],
                         "volume_size": r["size_gib"], "delete_on_termination": False})
    ports = [{"id": results[s.key]["port_id"], "mac": s.params["mac"]}
             for s in vm.steps if s.kind is StepKind.PORT]
    return {"uuid": vm.uuid, "name": p["name"], "host": vm.host, "node": vm.node,
            "project_id": p["project_id"], "user_id": p["user_id"] or env.default_user_id,
            "flavor_id": flavor["id"], "image_ref": images["image"] or "",
            "kernel_id": images["kernel"], "ramdisk_id": images["ramdisk"],
            "vm_state": p["vm_state"], "power_state": p["power_state"],
            "system_metadata": p["system_metadata"],
            "root_device_name": p["root_device_name"], "root_kind": p["root_kind"],
            "availability_zone": env.availability_zone,
            "metadata": {MARKER_KEY: marker(vm, when), VM_NAME_KEY: vm.name},
            "bdms": bdms, "ports": ports}


def _allocation(env: ApplyEnv, vm: VmPlan, flavor: dict) -> tuple[str, dict[str, int]]:
    """(provider, resources) of a VM's allocation: its flavor on its compute node."""
    hyp = env.hypervisors.get(vm.node or "")
    if hyp is None:
        raise CloudError(f"compute node {vm.node} not found")
    resources = {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram"]}
    if flavor["disk"]:
        resources["DISK_GB"] = flavor["disk"]
    return hyp["uuid"], resources


def ensure_allocation(env: ApplyEnv, vm: VmPlan, flavor: dict, project_id: str,
                      user_id: str, resume: bool = True) -> dict:
    provider, resources = _allocation(env, vm, flavor)
    if not resume:  # a new consumer: generation None; Placement answers 409 otherwise
        try:
            env.cloud.put_allocations(vm.uuid, provider, resources, project_id, user_id,
                                      None)
            return {"provider": provider, "resources": resources}
        except CloudError as exc:
            if exc.status_code != 409:
                raise
    current = env.cloud.allocations(vm.uuid)
    mine = (current.get("allocations") or {}).get(provider, {}).get("resources")
    if mine != resources:
        env.cloud.put_allocations(vm.uuid, provider, resources, project_id, user_id,
                                  current.get("consumer_generation"))
    return {"provider": provider, "resources": resources}


def create_allocations(env: ApplyEnv, batch: list[tuple[VmPlan, dict, str, str]]) -> list[dict]:
    """First attempts of many ALLOCATION steps in one Placement request (all or none).

    ``batch``: (vm, flavor, project_id, user_id). Every consumer is new
    (generation None), so a consumer that exists after all makes the whole
    request fail with 409; the caller then retries one by one (resume=True).
    """
    consumers, results = {}, []
    for vm, flavor, project_id, user_id in batch:
        provider, resources = _allocation(env, vm, flavor)
        consumers[vm.uuid] = {"provider": provider, "resources": resources,
                              "project_id": project_id, "user_id": user_id,
                              "generation": None}
        results.append({"provider": provider, "resources": resources})
    env.cloud.post_allocations(consumers)
    return results


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {"value": value}
