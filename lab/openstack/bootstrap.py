"""Idempotent API-side set-up of the lab's OpenStack (run by lab/lib/openstack.sh).

    python bootstrap.py clouds      write our clouds to /etc/openstack/clouds.yaml
    python bootstrap.py catalog     projects, users, roles, services, endpoints
    python bootstrap.py resources   provider network + subnet, volume type
    python bootstrap.py vcenter     the VMware computes' aggregate/AZ, network, image, flavor

Each phase creates only what is missing, so a re-run is cheap and harmless.
Settings come from the environment (LAB_OS_*, set by openstack.sh).
"""

from __future__ import annotations

import os
import sys

import yaml

E = os.environ
REGION = E["LAB_OS_REGION"]
KEYSTONE = E["LAB_OS_KEYSTONE_URL"]
HOST = E["LAB_OS_API_HOST"]
MARK = "# os-onboard lab: clouds 'lab' and 'lab-admin' are written by lab/lib/openstack.sh\n"

SERVICES = [  # name, type, url (public and internal)
    ("nova", "compute", f"http://{HOST}:8774/v2.1"),
    ("placement", "placement", f"http://{HOST}:8778"),
    ("glance", "image", f"http://{HOST}:9292"),
    ("neutron", "network", f"http://{HOST}:9696"),
    ("cinderv3", "volumev3", f"http://{HOST}:8776/v3"),
    ("cinder", "block-storage", f"http://{HOST}:8776/v3"),
]
SERVICE_USERS = ["nova", "placement", "glance", "neutron", "cinder"]


def log(msg: str) -> None:
    print(f"bootstrap: {msg}", flush=True)


def cloud_entry(user: str, password: str, project: str) -> dict:
    return {
        "auth": {
            "auth_url": KEYSTONE,
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": REGION,
        "identity_api_version": 3,
        "interface": "public",
    }


def clouds() -> None:
    path = E["LAB_OS_CLOUDS_YAML"]
    data: dict = {}
    if os.path.exists(path):
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    data.setdefault("clouds", {})
    data["clouds"]["lab-admin"] = cloud_entry("admin", E["LAB_OS_ADMIN_PASSWORD"], "admin")
    data["clouds"]["lab"] = cloud_entry("demo", E["LAB_OS_DEMO_PASSWORD"], "demo")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(MARK)
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=True)
    os.replace(tmp, path)
    log(f"wrote clouds 'lab' and 'lab-admin' to {path}")


def connect():
    import openstack

    return openstack.connect(cloud="lab-admin")


def catalog() -> None:
    conn = connect()
    idc = conn.identity
    domain = idc.find_domain("default") or idc.find_domain("Default")
    roles = {}
    for name in ("admin", "member", "reader", "service"):
        roles[name] = idc.find_role(name) or idc.create_role(name=name)
    projects = {}
    for name in ("service", "demo"):
        projects[name] = idc.find_project(name, domain_id=domain.id) or idc.create_project(
            name=name, domain_id=domain.id, description=f"os-onboard lab {name} project")

    def user(name: str, password: str):
        found = idc.find_user(name, domain_id=domain.id)
        if found:
            return idc.update_user(found, password=password)
        log(f"user {name}")
        return idc.create_user(name=name, password=password, domain_id=domain.id)

    for name in SERVICE_USERS:
        u = user(name, E["LAB_OS_SERVICE_PASSWORD"])
        for role in ("admin", "service"):
            idc.assign_project_role_to_user(projects["service"], u, roles[role])
    demo = user("demo", E["LAB_OS_DEMO_PASSWORD"])
    for role in ("member", "reader"):
        idc.assign_project_role_to_user(projects["demo"], demo, roles[role])

    for name, stype, url in SERVICES:
        svc = next(iter(idc.services(type=stype)), None)
        if svc is None:
            log(f"service {name} ({stype})")
            svc = idc.create_service(name=name, type=stype, enabled=True)
        have = {(ep.interface, ep.url) for ep in idc.endpoints(service_id=svc.id)}
        for interface in ("public", "internal"):
            if (interface, url) not in have:
                idc.create_endpoint(service_id=svc.id, interface=interface, url=url,
                                    region_id=REGION, enabled=True)
    log("catalog complete")




def resources() -> None:
    conn = connect()
    net_name = E["LAB_OS_PROVIDER_NETWORK"]
    prefix = E["LAB_OS_NET_PREFIX"]
    net = conn.network.find_network(net_name)
    if net is None:
        log(f"provider network {net_name} (flat, {E['LAB_OS_PHYSNET']} -> {E['LAB_OS_BRIDGE']})")
        net = conn.network.create_network(
            name=net_name, shared=True, provider_network_type="flat",
            provider_physical_network=E["LAB_OS_PHYSNET"],
            description=f"the lab's legacy network (bridge {E['LAB_OS_BRIDGE']})")
    sub_name = E["LAB_OS_PROVIDER_SUBNET"]
    if conn.network.find_subnet(sub_name, network_id=net.id) is None:
        log(f"subnet {sub_name} ({prefix}.0/24, no DHCP: libvirt's dnsmasq serves it)")
        conn.network.create_subnet(
            name=sub_name, network_id=net.id, ip_version=4, cidr=f"{prefix}.0/24",
            gateway_ip=f"{prefix}.1", is_dhcp_enabled=False,
            # dnsmasq leases .100-.199; Neutron allocates outside them, while
            # adopted ports take their guest's address explicitly.
            allocation_pools=[{"start": f"{prefix}.200", "end": f"{prefix}.250"}])
    # One volume type per Cinder backend (comma separated: ceph-legacy, vmdk), same name.
    for backend in filter(None, E.get("LAB_OS_CINDER_BACKEND", "").split(",")):
        bs = conn.block_storage
        vtype = bs.find_type(backend)
        if vtype is None:
            log(f"volume type {backend}")
            vtype = bs.create_type(name=backend, extra_specs={"volume_backend_name": backend})
    # The admin project receives every volume Cinder manages for an adoption before
    # its transfer to the VM's project; Cinder's usage counter of it drifts above the
    # real count over many adopt/unmanage cycles (seen: 10 counted, 1 real, and
    # `cinder-manage quota sync` reported the fix without keeping it), and Cinder's
    # default of 10 volumes then refuses manage. The lab's admin project has no limit.
    admin = conn.identity.find_project("admin")
    if admin is not None:
        quota = conn.block_storage.get_quota_set(admin.id)
        if (quota.volumes, quota.gigabytes) != (-1, -1):
            log("block storage quota of project admin: no limit on volumes and gigabytes")
            conn.block_storage.update_quota_set(quota, volumes=-1, gigabytes=-1)
    log("resources complete")


