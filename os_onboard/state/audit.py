"""The reconciler's audit log: every drift a pass saw, and what it wrote (or why not).

Append-only; ``os-onboard audit`` reads it newest first. ``action`` holds a
:class:`~os_onboard.state.statuses.DriftAction` or, for the queue's own
entries, a :class:`~os_onboard.state.statuses.QueueState` value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.state.base import Base
from os_onboard.state.store import StateStore


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
    action: Mapped[str] = mapped_column(String(16))  # DriftAction | QueueState
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
