"""The registry of managed hosts: which hypervisor endpoints os-onboard looks after.

A managed host is data in the state store (table ``managed_hosts``, made by
migration 0002): its URI, a unique name, group labels (for the mapping's
policy groups and for operators' selections) and a *credentials reference*,
never the secret itself. A reference says where the secret is found when the
host is read: ``env:NAME`` (an environment variable of the process reading
the host), ``file:/path`` (a file only that process can read) or
``config:KEY`` (a key of os-onboard's config file). A URI that carries a
password (``user:secret@host``) is refused, and so is a reference of any other
shape, so a secret typed in the wrong place is never stored, listed or logged.

``discover`` of a URI that is not registered stays a one-off; the service
(``os-onboard serve``) and its watchers act on registered hosts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import DateTime, Integer, String, Text, delete, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from os_onboard.exceptions import ConfigError, StateStoreError
from os_onboard.state import migrations
from os_onboard.state.base import Base
from os_onboard.state.store import StateStore

REF_SCHEMES = ("env", "file", "config")
_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+|config:[\w.:-]+)$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _HostRecord(Base):
    """One managed host (the migration 0002 makes the table)."""

    __tablename__ = "managed_hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    groups: Mapped[str] = mapped_column(Text, default="[]")
    credentials_ref: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class ManagedHost:
    id: int
    uri: str
    name: str
    groups: tuple[str, ...]
    credentials_ref: str
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "uri": self.uri, "name": self.name, "groups": list(self.groups),
                "credentials_ref": self.credentials_ref,
                "created_at": self.created_at.isoformat()}


def check_uri(uri: str) -> str:
    """``uri`` if it can be registered.

    :raises ConfigError: not a URI, or a password typed into it (the message
        names the user and host, never the password).
    """
    parts = urlsplit(uri)
    if not parts.scheme or len(uri) > 512 or any(c.isspace() for c in uri):
        raise ConfigError(f"{uri!r} is not a host URI (e.g. qemu+ssh://root@hv1/system)")
    if parts.password is not None:
        raise ConfigError(f"{parts.scheme}://{parts.username}@{parts.hostname or ''}/: a "
                          "password in a host URI is refused; register a credentials "
                          "reference (--credentials env:NAME|file:PATH|config:KEY)")
    return uri


def check_ref(ref: str) -> str:
    """``ref`` if it is a credentials reference ('' for none).

    :raises ConfigError: anything else; the message does not repeat it (it
        may be the secret itself, typed in the wrong place).
    """
    if ref and not _REF.match(ref):
        raise ConfigError("a credentials reference is env:NAME, file:/PATH or config:KEY "
                          "(the value given is not repeated: it may be a secret)")
    return ref


def check_groups(groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [g for g in groups if not _LABEL.match(g)]
    if bad:
        raise ConfigError(f"group labels are letters, digits, '_', '.', '-': {bad}")
    return tuple(sorted(set(groups)))


def default_name(uri: str) -> str:
    """A name for a host registered without one: its host name, else the URI."""
    parts = urlsplit(uri)
    return parts.hostname or uri


class HostRegistry:
    """The managed hosts of one state store (upgraded to the newest revision on open)."""

    def __init__(self, store: StateStore) -> None:
        self._engine = store.engine
        migrations.upgrade(self._engine)

    def add(self, uri: str, name: str | None = None, groups: list[str] | tuple[str, ...] = (),
            credentials_ref: str = "") -> ManagedHost:
        """Register ``uri``.

        :raises ConfigError: bad input, or the URI or name is registered already.
        """
        check_uri(uri)
        now = datetime.now(UTC)
        row = _HostRecord(uri=uri, name=name or default_name(uri),
                          groups=json.dumps(list(check_groups(groups))),
                          credentials_ref=check_ref(credentials_ref),
                          created_at=now, updated_at=now)
        try:
            with Session(self._engine) as session, session.begin():
                session.add(row)
                session.flush()
                return _host(row)
        except IntegrityError:
            raise ConfigError(f"a host with URI {uri} or name {row.name!r} is registered "
                              "already") from None
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot register host: {exc}") from exc

    def get(self, ident: str) -> ManagedHost | None:
        """The host whose URI, name or id is ``ident``."""
        cond = [_HostRecord.uri == ident, _HostRecord.name == ident]
        if ident.isdigit():
            cond.append(_HostRecord.id == int(ident))
        try:
            with Session(self._engine) as session:
                row = session.scalars(select(_HostRecord).where(or_(*cond))
                                      .order_by(_HostRecord.id)).first()
                return _host(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the host registry: {exc}") from exc

    def list(self, group: str | None = None) -> list[ManagedHost]:
        """Every registered host (of ``group`` only, when given), by id."""
        try:
            with Session(self._engine) as session:
                hosts = [_host(r) for r in session.scalars(
                    select(_HostRecord).order_by(_HostRecord.id))]
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot read the host registry: {exc}") from exc
        return [h for h in hosts if group is None or group in h.groups]

    def remove(self, ident: str) -> ManagedHost:
        """Forget a host (its VMs and OpenStack records are not touched).

        :raises ConfigError: no such host.
        """
        host = self.get(ident)
        if host is None:
            raise ConfigError(f"no registered host {ident!r}")
        try:
            with Session(self._engine) as session, session.begin():
                session.execute(delete(_HostRecord).where(_HostRecord.id == host.id))
        except SQLAlchemyError as exc:
            raise StateStoreError(f"cannot write the host registry: {exc}") from exc
        return host


def _host(row: _HostRecord) -> ManagedHost:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return ManagedHost(row.id, row.uri, row.name, tuple(json.loads(row.groups or "[]")),
                       row.credentials_ref, created)
