"""The state store: SQLAlchemy, SQLite by default, any SQLAlchemy URL works.

This module opens the database and keeps inventory snapshots. What else is
stored has a module each, opened on a :class:`StateStore`: plans and the
apply journal (:mod:`.journal`), the reconciler's audit log (:mod:`.audit`),
its drift queue (:mod:`.drift_queue`) and records cache (:mod:`.records_cache`).

An inventory snapshot is stored whole, as its versioned JSON document, with a
few summary columns for listing. Snapshots are immutable: a plan records the
id of the snapshot it was made from, so ``apply`` can tell when it is stale.

A SQLite store is private to its user, whatever the umask: the directories
os-onboard creates for it are 0700 and the database file is created 0600
before SQLite opens it; SQLite gives its ``-wal``/``-shm``/``-journal`` files
the database file's mode, and apply's lock beside it uses
:func:`private_file` too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, String, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.inventory import Inventory, dump_inventory, load_inventory
from os_onboard.state.base import BIG_TEXT, Base

LOG = logging.getLogger(__name__)


def default_url() -> str:
    """``$OS_ONBOARD_STATE_URL``, else a SQLite file in the user's state dir."""
    url = os.environ.get("OS_ONBOARD_STATE_URL")
    if url:
        return url
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return f"sqlite:///{base / 'os-onboard' / 'state.db'}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (query string dropped); None otherwise."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (umask-independent).

    Directories that already exist are left as they are: they are not ours.
    """
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode passed through the umask


def private_file(path: Path, flags: int = os.O_RDWR) -> int:
    """Open ``path`` (creating it and its directory) as a file only its owner can read.

    A new file is 0600 whatever the umask; an existing one of ours that
    group or others could read is narrowed to 0600 (see :func:`narrow`).
    Returns the file descriptor.
    """
    private_dir(path.parent)
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    narrow(path, fd)
    return fd


def narrow(path: Path, fd: int | None = None) -> None:
    """Make a file of ours 0600 if it is not (umask-independent).

    Files of other users are left alone; a chmod that fails (a read-only
    file system) is logged, not raised: the file was usable before.
    """
    try:
        info = os.fstat(fd) if fd is not None else os.stat(path)
        if stat.S_IMODE(info.st_mode) == 0o600 or info.st_uid != os.geteuid():
            return
        if fd is not None:
            os.fchmod(fd, 0o600)
        else:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        return
    except OSError as exc:
        LOG.warning("%s: cannot make it private (0600): %s", path, exc.strerror)
        return
    if stat.S_IMODE(info.st_mode) & 0o077:
        LOG.info("%s: mode narrowed from %o to 0600", path, stat.S_IMODE(info.st_mode))


def private_sqlite(path: Path) -> None:
    """Create a SQLite database file 0600 before SQLite opens it.

    SQLite itself would create it 0644 less the umask; its ``-wal``, ``-shm``
    and ``-journal`` files take the database file's mode, so they are 0600
    too. An existing store of ours (older versions made it 0644) and its
    companions are narrowed; one owned by another user is left to SQLite.
    """
    if not path.exists():
        private_dir(path.parent)
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # os.open's mode passed through the umask
            finally:
                os.close(fd)
    for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        narrow(file)


class _Snapshot(Base):
    __tablename__ = "inventory_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    schema_version: Mapped[str] = mapped_column(String(16))
    hosts: Mapped[int] = mapped_column(Integer)
    vms: Mapped[int] = mapped_column(Integer)
    problems: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(BIG_TEXT)


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    created_at: datetime
    hosts: int
    vms: int
    problems: int


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit is one write, not several fsyncs.

    A committed step survives the process being killed (the fault apply must
    resume from: kill -9); only an OS crash or power loss may lose the last
    commits, and apply's resume treats a lost "done" like an interrupted step
    (it looks the record up before writing it again). WAL also lets ``watch``
    and the CLI read while apply writes. Measured with bench/adopt: apply
    commits ~9 times per VM (journal steps).
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class StateStore:
    """Access to the state database. Creates the schema on first use."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            path = sqlite_path(self.url)
            if path is not None:
                private_sqlite(path)
            self._engine = create_engine(self.url)
            if self.url.startswith("sqlite:///"):
                event.listen(self._engine, "connect", _sqlite_pragmas)
            # Snapshots only: the journal, audit log, drift queue and records
            # cache create their tables when first opened on this store.
            Base.metadata.create_all(self._engine, tables=[_Snapshot.__table__])
        except (SQLAlchemyError, OSError) as exc:
            raise StateStoreError(f"cannot open state store {self.url}: {exc}") from exc

    @property
    def engine(self) -> Any:
        return self._engine

    def save_snapshot(self, inventory: Inventory) -> int:
        row = _Snapshot(
            created_at=inventory.created_at,
            schema_version=inventory.schema_version,
            hosts=len(inventory.hosts),
            vms=sum(len(h.vms) for h in inventory.hosts),
            problems=len(inventory.problems),
            document=dump_inventory(inventory),
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(row)
                session.flush()
                return row.id
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save snapshot: {exc}") from exc

    def list_snapshots(self, limit: int = 50) -> list[SnapshotInfo]:
        query = (select(_Snapshot.id, _Snapshot.created_at, _Snapshot.hosts, _Snapshot.vms,
                        _Snapshot.problems).order_by(_Snapshot.id.desc()).limit(limit))
        try:
            with Session(self._engine) as session:
                return [SnapshotInfo(*row) for row in session.execute(query)]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot list snapshots: {exc}") from exc

    def load_snapshot(self, snapshot_id: int | None = None) -> tuple[int, Inventory]:
        """Load one snapshot (the newest when ``snapshot_id`` is None).

        :raises StateStoreError: no such snapshot.
        """
        query = select(_Snapshot.id, _Snapshot.document)
        query = (query.where(_Snapshot.id == snapshot_id) if snapshot_id is not None
                 else query.order_by(_Snapshot.id.desc()).limit(1))
        try:
            with Session(self._engine) as session:
                row = session.execute(query).first()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read snapshot: {exc}") from exc
        if row is None:
            which = f"snapshot {snapshot_id}" if snapshot_id is not None else "any snapshot"
            raise StateStoreError(f"the state store has no {which}; run 'os-onboard discover'")
        return row[0], load_inventory(row[1])
