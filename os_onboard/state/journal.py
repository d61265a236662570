"""Plans and the apply journal, in the state store.

A plan is saved whole (its JSON document). ``apply`` records every step it
executes, per VM, *before* and *after* the write: ``started`` then ``done``
(with the ids it created) or ``failed`` (with the error). A rerun skips done
steps and re-executes started/failed ones; every executor first looks for the
record it would create, so a kill -9 between the write and the journal
update is not a duplicate. Unmanage marks reverted steps ``reverted``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.plan.model import Plan
from os_onboard.state.store import Base, StateStore

_BIG = Text().with_variant(Text(2**32 - 1), "mysql")


class _Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    snapshot_id: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(_BIG)


class _StepRecord(Base):
    __tablename__ = "apply_steps"
    __table_args__ = (UniqueConstraint("plan_id", "vm_uuid", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(Integer, index=True)
    vm_uuid: Mapped[str] = mapped_column(String(64), index=True)  # "" for shared steps
    key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(Text, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class StepState:
    status: str  # started | done | failed | reverted
    result: dict[str, Any]
    error: str


class Journal:
    """Plans and step records of one state store."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        Base.metadata.create_all(self._engine)

    def _session(self) -> Session:
        return Session(self._engine)

    def save_plan(self, plan: Plan) -> int:
        row = _Plan(created_at=plan.created_at, snapshot_id=plan.snapshot_id,
                    fingerprint=plan.cloud_fingerprint, document=plan.model_dump_json())
        try:
            with self._session() as session, session.begin():
                session.add(row)
                session.flush()
                return row.id
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save plan: {exc}") from exc

    def load_plan(self, plan_id: int | None = None) -> tuple[int, Plan]:
        query = select(_Plan.id, _Plan.document)
        query = (query.where(_Plan.id == plan_id) if plan_id is not None
                 else query.order_by(_Plan.id.desc()).limit(1))
        try:
            with self._session() as session:
                row = session.execute(query).first()
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read plan: {exc}") from exc
        if row is None:
            which = f"plan {plan_id}" if plan_id is not None else "any plan"
            raise StateStoreError(f"the state store has no {which}; run 'os-onboard plan'")
        return row[0], Plan.model_validate_json(row[1])

    def steps(self, plan_id: int) -> dict[tuple[str, str], StepState]:
        query = select(_StepRecord).where(_StepRecord.plan_id == plan_id)
        with self._session() as session:
            return {(r.vm_uuid, r.key): StepState(r.status, json.loads(r.result or "{}"),
                                                  r.error or "")
                    for r in session.scalars(query)}

    def started(self, plan_id: int) -> bool:
        query = select(_StepRecord.id).where(_StepRecord.plan_id == plan_id).limit(1)
        with self._session() as session:
            return session.execute(query).first() is not None

    def record(self, plan_id: int, vm_uuid: str, key: str, status: str,
               result: dict[str, Any] | None = None, error: str = "") -> None:
        now = datetime.now(UTC)
        try:
            with self._session() as session, session.begin():
                existing = session.scalars(select(_StepRecord).where(
                    _StepRecord.plan_id == plan_id, _StepRecord.vm_uuid == vm_uuid,
                    _StepRecord.key == key)).first()
                if existing is None:
                    session.add(_StepRecord(plan_id=plan_id, vm_uuid=vm_uuid, key=key,
                                            status=status, result=json.dumps(result or {}),
                                            error=error, updated_at=now))
                else:
                    existing.status, existing.error, existing.updated_at = status, error, now
                    if result is not None:
                        existing.result = json.dumps(result)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the apply journal: {exc}") from exc

    def newest_plan_of(self, vm_uuid: str) -> int | None:
        """The newest plan that recorded steps for this VM."""
        newest = select(func.max(_StepRecord.plan_id)).where(_StepRecord.vm_uuid == vm_uuid)
        with self._session() as session:
            return session.execute(newest).scalar()

    def forget_vm(self, vm_uuid: str) -> None:
        """After an unmanage: the VM's steps of every plan count as reverted."""
        with self._session() as session, session.begin():
            session.execute(update(_StepRecord).where(_StepRecord.vm_uuid == vm_uuid)
                            .values(status="reverted", updated_at=datetime.now(UTC)))


