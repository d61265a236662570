import pytest

from os_onboard.exceptions import ConfigError
from os_onboard.inventory.models import Nic, PowerState, Vm
from os_onboard.mapping.model import load_mapping

GOOD = """
owners:
  - match: {host: "qemu+ssh://hv01*", name: "web-*"}
    project: web
    user: web-admin
  - match: {metadata: {"http://example.com/cmdb/1": "*team-db*"}}
    project: databases
  - project: legacy
networks:
  - match: {network: onboard-lab}
    neutron_network: onboard-lab
    subnet: onboard-lab-v4
  - match: {bridge: br-prod, vlan: 105}
    neutron_network: prod-105
    create: {physical_network: physnet1, network_type: vlan, segment: 105, cidr: 198.51.5.0/24}
backends:
  - name: ceph-legacy
    cinder_host: lab@ceph-legacy#ceph-legacy
    driver: rbd
    options: {rbd_pool: legacy}
"""


def _vm(name, metadata=None):
    return Vm(uuid="u", name=name, power_state=PowerState.RUNNING, vcpus=1, memory_mib=96,
              metadata=metadata or {})


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(GOOD)
    return load_mapping(path)


def test_owners_first_match_wins(mapping):
    assert mapping.owner_for("qemu+ssh://hv01.example.com/system", _vm("web-3")).project == "web"
    db = _vm("pg1", {"http://example.com/cmdb/1": "<owner>team-db</owner>"})
    assert mapping.owner_for("qemu:///system", db).project == "databases"
    assert mapping.owner_for("qemu+ssh://hv02/system", _vm("web-3")).project == "legacy"


def test_networks_by_libvirt_network_or_bridge_and_vlan(mapping):
    lab = Nic(mac="52:54:00:00:00:01", source_kind="network", network="onboard-lab")
    assert mapping.network_for(lab).subnet == "onboard-lab-v4"
    prod = Nic(mac="52:54:00:00:00:02", source_kind="bridge", bridge="br-prod", vlan=[105])
    rule = mapping.network_for(prod)
    assert (rule.neutron_network, rule.create.segment) == ("prod-105", 105)
    trunk = Nic(mac="52:54:00:00:00:03", source_kind="bridge", bridge="br-prod", vlan=[105, 7])
    assert mapping.network_for(trunk) is None
    assert mapping.backends[0].pool == "ceph-legacy"


@pytest.mark.parametrize("text, message", [
    ("owners: []", "owners: List should have at least 1 item"),
    ("owners: [{project: p, projekt: q}]", "owners.0.projekt: Extra inputs are not permitted"),
    ("owners: [{project: p}]\nnetworks: [{match: {vlan: 5000}, neutron_network: n}]",
     "networks.0.match.vlan"),
    ("owners: [{project: p}]\nnetworks: [{match: {}, neutron_network: n, create: "
     "{physical_network: x, cidr: 10.0.0.1/24}}]", "is not a network address"),
    ("owners: [{project: p}]\nbackends: [{name: a, cinder_host: nohash, driver: rbd}]",
     "is not of the form host@backend#pool"),
    ("owners: [{project: p}]\nbackends: [{name: a, cinder_host: h@b#p, driver: rbd},"
     " {name: a, cinder_host: h@c#p, driver: lvm}]", "repeated: a"),
    ("owners: [", "is not valid YAML"),
])
def test_bad_mapping_files_name_the_field(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"invalid|not valid YAML") as excinfo:
        load_mapping(path)
    assert message in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read mapping file"):
        load_mapping(tmp_path / "absent.yaml")
