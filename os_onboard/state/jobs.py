"""Jobs: long work the service runs for an API call (a discovery, an apply).

A job is a row (table ``jobs``, migration 0003) that any replica may run:
``queued`` -> ``running`` (claimed by one replica with a conditional UPDATE,
so two replicas never run the same job) -> ``succeeded`` | ``failed`` |
``cancelled``. The running replica writes its progress, its finished items
(table ``job_items``, one row each: a discovery's host inventories) and a
heartbeat; a
job whose heartbeat is older than the takeover time (its replica died, kill
-9 included) is claimed again by another replica and resumed from its
progress (each kind of job says what resuming means: a discovery reads the
hosts it had not finished). Cancel is a flag the runner reads between items.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, Text, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.state import migrations
from os_onboard.state.base import BIG_TEXT, Base
from os_onboard.state.store import StateStore


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class _JobRecord(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[str] = mapped_column(BIG_TEXT, default="{}")
    progress: Mapped[str] = mapped_column(BIG_TEXT, default="{}")
    result: Mapped[str] = mapped_column(BIG_TEXT, default="{}")
    error: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(255), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)


class _JobItemRecord(Base):
    """A finished item of a job (migration 0004), e.g. one host's inventory."""

    __tablename__ = "job_items"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    document: Mapped[str] = mapped_column(BIG_TEXT)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str
    owner: str
    attempts: int
    cancel_requested: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state.value,
                "params": self.params, "progress": self.progress, "result": self.result,
                "error": self.error, "owner": self.owner, "attempts": self.attempts,
                "cancel_requested": self.cancel_requested, "created_by": self.created_by,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _job(r: _JobRecord) -> Job:
    return Job(r.id, r.kind, JobState(r.state), json.loads(r.params), json.loads(r.progress),
               json.loads(r.result), r.error, r.owner, r.attempts, bool(r.cancel_requested),
               r.created_by, _utc(r.created_at), _utc(r.updated_at))


