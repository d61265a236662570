"""Baseline: the schema of stores made before migrations.

Each table of that schema (inventory snapshots, plans and journal, audit
log, drift queue, records cache) is created by the module holding it on
first use, so this revision writes nothing: it names the starting point.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
