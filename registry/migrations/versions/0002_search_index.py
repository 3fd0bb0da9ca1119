"""full-text search index (SQLite FTS5), kept in step by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00

One FTS5 table, `search_index`, holds the text of every document (rowid = 2 * document.id) and the subject
and body of every inbound mail (rowid = 2 * inbound_mail.id + 1). Triggers on the source tables keep it in
step inside the same transaction as the rows themselves, so nothing in the application has to remember it.
The tokenizer keeps diacritics (å, ä, ö stay distinct letters in Swedish). On PostgreSQL this migration
does nothing: search there uses to_tsvector('swedish', ...) in the query.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE VIRTUAL TABLE search_index USING fts5(
        title, body, tokenize = 'unicode61 remove_diacritics 0'
    )""",
    # documents: rowid = 2 * id
    """CREATE TRIGGER search_document_ai AFTER INSERT ON document BEGIN
        INSERT INTO search_index(rowid, title, body) VALUES (2 * new.id, new.filename, new.text);
    END""",
    """CREATE TRIGGER search_document_ad AFTER DELETE ON document BEGIN
        DELETE FROM search_index WHERE rowid = 2 * old.id;
    END""",
    """CREATE TRIGGER search_document_au AFTER UPDATE OF id, filename, text ON document BEGIN
        DELETE FROM search_index WHERE rowid = 2 * old.id;
        INSERT INTO search_index(rowid, title, body) VALUES (2 * new.id, new.filename, new.text);
    END""",
    # inbound mails: rowid = 2 * id + 1
    """CREATE TRIGGER search_mail_ai AFTER INSERT ON inbound_mail BEGIN
        INSERT INTO search_index(rowid, title, body) VALUES (2 * new.id + 1, new.subject, new.body_text);
    END""",
    """CREATE TRIGGER search_mail_ad AFTER DELETE ON inbound_mail BEGIN
        DELETE FROM search_index WHERE rowid = 2 * old.id + 1;
    END""",
    """CREATE TRIGGER search_mail_au AFTER UPDATE OF id, subject, body_text ON inbound_mail BEGIN
        DELETE FROM search_index WHERE rowid = 2 * old.id + 1;
        INSERT INTO search_index(rowid, title, body) VALUES (2 * new.id + 1, new.subject, new.body_text);
    END""",
    # what is already on file
    "INSERT INTO search_index(rowid, title, body) SELECT 2 * id, filename, text FROM document",
    "INSERT INTO search_index(rowid, title, body) SELECT 2 * id + 1, subject, body_text FROM inbound_mail",
    # minutes are looked up by their document when a hit is shown
    "CREATE INDEX ix_search_minutes_document ON minutes (document_id)",
]

DROP = [
    "DROP INDEX IF EXISTS ix_search_minutes_document",
    "DROP TRIGGER IF EXISTS search_mail_au",
    "DROP TRIGGER IF EXISTS search_mail_ad",
    "DROP TRIGGER IF EXISTS search_mail_ai",
    "DROP TRIGGER IF EXISTS search_document_au",
    "DROP TRIGGER IF EXISTS search_document_ad",
    "DROP TRIGGER IF EXISTS search_document_ai",
    "DROP TABLE IF EXISTS search_index",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in DROP:
        op.execute(statement)