class JobStore:
    """The jobs table of one state store."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        migrations.upgrade(self._engine)

    def _session(self) -> Session:
        return Session(self._engine)

    def create(self, kind: str, params: dict[str, Any], created_by: str = "") -> Job:
        now = datetime.now(UTC)
        row = _JobRecord(id=str(uuid.uuid4()), kind=kind, state=JobState.QUEUED.value,
                         params=json.dumps(params), progress="{}", result="{}", error="",
                         owner="", attempts=0, cancel_requested=False, created_by=created_by,
                         created_at=now, updated_at=now)
        try:
            with self._session() as session, session.begin():
                session.add(row)
                session.flush()
                return _job(row)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot create job: {exc}") from exc

    def get(self, job_id: str) -> Job | None:
        try:
            with self._session() as session:
                row = session.get(_JobRecord, job_id)
                return _job(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read job: {exc}") from exc

    def list(self, limit: int = 50, marker: str | None = None,
             state: str | None = None) -> list[Job]:
        """Newest first; ``marker`` is the id of the last job of the previous page."""
        query = select(_JobRecord).order_by(_JobRecord.created_at.desc(),
                                            _JobRecord.id.desc())
        if state:
            query = query.where(_JobRecord.state == state)
        try:
            with self._session() as session:
                if marker:
                    last = session.get(_JobRecord, marker)
                    if last is not None:
                        query = query.where(or_(
                            _JobRecord.created_at < last.created_at,
                            (_JobRecord.created_at == last.created_at)
                            & (_JobRecord.id < last.id)))
                return [_job(r) for r in session.scalars(query.limit(limit))]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot list jobs: {exc}") from exc

    def claim(self, owner: str, stale_after: float) -> Job | None:
        """Take one queued job, or a running one whose runner stopped beating.

        The UPDATE is conditional on the state (and heartbeat) read, so of
        two replicas claiming the same job one wins and the other moves on.
        """
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=stale_after)
        try:
            with self._session() as session:
                candidates = session.execute(
                    select(_JobRecord.id, _JobRecord.state, _JobRecord.heartbeat_at)
                    .where(or_(_JobRecord.state == JobState.QUEUED.value,
                               (_JobRecord.state == JobState.RUNNING.value)
                               & (_JobRecord.heartbeat_at < stale)))
                    .order_by(_JobRecord.created_at).limit(10)).all()
            for job_id, state, beat in candidates:
                with self._session() as session, session.begin():
                    cond = [_JobRecord.id == job_id, _JobRecord.state == state]
                    cond.append(_JobRecord.heartbeat_at.is_(None) if beat is None
                                else _JobRecord.heartbeat_at == beat)
                    won = session.execute(
                        update(_JobRecord).where(*cond).values(
                            state=JobState.RUNNING.value, owner=owner, heartbeat_at=now,
                            updated_at=now, attempts=_JobRecord.attempts + 1)).rowcount
                if won:
                    return self.get(job_id)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot claim a job: {exc}") from exc
        return None

    def beat(self, job_id: str, owner: str, progress: dict[str, Any] | None = None,
             result: dict[str, Any] | None = None) -> bool:
        """Write the heartbeat (and progress, and a partial result a takeover
        resumes from). False when the job is no longer ours."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"heartbeat_at": now, "updated_at": now}
        if progress is not None:
            values["progress"] = json.dumps(progress)
        if result is not None:
            values["result"] = json.dumps(result)
        try:
            with self._session() as session, session.begin():
                return bool(session.execute(update(_JobRecord).where(
                    _JobRecord.id == job_id, _JobRecord.owner == owner,
                    _JobRecord.state == JobState.RUNNING.value).values(**values)).rowcount)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write job progress: {exc}") from exc

    def finish(self, job_id: str, owner: str, state: JobState,
               result: dict[str, Any] | None = None, error: str = "",
               progress: dict[str, Any] | None = None) -> bool:
        values: dict[str, Any] = {"state": state.value, "updated_at": datetime.now(UTC),
                                  "result": json.dumps(result or {}), "error": error}
        if progress is not None:
            values["progress"] = json.dumps(progress)
        try:
            with self._session() as session, session.begin():
                return bool(session.execute(update(_JobRecord).where(
                    _JobRecord.id == job_id, _JobRecord.owner == owner,
                    _JobRecord.state == JobState.RUNNING.value).values(**values)).rowcount)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot finish job: {exc}") from exc

    def save_items(self, job_id: str, items: dict[str, str]) -> None:
        """Keep finished items (key -> document), replacing earlier ones of those keys."""
        try:
            with self._session() as session, session.begin():
                if items:
                    session.execute(delete(_JobItemRecord).where(
                        _JobItemRecord.job_id == job_id, _JobItemRecord.key.in_(list(items))))
                session.add_all(_JobItemRecord(job_id=job_id, key=k, document=v)
                                for k, v in items.items())
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write job items: {exc}") from exc

    def items(self, job_id: str) -> dict[str, str]:
        try:
            with self._session() as session:
                return {r.key: r.document for r in session.scalars(
                    select(_JobItemRecord).where(_JobItemRecord.job_id == job_id))}
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read job items: {exc}") from exc

    def drop_items(self, job_id: str) -> None:
        try:
            with self._session() as session, session.begin():
                session.execute(delete(_JobItemRecord).where(_JobItemRecord.job_id == job_id))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write job items: {exc}") from exc

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop: a queued one is cancelled at once, a running one
        stops at its next item. None when there is no such job."""
        now = datetime.now(UTC)
        try:
            with self._session() as session, session.begin():
                session.execute(update(_JobRecord).where(
                    _JobRecord.id == job_id, _JobRecord.state == JobState.QUEUED.value)
                    .values(state=JobState.CANCELLED.value, cancel_requested=True,
                            updated_at=now))
                session.execute(update(_JobRecord).where(
                    _JobRecord.id == job_id, _JobRecord.state == JobState.RUNNING.value)
                    .values(cancel_requested=True, updated_at=now))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot cancel job: {exc}") from exc
        return self.get(job_id)
