"""The records cache: OpenStack's records of the adopted servers, as last read.

One row, rewritten by every pass that read OpenStack; a pass that cannot
read it compares the hypervisors with this instead (and queues the drift).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import StateStoreError
from os_onboard.state.base import BIG_TEXT, Base
from os_onboard.state.store import StateStore


class _RecordsCacheRecord(Base):
    """The adopted servers' records as the last successful pass read them."""

    __tablename__ = "reconcile_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # one row: 1
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document: Mapped[str] = mapped_column(BIG_TEXT)


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
