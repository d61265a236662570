"""The registry of managed hosts (issue 15).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The other holders' create_all() makes every table registered on the
    # declarative base, this one too when os_onboard.state.hosts was imported.
    if sa.inspect(op.get_bind()).has_table("managed_hosts"):
        return
    op.create_table(
        "managed_hosts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uri", sa.String(512), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("groups", sa.Text, nullable=False, server_default="[]"),
        sa.Column("credentials_ref", sa.String(512), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("managed_hosts")
