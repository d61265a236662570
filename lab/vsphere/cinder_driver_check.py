"""Drive Cinder's VMDK driver and Nova's VMware driver together against the simulator.

Run with the lab's OpenStack venv python (cinder, nova, oslo.vmware installed):

    VCSIM_PASSWORD=... python cinder_driver_check.py --port 18443 [--cluster DC0_C0] [--lazy]

What cinder-volume and nova-compute call for a volume attached to a server,
without their services: Cinder's ``VMwareVcVmdkDriver`` (do_setup,
create_volume, initialize_connection with Nova's connector, delete_volume)
in one worker process and Nova's ``VMwareVCDriver`` (spawn of a 1 MiB flat
VMDK image, Glance mocked; get_volume_connector, attach_volume,
detach_volume, destroy) in another (each reads its own oslo.config), both
over the simulator's https listener (verified with --ca-file, else
insecure). Between the steps the instance VM and the backing are read with
oslo.vmware: the attached disk is the backing's vmdk with the volume id as
uuid, extraConfig["volume-<id>"] holds it, the detach removes the disk, the
delete removes the backing. Nova uploads the image to an ESX host: the
simulator needs -esx-endpoints. One JSON line per step on stdout; exit status
1 at the first failure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
import warnings

warnings.simplefilter("ignore")


def vmware_section(args, password, prefix):
    lines = [f"{prefix}host_ip = {args.host}", f"{prefix}host_port = {args.port}",
             f"{prefix}host_username = {args.user}", f"{prefix}host_password = {password}",
             f"{prefix}api_retry_count = 1", f"{prefix}task_poll_interval = 0.2"]
    lines.append(f"{prefix}ca_file = {args.ca_file}" if args.ca_file
                 else f"{prefix}insecure = True")
    return "\n".join(lines)


def cinder_worker(args, password, tmp):
    from cinder import objects
    from oslo_config import cfg
    objects.register_all()
    from cinder.volume import configuration
    from cinder.volume.drivers.vmware import vmdk
    conf_file = os.path.join(tmp, "cinder.conf")
    with open(conf_file, "w") as f:
        f.write(f"""[vmdk]
volume_backend_name = vmdk
{vmware_section(args, password, "vmware_")}
vmware_cluster_name = {args.cluster}
vmware_lazy_create = {args.lazy}
""")
    cfg.CONF([], project="cinder", default_config_files=[conf_file])
    driver = vmdk.VMwareVcVmdkDriver(
        configuration=configuration.Configuration(vmdk.vmdk_opts, config_group="vmdk"))

    class Volume(dict):
        __getattr__ = dict.__getitem__

    def volume(vid):
        return Volume(id=vid, name=f"volume-{vid}", size=1, volume_type_id=None,
                      project_id="p-check", display_name="check")

    def backing(vid):
        ref = driver.volumeops.get_backing(f"volume-{vid}", vid)
        return None if ref is None else ref.value

    def init(vid, connector):
        info = driver.initialize_connection(volume(vid), connector)
        info["data"] = {k: v if v is None or isinstance(v, (int, dict)) else str(v)
                        for k, v in info["data"].items()}
        return info

    ops = {"setup": lambda: driver.do_setup(None),
           "create": lambda vid: driver.create_volume(volume(vid)),
           "backing": backing,
           "init": init,
           "delete": lambda vid: driver.delete_volume(volume(vid))}
    serve(ops)


def nova_worker(args, password, tmp):
    conf_file = os.path.join(tmp, "nova.conf")
    with open(conf_file, "w") as f:
        f.write(f"""[DEFAULT]
compute_driver = vmwareapi.VMwareVCDriver
transport_url = fake:/
state_path = {tmp}/state
instances_path = {tmp}/state/instances
[oslo_concurrency]
lock_path = {tmp}/lock
[vmware]
{vmware_section(args, password, "")}
cluster_name = {args.cluster}
""")
    import nova.conf
    from nova import objects, rpc
    objects.register_all()
    nova.conf.CONF([], project="nova", default_config_files=[conf_file])
    rpc.init(nova.conf.CONF)
    from unittest import mock

    from nova import context as nctx
    from nova.virt import virtapi
    from nova.virt.vmwareapi import driver, images, vm_util
    from oslo_vmware import vim_util

    d = driver.VMwareVCDriver(virtapi.VirtAPI())
    ctx = nctx.get_admin_context()
    image_id = str(uuid.uuid4())
    data = b"\0" * (1 << 20)
    image = {"id": image_id, "name": "tiny", "size": len(data), "disk_format": "vmdk",
             "container_format": "bare", "status": "active", "min_disk": 0, "min_ram": 0,
             "properties": {"vmware_disktype": "preallocated", "vmware_adaptertype": "lsiLogic"}}
    flavor = objects.Flavor(name="m1.tiny", memory_mb=128, vcpus=1, root_gb=0, ephemeral_gb=0,
                            swap=0, extra_specs={}, flavorid="1", id=1)
    instances = {}
    patches = [mock.patch.object(images.IMAGE_API, "get", return_value=image),
               mock.patch.object(images.IMAGE_API, "download",
                                 side_effect=lambda *a, **k: iter([data])),
               mock.patch.object(objects.Instance, "save")]
    for p in patches:
        p.start()

    def instance(iid):
        if iid not in instances:
            instances[iid] = objects.Instance(
                context=ctx, id=1, uuid=iid, display_name="cinder-check", hostname="cinder-check",
                image_ref=image_id, flavor=flavor, project_id="p-check", user_id="u1", metadata={},
                system_metadata={}, vcpus=1, memory_mb=128, root_gb=0, ephemeral_gb=0,
                vm_state="building", task_state="spawning", power_state=0, node=d._nodename,
                host="vc-host", availability_zone="nova", config_drive="", key_data=None)
        return instances[iid]

    def vm(iid):
        vm_util.vm_ref_cache_delete(iid)
        return vm_util.get_vm_ref(d._session, instance(iid))

    def disks(iid):
        """(file, uuid) of the VM's disks and its extraConfig volume-* entries (in order)."""
        ref = vm(iid)
        s = d._session
        devices = s._call_method(vim_util, "get_object_property", ref,
                                 "config.hardware.device").VirtualDevice
        extra = s._call_method(vim_util, "get_object_property", ref, "config.extraConfig")
        return {"disks": [[dev.backing.fileName, getattr(dev.backing, "uuid", None)]
                          for dev in devices if dev.__class__.__name__ == "VirtualDisk"],
                "volume_keys": [[o.key, o.value] for o in getattr(extra, "OptionValue", [])
                                if o.key.startswith("volume-")]}

    ops = {"setup": lambda: d.init_host("vc-host"),
           "spawn": lambda iid: d.spawn(ctx, instance(iid), objects.ImageMeta.from_dict(image),
                                        [], None, {}, [], None),
           "connector": lambda iid: d.get_volume_connector(instance(iid)),
           "disks": disks,
           "attach": lambda iid, info: d.attach_volume(ctx, info, instance(iid), "/dev/sdb"),
           "detach": lambda iid, info: d.detach_volume(ctx, info, instance(iid), "/dev/sdb"),
           "destroy": lambda iid: d.destroy(ctx, instance(iid), [], None)}
    serve(ops)


