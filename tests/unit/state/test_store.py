import json

import pytest

from os_onboard.discovery.runner import discover_hosts
from os_onboard.exceptions import InventoryError, StateStoreError
from os_onboard.inventory import dump_inventory, load_inventory
from os_onboard.state import StateStore


def test_snapshots_round_trip(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/sub/state.db")
    inventory = discover_hosts(["test:///default"])
    first = store.save_snapshot(inventory)
    second = store.save_snapshot(inventory)
    assert second == first + 1
    snapshot_id, loaded = store.load_snapshot()
    assert snapshot_id == second
    assert loaded == inventory
    assert [s.id for s in store.list_snapshots()] == [second, first]
    assert store.list_snapshots()[0].vms == 1


def test_missing_snapshot_is_a_clear_error(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    with pytest.raises(StateStoreError, match="run 'os-onboard discover'"):
        store.load_snapshot()
    with pytest.raises(StateStoreError, match="no snapshot 7"):
        store.load_snapshot(7)


def test_unusable_store_url_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateStoreError, match="cannot open state store"):
        StateStore(f"sqlite:///{blocker}/state.db")


def test_inventory_documents_are_versioned():
    doc = json.loads(dump_inventory(discover_hosts(["test:///default"])))
    assert doc["schema_version"] == "1.0"
    doc["schema_version"] = "2.0"
    with pytest.raises(InventoryError, match=r"schema version 2\.0 is not supported"):
        load_inventory(json.dumps(doc))
    doc["schema_version"] = "1.3"
    doc["hosts"][0]["surprise"] = True
    with pytest.raises(InventoryError, match="does not match the schema"):
        load_inventory(json.dumps(doc))
    with pytest.raises(InventoryError, match="not valid JSON"):
        load_inventory("{")
