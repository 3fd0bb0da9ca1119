"""member_list: the period a list says it is for ("HT 2025", "2026"), so that it binds the obligation of that period

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member_list") as batch_op:
        batch_op.add_column(sa.Column("period_label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member_list") as batch_op:
        batch_op.drop_column("period_end")
        batch_op.drop_column("period_start")
        batch_op.drop_column("period_label")
