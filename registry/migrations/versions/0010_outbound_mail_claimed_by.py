"""outbound_mail.claimed_by: which process claimed a row it is sending (lease holder id host:pid:uuid), so the
worker that takes the lease sends a dead holder's rows at once instead of waiting for the claim to expire

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_mail", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