def vcenter() -> None:
    """The VMware computes' side (lab/lib/vcenter.sh): aggregate + AZ fenced by a
    required trait, the vc network, a streamOptimized VMDK image and a flavor."""
    conn = connect()
    trait = E["LAB_OS_VC_TRAIT"]
    fence = {f"trait:{trait}": "required"}
    az = E["LAB_OS_VC_AZ"]
    hosts = [h for h in E["LAB_OS_VC_HOSTS"].split(",") if h]
    compute = conn.compute
    agg = next((a for a in compute.aggregates() if a.name == az), None)
    if agg is None:
        log(f"aggregate {az} (availability zone {az}, {fence})")
        agg = compute.create_aggregate(name=az, availability_zone=az)
    if agg.availability_zone != az or any((agg.metadata or {}).get(k) != v
                                          for k, v in fence.items()):
        agg = compute.set_aggregate_metadata(agg, {"availability_zone": az, **fence})
    for host in hosts:
        if host not in (agg.hosts or []):
            log(f"aggregate {az}: host {host}")
            # Nova mirrors the membership into Placement (the isolation filter's input).
            agg = compute.add_host_to_aggregate(agg, host)

    net_name = E["LAB_OS_VC_NETWORK"]
    net = conn.network.find_network(net_name)
    if net is None:
        log(f"network {net_name} (flat, {E['LAB_OS_VC_PHYSNET']}: a vSphere port group)")
        net = conn.network.create_network(
            name=net_name, shared=True, provider_network_type="flat",
            provider_physical_network=E["LAB_OS_VC_PHYSNET"],
            description="the lab vCenter's network (ports bound as dvs on the VMware computes)")
    sub_name = f"{net_name}-v4"
    cidr = E["LAB_OS_VC_CIDR"]
    # Nova's servers get .2-.199; .200 and up are the legacy VMs' static addresses
    # (lab/vsphere/legacy.go), as an estate's own addresses sit outside OpenStack's pool.
    prefix = cidr.rsplit(".", 1)[0]
    pools = [{"start": f"{prefix}.2", "end": f"{prefix}.199"}]
    subnet = conn.network.find_subnet(sub_name, network_id=net.id)
    if subnet is None:
        log(f"subnet {sub_name} ({cidr}, pool {pools[0]['start']}-{pools[0]['end']}, no DHCP: "
            "nothing serves it)")
        conn.network.create_subnet(name=sub_name, network_id=net.id, ip_version=4, cidr=cidr,
                                   is_dhcp_enabled=False, allocation_pools=pools)
    elif subnet.allocation_pools != pools:
        log(f"subnet {sub_name}: allocation pool {pools[0]['start']}-{pools[0]['end']}")
        conn.network.update_subnet(subnet, allocation_pools=pools)

    image_name = E["LAB_OS_VC_IMAGE"]
    props = {"vmware_disktype": "streamOptimized", "vmware_adaptertype": "lsiLogic",
             "hypervisor_type": "vmware", **fence}
    image = conn.image.find_image(image_name)
    if image is not None and image.status != "active":
        log(f"image {image_name} is {image.status}: replacing it")
        conn.image.delete_image(image)
        image = None
    if image is None:
        log(f"image {image_name} (vmdk, streamOptimized, {E['LAB_OS_VC_IMAGE_FILE']})")
        conn.image.create_image(
            name=image_name, filename=E["LAB_OS_VC_IMAGE_FILE"], disk_format="vmdk",
            container_format="bare", visibility="public", wait=True, allow_duplicates=True,
            **props)

    flavor_name = E["LAB_OS_VC_FLAVOR"]
    flavor = compute.find_flavor(flavor_name)
    if flavor is None:
        # root disk 0: the simulator has no ExtendVirtualDisk_Task (the image's own size is used).
        log(f"flavor {flavor_name} (1 vCPU, 128 MiB, disk 0, {fence})")
        flavor = compute.create_flavor(name=flavor_name, ram=128, vcpus=1, disk=0,
                                       is_public=True)
    specs = compute.fetch_flavor_extra_specs(flavor).extra_specs or {}
    if any(specs.get(k) != v for k, v in fence.items()):
        compute.create_flavor_extra_specs(flavor, fence)
    log(f"vcenter complete (AZ {az}: {', '.join(hosts)})")


def main() -> None:
    for phase in sys.argv[1:]:
        {"clouds": clouds, "catalog": catalog, "resources": resources,
         "vcenter": vcenter}[phase]()


if __name__ == "__main__":
    main()