class _AuditRecord(Base):
    """Every drift a reconcile pass saw, and what it wrote (or why not)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    vm_uuid: Mapped[str] = mapped_column(String(64), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(String(64))   # e.g. "periodic pass", "libvirt event"
    action: Mapped[str] = mapped_column(String(16))  # reported | tolerated | failed
    detail: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    vm_uuid: str
    vm_name: str
    kind: str
    before: str
    after: str
    cause: str
    action: str
    detail: str


class AuditLog:
    """The reconciler's audit log in the state store."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        Base.metadata.create_all(self._engine)

    def add(self, entry: AuditEntry) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.add(_AuditRecord(**entry.__dict__))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the audit log: {exc}") from exc

    def entries(self, vm: str | None = None, limit: int = 200) -> list[AuditEntry]:
        query = select(_AuditRecord).order_by(_AuditRecord.id.desc()).limit(limit)
        if vm:
            query = query.where((_AuditRecord.vm_uuid == vm) | (_AuditRecord.vm_name == vm))
        with Session(self._engine) as session:
            return [AuditEntry(r.at, r.vm_uuid, r.vm_name, r.kind, r.before, r.after, r.cause,
                               r.action, r.detail) for r in session.scalars(query)]


class _QueuedDriftRecord(Base):
    """A drift still waiting for OpenStack: seen while it could not be read, or
    whose toleration failed (part of it may already be written)."""

    __tablename__ = "drift_queue"
    __table_args__ = (UniqueConstraint("vm_uuid", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_uuid: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(255))  # kind, plus the MAC or disk it is about
    vm_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # the drift's detail, JSON
    cause: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_tried: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class QueuedDrift:
    vm_uuid: str
    key: str
    vm_name: str
    kind: str
    before: str
    after: str
    detail: dict[str, Any]
    cause: str
    first_seen: datetime
    last_tried: datetime
    attempts: int
    last_error: str


class DriftQueue:
    """Drift waiting for OpenStack, kept across restarts of the watcher."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        Base.metadata.create_all(self._engine)

    def put(self, item: QueuedDrift) -> bool:
        """Queue ``item``, or count one more attempt on the queued one (its
        before/after/detail then follow ``item``). True when it was new."""
        try:
            with Session(self._engine) as session, session.begin():
                row = session.scalars(select(_QueuedDriftRecord).where(
                    _QueuedDriftRecord.vm_uuid == item.vm_uuid,
                    _QueuedDriftRecord.key == item.key)).first()
                if row is None:
                    fields = {**item.__dict__, "detail": json.dumps(item.detail)}
                    session.add(_QueuedDriftRecord(**fields))
                    return True
                row.vm_name, row.before, row.after = item.vm_name, item.before, item.after
                row.detail, row.cause = json.dumps(item.detail), item.cause
                row.last_tried, row.last_error = item.last_tried, item.last_error
                row.attempts += 1
                return False
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the drift queue: {exc}") from exc

    def remove(self, vm_uuid: str, key: str) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.execute(delete(_QueuedDriftRecord).where(
                    _QueuedDriftRecord.vm_uuid == vm_uuid, _QueuedDriftRecord.key == key))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the drift queue: {exc}") from exc

    def items(self) -> list[QueuedDrift]:
        query = select(_QueuedDriftRecord).order_by(_QueuedDriftRecord.id)
        try:
            with Session(self._engine) as session:
                return [QueuedDrift(r.vm_uuid, r.key, r.vm_name, r.kind, r.before, r.after,
                                    json.loads(r.detail or "{}"), r.cause, r.first_seen,
                                    r.last_tried, r.attempts, r.last_error)
                        for r in session.scalars(query)]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the drift queue: {exc}") from exc


class _RecordsCacheRecord(Base):
    """The adopted servers' records as the last successful pass read them."""

    __tablename__ = "reconcile_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # one row: 1
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[str] = mapped_column(_BIG)


class RecordsCache:
    """Lets a pass compare the hypervisors with the last records read while
    OpenStack cannot be read, so the drift it sees is queued, not lost."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        Base.metadata.create_all(self._engine)

    def save(self, document: str) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.merge(_RecordsCacheRecord(id=1, read_at=datetime.now(UTC),
                                                  document=document))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot save the records cache: {exc}") from exc

    def load(self) -> tuple[datetime, str] | None:
        try:
            with Session(self._engine) as session:
                row = session.get(_RecordsCacheRecord, 1)
                return None if row is None else (row.read_at, row.document)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the records cache: {exc}") from exc
