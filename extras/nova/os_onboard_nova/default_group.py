"""The instance owner's ``default`` security group in a cell database.

Nova's ``instance_create`` first ensures a ``default`` security group for the
*context's* project (``nova/db/main/api.py``: ``security_group_ensure_default``
looks it up with ``_security_group_get_by_names`` and creates it when absent).
The cell database's unique key (project_id, name, deleted) makes two writers
of one project meet; for project_id NULL it does not (MySQL lets NULLs repeat),
so two project-less admin contexts creating instances at once leave two rows,
and from then on ``_security_group_get_by_names`` finds two where it asked for
one, returns None, and every such ``instance_create`` fails with
``TypeError: 'NoneType' object is not subscriptable``.

The adopt helper therefore writes with the owner's project (as Nova's API
does), and before it creates an instance :func:`ensure` checks the rows its
cell holds (failing with the ids and the repair when they are duplicated) and
creates the owner's group, one thread per cell and project at a time: the
others then only read it. Between processes the unique key holds, and Nova
turns the loser's duplicate into a read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from os_onboard_nova import _common

NAME = "default"


@dataclass(frozen=True)
class Row:
    """A live (not soft-deleted) ``default`` row of ``security_groups``."""

    id: int
    project_id: str | None
    user_id: str | None
    created_at: str


class PoisonedCell(_common.Refusal):
    """The cell database holds duplicate ``default`` security groups."""


def repair_sql(project_id: str | None, keep: int) -> str:
    """Nova's own soft delete (``security_group_destroy``: deleted = id) of every
    duplicate but the oldest, in the cell database."""
    owner = "project_id IS NULL" if project_id is None else f"project_id = '{project_id}'"
    return ("UPDATE security_groups SET deleted = id, deleted_at = NOW() "
            f"WHERE name = '{NAME}' AND {owner} AND deleted = 0 AND id <> {keep};")


def problem(rows: list[Row], project_id: str, where: str) -> str | None:
    """What in ``rows`` makes Nova's ``instance_create`` fail, for the operator; else None.

    Duplicates without a project break every project-less admin context's
    instance create (what os-onboard's adopt helper used before it wrote with
    the owner's project), duplicates of the owner's project break this one.
    """
    for owner in (None, project_id):
        dups = sorted((r for r in rows if r.project_id == owner), key=lambda r: r.id)
        if len(dups) < 2:
            continue
        whose = "without a project" if owner is None else f"of project {owner}"
        listed = ", ".join(f"id {r.id} (user {r.user_id}, created {r.created_at})"
                           for r in dups)
        return (f"cell database {where} holds {len(dups)} 'default' security groups "
                f"{whose}: {listed}. Nova's instance_create fails on them (TypeError: "
                "'NoneType' object is not subscriptable); concurrent instance creates "
                "with a project-less admin context (os-onboard's adopt helper before it "
                "wrote with the owner's project) leave them. Repair: keep the oldest, soft-"
                f"delete the others in that database: {repair_sql(owner, dups[0].id)} "
                "(the lab's 'lab up' does this)")
    return None


def where(cell: Any) -> str:
    """The cell as an operator finds it: name, server and database (no password)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(cell.database_connection)
        return f"{url.host or 'localhost'}/{url.database} (cell {cell.name})"
    except Exception:  # an unparsable URL still has a name
        return f"of cell {cell.name}"


def rows(cctxt: Any, project_id: str) -> list[Row]:
    """The live ``default`` groups of ``project_id`` and of no project, in the
    context's cell."""
    import sqlalchemy as sa
    from nova.db.main import api as db
    from nova.db.main import models

    group = models.SecurityGroup

    @db.pick_context_manager_reader
    def read(context: Any) -> list[Row]:
        query = context.session.query(group.id, group.project_id, group.user_id,
                                      group.created_at).filter(
            group.name == NAME, group.deleted == 0,
            sa.or_(group.project_id.is_(None), group.project_id == project_id))
        return [Row(i, p, u, str(c)) for i, p, u, c in query]

    return read(cctxt)


_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(cell_uuid: str, project_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((cell_uuid, project_id), threading.Lock())


def ensure(cctxt: Any, cell: Any, project_id: str) -> None:
    """Refuse a poisoned cell; else make the owner's default group exist.

    :param cctxt: a context of ``project_id`` targeted at ``cell``.
    :raises PoisonedCell: duplicate default groups (ids and repair in the message).
    """
    from nova.db.main import api as db

    # One thread per (cell, project): the check and the create are read then
    # write, and the threads of one batch often share an owner.
    with _lock(cell.uuid, project_id):
        found = rows(cctxt, project_id)
        message = problem(found, project_id, where(cell))
        if message:
            raise PoisonedCell(message)
        if not any(r.project_id == project_id for r in found):
            db.security_group_ensure_default(cctxt)
