"""A job's finished items (a discovery's host inventories), one row each.

A job's partial result in its own row outgrew MariaDB's max_allowed_packet
(16 MiB) at 40 hosts x 150 VMs; one row per item stays small.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
DOC = sa.Text().with_variant(sa.Text(2**32 - 1), "mysql")


def upgrade() -> None:
    # The other holders' create_all() makes every table registered on the
    # declarative base, this one too when os_onboard.state.jobs was imported.
    if sa.inspect(op.get_bind()).has_table("job_items"):
        return
    op.create_table(
        "job_items",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("document", DOC, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_items")
