"""Drive Nova's VMware driver (nova.virt.vmwareapi.VMwareVCDriver) against the simulator.

Run with the lab's OpenStack venv python (nova, oslo.vmware installed):

    VCSIM_PASSWORD=... python nova_driver_check.py --port 18443 [--cluster DC0_C0]

It writes a minimal nova.conf ([vmware] host_ip/host_port/host_username/
host_password/cluster_name, insecure) into a temporary directory, then calls
what nova-compute calls: the constructor, init_host, get_available_resource,
list_instances, spawn (a 1 MiB flat VMDK image, Glance mocked; one 'dvs' VIF
on --port-group, Neutron's vnic-index call mocked), get_info,
instance_exists, get_vnc_console, get_volume_connector, update_provider_tree,
power_off, power_on, reboot (hard, soft), destroy, and checks a few results
with oslo.vmware directly (FindAllByUuid, the indexed property nvp.vm-uuid,
the NIC's port group, the registered extension). Spawn uploads the image to an ESX
host: the simulator needs -esx-endpoints. One JSON line per step on stdout;
exit status 1 at the first failure.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import uuid
import warnings

warnings.simplefilter("ignore")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="the simulator's https port")
    p.add_argument("--user", default="onboard")
    p.add_argument("--cluster", default="DC0_C0")
    p.add_argument("--no-spawn", action="store_true", help="stop after list_instances")
    p.add_argument("--port-group", default="DC0_DVPG0",
                   help="the distributed port group of the spawned VM's NIC ('' for no NIC)")
    p.add_argument("--pause-file", default="",
                   help="after spawn print PAUSED and wait until this file exists (a test "
                   "restarts the simulator meanwhile), then go on with the same driver")
    args = p.parse_args()
    password = os.environ["VCSIM_PASSWORD"]
    tmp = tempfile.mkdtemp(prefix="nova-vmware-check-")
    conf = os.path.join(tmp, "nova.conf")
    with open(conf, "w") as f:
        f.write(f"""[DEFAULT]
