"""publication of minutes on the public site: each set's decision and first publication; the site's state

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "minutes_publication",
        sa.Column("minutes_id", sa.Integer(), nullable=False),
        sa.Column("network_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["minutes_id"], ["minutes.id"]),
        sa.ForeignKeyConstraint(["network_key"], ["network.key"]),
        sa.PrimaryKeyConstraint("minutes_id"),
    )
    op.create_index("ix_minutes_publication_network_key", "minutes_publication", ["network_key"])
    op.create_table(
        "site_state",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_build", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("build_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("upload_pending", sa.Boolean(), nullable=False),
        sa.Column("last_upload", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_failure", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("alert_sent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("site_state")
    op.drop_index("ix_minutes_publication_network_key", table_name="minutes_publication")
    op.drop_table("minutes_publication")
