"""The registry of managed hosts and the Alembic migrations that made its table."""

import sqlite3

import pytest
from sqlalchemy import inspect

from os_onboard.exceptions import ConfigError
from os_onboard.inventory import Inventory
from os_onboard.state import StateStore, migrations
from os_onboard.state.hosts import HostRegistry
from os_onboard.state.journal import Journal
from os_onboard.state.statuses import StepStatus


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path}/s.db")


def test_add_list_show_remove(store):
    reg = HostRegistry(store)
    a = reg.add("qemu+ssh://root@hv1/system", groups=["rack1", "gold", "rack1"],
                credentials_ref="env:HV1_PW")
    b = reg.add("vsphere://admin@vc.example.com/", name="vc", credentials_ref="config:vc")
    assert (a.name, a.groups) == ("hv1", ("gold", "rack1"))
    assert [h.name for h in reg.list()] == ["hv1", "vc"]
    assert [h.name for h in reg.list(group="gold")] == ["hv1"]
    assert reg.get("vc") == b and reg.get(b.uri) == b and reg.get(str(b.id)) == b
    assert reg.get("nope") is None
    assert reg.remove("hv1") == a
    assert [h.name for h in HostRegistry(store).list()] == ["vc"]
    with pytest.raises(ConfigError, match="no registered host"):
        reg.remove("hv1")


def test_duplicates_are_refused(store):
    reg = HostRegistry(store)
    reg.add("qemu+ssh://hv1/system")
    with pytest.raises(ConfigError, match="registered already"):
        reg.add("qemu+ssh://hv1/system", name="other")
    with pytest.raises(ConfigError, match="registered already"):
        reg.add("qemu+tcp://hv1/system")  # same default name


@pytest.mark.parametrize("ref", ["hunter2", "env:", "env:1X", "file:relative", "pw:x"])
def test_a_secret_is_never_taken_for_a_reference(store, ref):
    with pytest.raises(ConfigError) as info:
        HostRegistry(store).add("qemu+ssh://hv1/system", credentials_ref=ref)
    assert "not repeated" in str(info.value) and "hunter2" not in str(info.value)


def test_a_password_in_the_uri_is_refused_and_not_echoed(store):
    with pytest.raises(ConfigError) as info:
        HostRegistry(store).add("qemu+ssh://root:s3cr3t@hv1/system")
    assert "s3cr3t" not in str(info.value) and "root@hv1" in str(info.value)
    assert HostRegistry(store).list() == []


def test_bad_group_labels_are_refused(store):
    with pytest.raises(ConfigError, match="group labels"):
        HostRegistry(store).add("qemu+ssh://hv1/system", groups=["a b"])


def _legacy_store(path):
    """A store as versions before migrations left it: tables, rows, no alembic_version."""
    store = StateStore(f"sqlite:///{path}")
    from datetime import UTC, datetime
    snap = store.save_snapshot(Inventory(created_at=datetime.now(UTC), hosts=[]))
    Journal(store).record(1, "vm", "port", StepStatus.DONE, {"id": "p"})
    with sqlite3.connect(path) as conn:  # create_all() made it: those versions did not
        conn.execute("drop table managed_hosts")
        conn.execute("drop table if exists jobs")
        conn.execute("drop table if exists job_items")
    return snap


def test_an_existing_store_is_upgraded_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    snap = _legacy_store(path)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master")}
    assert "alembic_version" not in tables and "managed_hosts" not in tables
    store = StateStore(f"sqlite:///{path}")
    assert migrations.current(store.engine) is None
    HostRegistry(store).add("qemu:///system")
    assert migrations.current(store.engine) == migrations.HEAD
    assert store.load_snapshot()[0] == snap
    assert [k for k in Journal(store).steps(1)] == [("vm", "port")]
    assert [h.uri for h in HostRegistry(StateStore(f"sqlite:///{path}")).list()] == [
        "qemu:///system"]


def test_upgrade_when_another_holder_made_the_table_first(store):
    # DriftQueue & co. call create_all() on the whole declarative base.
    from os_onboard.state.base import Base
    Base.metadata.create_all(store.engine)
    assert inspect(store.engine).has_table("managed_hosts")
    assert migrations.upgrade(store.engine) == migrations.HEAD
    HostRegistry(store).add("qemu:///system")


def test_head_is_alembics_head_and_the_table_matches_the_model(store):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations.VERSIONS.parent),
                             version_locations=[str(migrations.VERSIONS)])
    assert script.get_current_head() == migrations.HEAD
    migrations.upgrade(store.engine)
    from os_onboard.state.hosts import _HostRecord
    made = {c["name"] for c in inspect(store.engine).get_columns("managed_hosts")}
    assert made == {c.name for c in _HostRecord.__table__.columns}
