"""The drift queue: drift waiting for OpenStack, kept across restarts of the watcher.

A drift is queued when a pass could not read OpenStack (it compared with the
cached records) or when its toleration failed with a temporary error (part
of it may already be written); :mod:`os_onboard.reconcile.pending` has the
rules, this module only keeps the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.state.base import Base
from os_onboard.state.store import StateStore


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
