"""Plans and the apply journal, in the state store.

A plan is saved whole (its JSON document). ``apply`` records every step it
executes, per VM, *before* and *after* the write: ``started`` then ``done``
(with the ids it created) or ``failed`` (with the error). A rerun skips done
steps and re-executes started/failed ones; every executor first looks for the
record it would create, so a kill -9 between the write and the journal
update is not a duplicate. Unmanage marks reverted steps ``reverted``.
The statuses are :class:`~os_onboard.state.statuses.StepStatus` members.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.plan.model import Plan
from os_onboard.state.base import BIG_TEXT, Base
from os_onboard.state.statuses import StepStatus
from os_onboard.state.store import StateStore


class _Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    snapshot_id: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(BIG_TEXT)


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
class PlanInfo:
    id: int
    created_at: datetime
    snapshot_id: int
    started: bool  # an apply recorded steps of it


def _utc(value: datetime) -> datetime:
    # SQLite and MariaDB give back naive datetimes of what was stored in UTC
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StepState:
    status: StepStatus
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

    def list_plans(self, limit: int = 50, before: int | None = None) -> list[PlanInfo]:
        """Newest first, without their documents (a plan of 10,000 VMs is megabytes);
        ``before``: the id of the last plan of the previous page."""
        started = (select(_StepRecord.id).where(_StepRecord.plan_id == _Plan.id)
                   .exists().label("started"))
        query = (select(_Plan.id, _Plan.created_at, _Plan.snapshot_id, started)
                 .order_by(_Plan.id.desc()).limit(limit))
        if before is not None:
            query = query.where(_Plan.id < before)
        try:
            with self._session() as session:
                return [PlanInfo(r[0], _utc(r[1]), r[2], bool(r[3]))
                        for r in session.execute(query)]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot list plans: {exc}") from exc

    def steps(self, plan_id: int) -> dict[tuple[str, str], StepState]:
        query = select(_StepRecord).where(_StepRecord.plan_id == plan_id)
        with self._session() as session:
            return {(r.vm_uuid, r.key): StepState(StepStatus(r.status),
                                                  json.loads(r.result or "{}"), r.error or "")
                    for r in session.scalars(query)}

    def started(self, plan_id: int) -> bool:
        query = select(_StepRecord.id).where(_StepRecord.plan_id == plan_id).limit(1)
        with self._session() as session:
            return session.execute(query).first() is not None

    def record(self, plan_id: int, vm_uuid: str, key: str, status: StepStatus,
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
                            .values(status=StepStatus.REVERTED,
                                    updated_at=datetime.now(UTC)))
