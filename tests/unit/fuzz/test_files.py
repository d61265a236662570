"""Hostile operator files and saved documents: a hosts file and a mapping file load or
raise ConfigError only (one clear line, nothing written); an inventory document loads or
raises InventoryError only; YAML bombs and oversized files are refused unread."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from os_onboard.cli.main import main
from os_onboard.discovery.targets import MAX_HOSTS, load_hosts_file
from os_onboard.exceptions import ConfigError, InventoryError
from os_onboard.inventory import dump_inventory, load_inventory
from os_onboard.inventory.models import Inventory
from os_onboard.mapping.model import Mapping, load_mapping
from os_onboard.plan.model import Plan
from os_onboard.yamlfile import MAX_YAML_BYTES, MAX_YAML_NODES
from tests.unit.fuzz.counts import ran
from tests.unit.fuzz.strategies import VALUES, mutated
from tests.unit.mapping.test_mapping import GOOD

HOSTS = ["hosts:\n  - qemu+ssh://root@hv01.example.com/system\n"
         "  - uri: qemu+tls://hv02.example.com/system\n    group: rack-2\n",
         "- test:///default\n- vsphere://u@vc/?insecure=1\n",
         "hosts: &h [test:///a, test:///b]\nother: *h\n"]
MAPPINGS = [GOOD, GOOD + "flavors: {policy: reuse-only, prefix: x}\nlocal_disks: keep\n"
            "policies:\n  - hosts: 'hv-*'\n    policy: tolerate\n    kinds: {vm-gone: report}\n"]

# random YAML structure, with the keys the loaders look for
KEYS = st.sampled_from(["hosts", "uri", "group", "owners", "match", "project", "user",
                        "networks", "neutron_network", "backends", "name", "driver",
                        "cinder_host", "options", "flavors", "policy", "policies", "kinds",
                        "local_disks", "vlan", "create", "cidr", "host", "metadata"])
TREES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | VALUES,
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)
YAML_TEXTS = st.one_of(TREES.map(lambda t: yaml.safe_dump(t, allow_unicode=True)),
                       mutated(HOSTS + MAPPINGS))

KIND_HOSTS = "hosts file (YAML)"
KIND_MAPPING = "mapping file (YAML)"
KIND_INVENTORY = "inventory document (JSON)"
KIND_PLAN = "plan document (JSON)"


def _write(text: str) -> Path:
    with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as handle:
        handle.write(text.encode("utf-8", "surrogatepass"))
    return Path(handle.name)


@pytest.mark.fuzz(KIND_HOSTS)
@settings(max_examples=400)
@given(YAML_TEXTS)
def test_a_hosts_file_loads_or_is_a_config_error(text):
    ran(KIND_HOSTS)
    path = _write(text)
    try:
        uris = load_hosts_file(path)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).split(":")[0]
        return
    finally:
        path.unlink()
    assert uris and all(isinstance(u, str) and "://" in u for u in uris)


@pytest.mark.fuzz(KIND_MAPPING)
@settings(max_examples=400)
@given(YAML_TEXTS)
def test_a_mapping_file_loads_or_is_a_config_error(text):
    ran(KIND_MAPPING)
    path = _write(text)
    try:
        mapping = load_mapping(path)
    except ConfigError as exc:
        assert str(exc).startswith(("mapping file", "cannot read mapping file"))
        return
    finally:
        path.unlink()
    assert isinstance(mapping, Mapping)
    mapping.model_dump_json()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.mark.fuzz(KIND_HOSTS)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated(HOSTS).filter(lambda t: "test:///" not in t))
def test_discover_with_a_bad_hosts_file_writes_nothing(state_dir, capsys, text):
    ran(KIND_HOSTS)
    path = _write(text)
    db = state_dir / "state.db"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        load_hosts_file(path)
    except ConfigError:
        # cliff adds a console handler to the root logger per run; start without
        # the ones earlier tests left (their streams are closed), restore them after
        root.handlers[:] = []
        code = main(["discover", "--hosts", str(path), "--state-url", f"sqlite:///{db}"])
        _, err = capsys.readouterr()
        assert code != 0 and "Traceback" not in err
        assert not db.exists()  # nothing written: no state store, no snapshot
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        path.unlink()


def test_yaml_bombs_and_oversized_files_are_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                     strict=True))
    (tmp_path / "bomb.yaml").write_text(bomb + "hosts: *i\n")
    with pytest.raises(ConfigError, match=f"expands to more than {MAX_YAML_NODES:,} values"):
        load_hosts_file(tmp_path / "bomb.yaml")
    (tmp_path / "loop.yaml").write_text("owners: &o [*o]\n")
    with pytest.raises(ConfigError, match="alias that contains itself"):
        load_mapping(tmp_path / "loop.yaml")
    (tmp_path / "deep.yaml").write_text("hosts: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match=r"nested too deeply|not valid YAML"):
        load_hosts_file(tmp_path / "deep.yaml")
    (tmp_path / "big.yaml").write_text("hosts:\n" + "  - test:///default\n" * (
        MAX_YAML_BYTES // 20 + 1))
    with pytest.raises(ConfigError, match="over the limit of 8,388,608 bytes: refused unread"):
        load_hosts_file(tmp_path / "big.yaml")
    (tmp_path / "many.yaml").write_text("hosts:\n" + "  - test:///h{}\n" * (MAX_HOSTS + 1))
    with pytest.raises(ConfigError, match="lists 10,001 hosts, over the limit of 10,000"):
        load_hosts_file(tmp_path / "many.yaml")
    (tmp_path / "date.yaml").write_text("owners: [{project: 2024-13-45}]\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_mapping(tmp_path / "date.yaml")
    (tmp_path / "latin1.yaml").write_bytes("hosts: [test:///caf\xe9]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_hosts_file(tmp_path / "latin1.yaml")


def test_a_file_that_never_ends_is_read_only_up_to_the_limit():
    with pytest.raises(ConfigError, match="over the limit"):
        load_mapping("/dev/zero")


def _inventory_seed() -> str:
    from os_onboard.drivers.libvirt.inventory import LibvirtInventory
    return dump_inventory(Inventory(hosts=[LibvirtInventory("test:///default").discover()]))


INVENTORIES = [_inventory_seed()]
JSON_TREES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | VALUES,
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.sampled_from(
                              ["schema_version", "hosts", "host", "vms", "uri", "kind", "name",
                               "uuid", "problems", "disks", "nics", "conflicts", "status"]),
                              inner, max_size=4), max_leaves=12)


@pytest.mark.fuzz(KIND_INVENTORY)
@settings(max_examples=300)
@given(st.one_of(mutated(INVENTORIES), JSON_TREES.map(json.dumps)))
def test_an_inventory_document_loads_or_is_an_inventory_error(text):
    ran(KIND_INVENTORY)
    try:
        load_inventory(text)
    except InventoryError as exc:
        assert str(exc)


PLAN = Plan(snapshot_id=1, cloud_fingerprint="f", vms=[{
    "uuid": "u", "name": "vm", "host_uri": "test:///default", "host": "h", "power_state":
    "running", "op": "+", "steps": [{"key": "port:52:54:00:00:00:01", "op": "+", "summary":
                                     "port", "kind": "port", "params": {"mac": "x"}}]}])


@pytest.mark.fuzz(KIND_PLAN)
@settings(max_examples=200)
@given(st.one_of(mutated([PLAN.model_dump_json()]), JSON_TREES.map(json.dumps)))
def test_a_plan_document_loads_or_is_refused_by_its_schema(text):
    # Plans are os-onboard's own documents (the state store); the journal reads
    # them with Plan.model_validate_json, whose only refusal is pydantic's.
    ran(KIND_PLAN)
    try:
        Plan.model_validate_json(text)
    except pydantic.ValidationError as exc:
        assert str(exc)