compute_driver = vmwareapi.VMwareVCDriver
transport_url = fake:/
state_path = {tmp}/state
instances_path = {tmp}/state/instances
[oslo_concurrency]
lock_path = {tmp}/lock
[vmware]
host_ip = {args.host}
host_port = {args.port}
host_username = {args.user}
host_password = {password}
cluster_name = {args.cluster}
insecure = True
api_retry_count = 1
task_poll_interval = 0.2
""")

    import logging
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    import nova.conf
    from nova import objects, rpc
    objects.register_all()
    CONF = nova.conf.CONF
    CONF([], project="nova", default_config_files=[conf])
    rpc.init(CONF)
    from unittest import mock

    from nova import context as nctx
    from nova.compute import power_state
    from nova.virt import virtapi
    from nova.virt.vmwareapi import constants, driver, images, vm_util
    from oslo_vmware import vim_util

    def step(name, fn, check=None):
        t0 = time.monotonic()
        try:
            r = fn()
            if check is not None and not check(r):
                raise AssertionError(f"unexpected result: {r!r}")
        except Exception as e:
            print(json.dumps({"step": name, "ok": False, "seconds": round(time.monotonic() - t0, 2),
                              "error": f"{type(e).__name__}: {e}"}), flush=True)
            traceback.print_exc()
            sys.exit(1)
        print(json.dumps({"step": name, "ok": True, "seconds": round(time.monotonic() - t0, 2),
                          "result": str(r)[:300]}), flush=True)
        return r

    d = step("constructor", lambda: driver.VMwareVCDriver(virtapi.VirtAPI()))
    step("init_host", lambda: d.init_host("vc-host"))
    session = d._session
    step("extension registered", lambda: session._call_method(
        vim_util, "find_extension", constants.EXTENSION_KEY), lambda r: r is not None)
    node = step("nodename", lambda: d._nodename,
                lambda r: r.endswith("." + session.vim.service_content.about.instanceUuid))
    step("get_available_resource", lambda: d.get_available_resource(node),
         lambda r: r["vcpus"] > 0 and r["local_gb"] > 0 and r["hypervisor_hostname"] == node)
    step("list_instances", lambda: d.list_instances(), lambda r: isinstance(r, list))
    if args.no_spawn:
        return

    ctx = nctx.get_admin_context()
    image_id = str(uuid.uuid4())
    data = b"\0" * (1 << 20)
    image = {"id": image_id, "name": "tiny", "size": len(data), "disk_format": "vmdk",
             "container_format": "bare", "status": "active", "min_disk": 0, "min_ram": 0,
             "properties": {"vmware_disktype": "preallocated", "vmware_adaptertype": "lsiLogic"}}
    flavor = objects.Flavor(name="m1.tiny", memory_mb=128, vcpus=1, root_gb=0, ephemeral_gb=0,
                            swap=0, extra_specs={}, flavorid="1", id=1)
    inst = objects.Instance(context=ctx, id=1, uuid=str(uuid.uuid4()), display_name="nova-check",
                            hostname="nova-check", image_ref=image_id, flavor=flavor,
                            project_id="p1", user_id="u1", metadata={}, system_metadata={},
                            vcpus=1, memory_mb=128, root_gb=0, ephemeral_gb=0,
                            vm_state="building", task_state="spawning", power_state=0, node=node,
                            host="vc-host", availability_zone="nova", config_drive="",
                            key_data=None)
    meta = objects.ImageMeta.from_dict(image)
    network_info = []
    if args.port_group:
        # What a mechanism driver binding vif_type 'dvs' would hand Nova.
        from nova.network import model as netmodel
        network_info = netmodel.NetworkInfo([netmodel.VIF(
            id=str(uuid.uuid4()), address="fa:16:3e:00:00:01", type="dvs",
            details={"dvs_port_group_name": args.port_group},
            network=netmodel.Network(id=str(uuid.uuid4()), label="lab", bridge=None,
                                     subnets=[]))])
    with mock.patch.object(images.IMAGE_API, "get", return_value=image), \
            mock.patch.object(images.IMAGE_API, "download",
                              side_effect=lambda *a, **k: iter([data])), \
            mock.patch.object(objects.Instance, "save"), \
            mock.patch.object(d._vmops._network_api, "update_instance_vnic_index"):
        step("spawn", lambda: d.spawn(ctx, inst, meta, [], None, {}, network_info, None))
        step("list_instances (spawned)", lambda: d.list_instances(), lambda r: inst.uuid in r)
        vms = step("FindAllByUuid", lambda: session._call_method(
            session.vim, "FindAllByUuid", session.vim.service_content.searchIndex,
            uuid=inst.uuid, vmSearch=True, instanceUuid=True), lambda r: len(r) == 1)
        if args.pause_file:
            print(json.dumps({"step": "PAUSED", "ok": True, "result": vms[0].value}), flush=True)
            while not os.path.exists(args.pause_file):
                time.sleep(0.1)

        def vm_uuid_prop():
            return session._call_method(vim_util, "get_object_property", vms[0],
                                        'config.extraConfig["nvp.vm-uuid"]').value
        step("config.extraConfig[\"nvp.vm-uuid\"]", vm_uuid_prop, lambda r: r == inst.uuid)

        def nics():
            devices = session._call_method(vim_util, "get_object_property", vms[0],
                                           "config.hardware.device").VirtualDevice
            return [(dev.macAddress, getattr(dev.backing, "port", None) and
                     dev.backing.port.portgroupKey)
                    for dev in devices if hasattr(dev, "macAddress")]
        if args.port_group:
            pgs = session._call_method(vim_util, "get_objects", "DistributedVirtualPortgroup",
                                       100, ["name"]).objects
            pg = next(o.obj.value for o in pgs if o.propSet[0].val == args.port_group)
            step("NIC on the port group", nics, lambda r: r == [("fa:16:3e:00:00:01", pg)])

        def fresh_ref():
            vm_util.vm_ref_cache_delete(inst.uuid)
            return vm_util.get_vm_ref(session, inst)
        step("get_vm_ref (FindAllByUuid)", fresh_ref, lambda r: r.value == vms[0].value)
        step("get_info", lambda: d.get_info(inst).state, lambda r: r == power_state.RUNNING)
        step("instance_exists", lambda: d.instance_exists(inst), lambda r: r is True)
        step("get_vnc_console", lambda: d.get_vnc_console(ctx, inst),
             lambda r: r.port >= 5900)
        step("get_volume_connector", lambda: d.get_volume_connector(inst),
             lambda r: r.get("instance") == vms[0].value)

        def provider_tree():
            from nova.compute import provider_tree as ptree
            pt = ptree.ProviderTree()
            pt.new_root(node, str(uuid.uuid4()))
            d.update_provider_tree(pt, node)
            return pt.data(node).inventory
        step("update_provider_tree", provider_tree,
             lambda r: {"VCPU", "MEMORY_MB", "DISK_GB"} <= set(r))
        step("power_off", lambda: d.power_off(inst))
        step("get_info (off)", lambda: d.get_info(inst).state, lambda r: r == power_state.SHUTDOWN)
        step("power_on", lambda: d.power_on(ctx, inst, []))
        step("get_info (on)", lambda: d.get_info(inst).state, lambda r: r == power_state.RUNNING)
        step("reboot hard", lambda: d.reboot(ctx, inst, [], "HARD"))
        step("reboot soft", lambda: d.reboot(ctx, inst, [], "SOFT"))
        step("destroy", lambda: d.destroy(ctx, inst, [], None))
        step("list_instances (destroyed)", lambda: d.list_instances(), lambda r: inst.uuid not in r)
        step("FindAllByUuid (destroyed)", lambda: session._call_method(
            session.vim, "FindAllByUuid", session.vim.service_content.searchIndex,
            uuid=inst.uuid, vmSearch=True, instanceUuid=True), lambda r: not r)


if __name__ == "__main__":
    main()
