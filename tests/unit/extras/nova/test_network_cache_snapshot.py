"""NeutronSnapshot (extras/nova): Nova's refresh questions answered from one bulk read.

The snapshot's answering is pure logic over Neutron's dict shapes; the client
here returns canned Neutron answers and counts what reaches it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "extras" / "nova"))

from os_onboard_nova.network_cache import NeutronSnapshot

VM1, VM2, OTHER = "vm-1", "vm-2", "vm-x"


def port(pid, device, net="net-1", subnet="sub-1", ip="10.0.0.5", owner="compute:nova"):
    return {"id": pid, "device_id": device, "network_id": net, "tenant_id": "p1",
            "project_id": "p1", "device_owner": owner, "mac_address": f"fa:16:3e:00:00:{pid[-1]}",
            "fixed_ips": [{"subnet_id": subnet, "ip_address": ip}]}


class Neutron:
    """Canned answers, filtered the way Neutron filters (equality, lists = any of)."""

    def __init__(self):
        self.data = {
            "ports": [port("p1", VM1), port("p2", VM1, ip="10.0.0.6"), port("p3", VM2),
                      port("p9", OTHER), port("dhcp", "dhcp-1", owner="network:dhcp",
                                                 ip="10.0.0.2")],
            "networks": [{"id": "net-1", "name": "lab", "tenant_id": "p0", "mtu": 1500,
                          "provider:physical_network": "physnet1",
                          "provider:network_type": "flat"},
                         {"id": "net-2", "name": "other", "tenant_id": "p0"}],
            "subnets": [{"id": "sub-1", "network_id": "net-1", "cidr": "10.0.0.0/24"},
                        {"id": "sub-2", "network_id": "net-2", "cidr": "10.1.0.0/24"}],
            "floatingips": [{"id": "fip-1", "port_id": "p2", "fixed_ip_address": "10.0.0.6",
                             "floating_ip_address": "172.24.4.9"}]}
        self.calls = []

    def _list(self, kind, filters):
        self.calls.append((f"list_{kind}", dict(filters)))
        def keep(item):
            return all(item.get(k) in (v if isinstance(v, list) else [v])
                       for k, v in filters.items())
        return {kind: [dict(i) for i in self.data[kind] if keep(i)]}

    def list_ports(self, **f):
        return self._list("ports", f)

    def list_networks(self, **f):
        return self._list("networks", f)

    def list_subnets(self, **f):
        return self._list("subnets", f)

    def list_floatingips(self, **f):
        return self._list("floatingips", f)

    def show_network(self, network, **params):
        self.calls.append(("show_network", network))
        return {"network": next(n for n in self.data["networks"] if n["id"] == network)}

    def list_extensions(self):
        self.calls.append(("list_extensions", {}))
        return {"extensions": []}


def test_one_bulk_read_answers_novas_refresh_questions():
    neutron = Neutron()
    snap = NeutronSnapshot(neutron, [VM1, VM2])
    # one request per kind: the batch's ports, their networks and subnets, the
    # networks' DHCP ports, the ports' floating IPs
    assert [c[0] for c in neutron.calls] == ["list_ports", "list_networks", "list_subnets",
                                             "list_ports", "list_floatingips"]
    assert neutron.calls[0][1] == {"device_id": [VM1, VM2]}
    neutron.calls.clear()

    # what _build_network_info_model and its helpers ask, per instance and port
    ports = snap.list_ports(tenant_id="p1", device_id=VM1)["ports"]
    assert [p["id"] for p in ports] == ["p1", "p2"]
    assert [n["id"] for n in snap.list_networks(id=["net-1"])["networks"]] == ["net-1"]
    assert snap.list_subnets(id=["sub-1"])["subnets"][0]["cidr"] == "10.0.0.0/24"
    dhcp = snap.list_ports(network_id="net-1", device_owner="network:dhcp")["ports"]
    assert [p["id"] for p in dhcp] == ["dhcp"]
    fips = snap.list_floatingips(fixed_ip_address="10.0.0.6", port_id="p2")["floatingips"]
    assert [f["floating_ip_address"] for f in fips] == ["172.24.4.9"]
    assert snap.list_floatingips(fixed_ip_address="10.0.0.5", port_id="p1") == {
        "floatingips": []}
    # _get_physnet_tunneled_info: segments first (none on a single-segment network)
    assert snap.show_network("net-1", fields="segments") == {"network": {}}
    assert snap.show_network("net-1", fields=["provider:physical_network",
                                              "provider:network_type"]) == {
        "network": {"provider:physical_network": "physnet1", "provider:network_type": "flat"}}
    assert neutron.calls == []


def test_questions_beyond_the_snapshot_go_to_neutron():
    neutron = Neutron()
    snap = NeutronSnapshot(neutron, [VM1])
    neutron.calls.clear()
    assert [p["id"] for p in snap.list_ports(device_id=OTHER)["ports"]] == ["p9"]
    assert [n["id"] for n in snap.list_networks(id=["net-2"])["networks"]] == ["net-2"]
    assert snap.list_subnets(id=["sub-1", "sub-2"])["subnets"][1]["id"] == "sub-2"
    assert snap.list_networks(shared=True)["networks"] == []
    snap.list_extensions()  # anything else is the client's
    assert [c[0] for c in neutron.calls] == ["list_ports", "list_networks", "list_subnets",
                                             "list_networks", "list_extensions"]
    assert snap.forwarded == 4


def test_a_batch_without_ports_asks_only_for_ports():
    neutron = Neutron()
    snap = NeutronSnapshot(neutron, ["vm-without-ports"])
    assert [c[0] for c in neutron.calls] == ["list_ports"]
    assert snap.list_ports(device_id="vm-without-ports", tenant_id="p1") == {"ports": []}
