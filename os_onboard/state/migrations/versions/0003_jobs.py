"""Jobs of the service (issue 15): long work started through the API.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
#: documents: LONGTEXT on MySQL/MariaDB (TEXT stops at 64 KiB there)
DOC = sa.Text().with_variant(sa.Text(2**32 - 1), "mysql")
depends_on = None


def upgrade() -> None:
    # The other holders' create_all() makes every table registered on the
    # declarative base, this one too when os_onboard.state.jobs was imported.
    if sa.inspect(op.get_bind()).has_table("jobs"):
        return
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("params", DOC, nullable=False, server_default="{}"),
        sa.Column("progress", DOC, nullable=False, server_default="{}"),
        sa.Column("result", DOC, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("owner", sa.String(255), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("jobs")
