"""Alembic migrations of the state store, run in-process (no ``alembic.ini``).

Stores made before migrations existed have no ``alembic_version`` table: they
are stamped at the baseline (``0001``, the schema as those versions made it,
each table created on first use by the module holding it) and upgraded from
there, so an existing store keeps its snapshots, plans and journal. A new
store goes the same way. :func:`upgrade` is cheap when the store is at head
(one ``SELECT`` of the version; alembic's script directory is read only when
there is something to do), so a holder may call it each time it opens.

Several replicas may open one MariaDB store at once: a replica that loses the
race to create a table finds it at head when it looks again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from os_onboard.exceptions import StateStoreError

LOG = logging.getLogger(__name__)

VERSIONS = Path(__file__).parent / "versions"
#: the newest revision; a unit test checks it is alembic's head
HEAD = "0004"
BASELINE = "0001"


def current(engine: Any) -> str | None:
    """The store's revision, or None when it was never stamped."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise StateStoreError(f"cannot read the state store's revision: {exc}") from exc


def upgrade(engine: Any, target: str = "head") -> str:
    """Bring the store to ``target`` (stamping a pre-migration store first).

    :returns: the revision the store is at afterwards.
    :raises StateStoreError: the database refused.
    """
    if target == "head" and current(engine) == HEAD:
        return HEAD
    try:
        return _run(engine, target)
    except SQLAlchemyError as exc:
        if current(engine) == HEAD:  # another replica upgraded meanwhile
            return HEAD
        raise StateStoreError(f"cannot upgrade the state store: {exc}") from exc


def _run(engine: Any, target: str) -> str:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # its "Context impl ..." lines are noise here
        alembic_log.setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", str(VERSIONS.parent))
    script = ScriptDirectory(str(VERSIONS.parent), version_locations=[str(VERSIONS)])
    with engine.begin() as conn:
        context = MigrationContext.configure(conn)
        if not context.get_current_heads():
            # The baseline writes nothing, so a new store and one made before
            # migrations start from it alike.
            LOG.info("state store without a revision: stamped at baseline %s", BASELINE)
            context.stamp(script, BASELINE)

    def steps(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, revision)

    with engine.begin() as conn, EnvironmentContext(
            config, script, fn=steps, destination_rev=target) as env:
        env.configure(connection=conn, target_metadata=None)
        with env.begin_transaction():
            env.run_migrations()
    after = current(engine) or ""
    LOG.info("state store at revision %s", after)
    return after
