"""Idempotent API-side set-up of the lab's OpenStack (run by lab/lib/openstack.sh).

    python bootstrap.py clouds      write our clouds to /etc/openstack/clouds.yaml
    python bootstrap.py catalog     projects, users, roles, services, endpoints
    python bootstrap.py resources   provider network + subnet, volume type

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
    log("resources complete")


def main() -> None:
    for phase in sys.argv[1:]:
        {"clouds": clouds, "catalog": catalog, "resources": resources}[phase]()


if __name__ == "__main__":
    main()
