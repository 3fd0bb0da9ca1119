"""PostgreSQL: GIN expression indexes for `registry search` (the `swedish` text-search configuration)

SQLite has its FTS5 table (0002); on PostgreSQL the search queries use exactly these expressions, so the
planner answers a search from the index instead of running to_tsvector() over every row.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_document_search ON document "
        "USING gin (to_tsvector('swedish', filename || ' ' || text))"
    )
    op.execute(
        "CREATE INDEX ix_inbound_mail_search ON inbound_mail "
        "USING gin (to_tsvector('swedish', subject || ' ' || body_text))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_inbound_mail_search")
    op.execute("DROP INDEX IF EXISTS ix_document_search")
