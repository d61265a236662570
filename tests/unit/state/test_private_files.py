"""The state store and apply's lock are private: files 0600, new directories 0700.

Whatever the umask: each case runs under 022 (the usual), 002 (a shared
group) and 000 (nothing masked), where SQLite alone would make the store
0644, 0664 and 0644 and its WAL files the same.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from os_onboard.apply.lock import apply_lock
from os_onboard.inventory import Inventory
from os_onboard.state.audit import AuditLog
from os_onboard.state.store import StateStore, private_dir, sqlite_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask022", "umask002", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_store_file_wal_shm_and_new_directories(tmp_path, umask):
    db = tmp_path / "a" / "b" / "state.db"
    store = StateStore(f"sqlite:///{db}")
    store.save_snapshot(Inventory(hosts=[]))  # a write: the -wal and -shm files exist now
    AuditLog(store)  # another module's tables, same file
    files = [db, db.with_name("state.db-wal"), db.with_name("state.db-shm")]
    assert all(f.exists() for f in files)
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(db.parent) == 0o700 and _mode(db.parent.parent) == 0o700
    store.engine.dispose()


def test_existing_directory_is_not_changed(tmp_path, umask):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    StateStore(f"sqlite:///{shared}/state.db").engine.dispose()
    assert _mode(shared) == 0o755
    assert _mode(shared / "state.db") == 0o600


def test_an_older_world_readable_store_is_narrowed(tmp_path):
    db = tmp_path / "state.db"
    StateStore(f"sqlite:///{db}").save_snapshot(Inventory(hosts=[]))
    for f in (db, db.with_name("state.db-wal"), db.with_name("state.db-shm")):
        f.chmod(0o644)
    StateStore(f"sqlite:///{db}")
    assert _mode(db) == 0o600
    assert _mode(db.with_name("state.db-wal")) == 0o600
    assert _mode(db.with_name("state.db-shm")) == 0o600


def test_apply_lock_beside_the_store(tmp_path, umask):
    db = tmp_path / "new" / "state.db"
    with apply_lock(f"sqlite:///{db}"):
        lock = db.with_name("state.db.apply.lock")
        assert _mode(lock) == 0o600
        assert _mode(lock.parent) == 0o700
        assert lock.read_text() == f"pid {os.getpid()}\n"


def test_apply_lock_of_a_server_store_in_the_state_dir(tmp_path, monkeypatch, umask):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    with apply_lock("mysql+pymysql://onboard@db.example.com/onboard"):
        lock = tmp_path / "xdg" / "os-onboard" / "apply.lock"
        assert _mode(lock) == 0o600
        assert _mode(lock.parent) == 0o700 and _mode(lock.parent.parent) == 0o700


def test_an_older_lock_file_is_narrowed(tmp_path):
    lock = tmp_path / "state.db.apply.lock"
    lock.write_text("pid 1\n")
    lock.chmod(0o644)
    with apply_lock(f"sqlite:///{tmp_path}/state.db"):
        assert _mode(lock) == 0o600


def test_private_dir_creates_every_missing_parent_0700(tmp_path, umask):
    private_dir(tmp_path / "x" / "y" / "z")
    for d in ("x", "x/y", "x/y/z"):
        assert _mode(tmp_path / d) == 0o700


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:////var/lib/x/state.db", "/var/lib/x/state.db"),
    ("sqlite:///rel/state.db?timeout=5", "rel/state.db"),
    ("sqlite:///:memory:", None),
    ("sqlite://", None),
    ("postgresql://u@h/db", None),
])
def test_sqlite_path(url, path):
    assert sqlite_path(url) == (Path(path) if path else None)