def serve(ops):
    """One JSON request a line on stdin ({"op", "args"}), one JSON answer a line on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # drivers' prints stay off the protocol
    for line in sys.stdin:
        req = json.loads(line)
        try:
            answer = {"ok": True, "result": ops[req["op"]](*req.get("args", []))}
        except Exception as e:
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(answer, default=str) + "\n")
        out.flush()


class Worker:
    def __init__(self, side, argv):
        self.proc = subprocess.Popen([sys.executable, __file__, "--side", side, *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self, op, *args):
        self.proc.stdin.write(json.dumps({"op": op, "args": list(args)}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"ok": false, "error": "worker died"}')
        if not answer["ok"]:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def step(name, fn, check=None):
    t0 = time.monotonic()
    try:
        r = fn()
        if check is not None and not check(r):
            raise AssertionError(f"unexpected result: {r!r}")
    except Exception as e:
        print(json.dumps({"step": name, "ok": False, "seconds": round(time.monotonic() - t0, 2),
                          "error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
    print(json.dumps({"step": name, "ok": True, "seconds": round(time.monotonic() - t0, 2),
                      "result": str(r)[:300]}), flush=True)
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="the simulator's https port")
    p.add_argument("--user", default="onboard")
    p.add_argument("--cluster", default="DC0_C0")
    p.add_argument("--ca-file", default="", help="the simulator's certificate (else insecure)")
    p.add_argument("--lazy", action="store_true", help="vmware_lazy_create = true")
    p.add_argument("--side", choices=("cinder", "nova"), help=argparse.SUPPRESS)
    args = p.parse_args()
    password = os.environ["VCSIM_PASSWORD"]
    if args.side:
        import logging
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        tmp = tempfile.mkdtemp(prefix=f"{args.side}-vmdk-check-")
        (cinder_worker if args.side == "cinder" else nova_worker)(args, password, tmp)
        return

    argv = [a for a in sys.argv[1:]]
    cinder, nova = Worker("cinder", argv), Worker("nova", argv)
    try:
        iid, vid = str(uuid.uuid4()), str(uuid.uuid4())
        step("cinder do_setup", lambda: cinder.call("setup"))
        step("nova init_host", lambda: nova.call("setup"))
        step("nova spawn", lambda: nova.call("spawn", iid))
        step("cinder create_volume", lambda: cinder.call("create", vid))
        made = step("backing after create", lambda: cinder.call("backing", vid),
                    lambda r: (r is None) == args.lazy)
        connector = step("nova get_volume_connector", lambda: nova.call("connector", iid),
                         lambda r: r.get("instance"))
        info = step("cinder initialize_connection", lambda: cinder.call("init", vid, connector),
                    lambda r: r["driver_volume_type"] == "vmdk" and r["data"]["volume_id"] == vid)
        if made:
            step("the backing kept", lambda: info["data"]["volume"], lambda r: r == made)
        backing_disks = step("the backing's disk", lambda: nova.call("disks", vid),
                             lambda r: len(r["disks"]) == 1 and r["disks"][0][1] == vid)
        vmdk_path = backing_disks["disks"][0][0]
        before = step("instance disks", lambda: nova.call("disks", iid))
        step("nova attach_volume", lambda: nova.call("attach", iid, info))
        step("instance gained the vmdk", lambda: nova.call("disks", iid),
             lambda r: r["disks"] == before["disks"] + [[vmdk_path, vid]]
             and r["volume_keys"][-1:] == [[f"volume-{vid}", vid]])
        step("nova detach_volume", lambda: nova.call("detach", iid, info))
        step("instance lost the vmdk", lambda: nova.call("disks", iid),
             lambda r: r["disks"] == before["disks"] and r["volume_keys"][-1][1] == "")
        step("backing kept its disk", lambda: nova.call("disks", vid),
             lambda r: r["disks"] == backing_disks["disks"])
        step("cinder delete_volume", lambda: cinder.call("delete", vid))
        step("backing gone", lambda: cinder.call("backing", vid), lambda r: r is None)
        step("nova destroy", lambda: nova.call("destroy", iid))
    finally:
        cinder.close()
        nova.close()


if __name__ == "__main__":
    main()
