"""PostgreSQL: stored text-search vectors and GIN indexes for `registry search` (`swedish` configuration)

SQLite has its FTS5 table (0002). On PostgreSQL each searchable table gets a generated column `search_vector`
(kept in step by PostgreSQL itself, in the same transaction) and a GIN index on it, so a search neither parses
every row's text to find matches nor again to rank them.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VECTORS = {
    "document": "to_tsvector('swedish', coalesce(filename, '') || ' ' || coalesce(text, ''))",
    "inbound_mail": "to_tsvector('swedish', coalesce(subject, '') || ' ' || coalesce(body_text, ''))",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, expression in VECTORS.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({expression}) STORED")
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in VECTORS:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
