"""Backup and restore of the registry database.

SQLite: the online backup API (sqlite3.Connection.backup) copies a consistent snapshot while the worker
keeps writing (WAL: readers do not block the writer). The copy is one self-contained file (journal mode
DELETE), checked before it is kept. PostgreSQL: pg_dump/pg_restore do this better than we could; the error
message gives the exact command for the configured database.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, make_url
from sqlalchemy.engine import URL

from registry.db import MIGRATIONS
from registry.errors import ExpectedError

SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(ExpectedError):
    """A backup or restore that cannot be done; the message says why and what to do instead."""


def _libpq_url(url: URL) -> str:
    """The URL for pg_dump/pg_restore: no SQLAlchemy driver suffix, no password (use ~/.pgpass or PGPASSWORD)."""
    plain = URL.create("postgresql", username=url.username, host=url.host, port=url.port, database=url.database,
                       query=url.query)  # fmt: skip
    return plain.render_as_string(hide_password=False)


def pg_dump_command(url: URL, out: Path) -> str:
    return f"pg_dump --format=custom --no-owner --file {shlex.quote(str(out))} {shlex.quote(_libpq_url(url))}"


def pg_restore_command(url: URL, file: Path) -> str:
    return (
        "pg_restore --clean --if-exists --no-owner --single-transaction "
        f"--dbname {shlex.quote(_libpq_url(url))} {shlex.quote(str(file))}"
    )


def sqlite_path(url: URL) -> Path:
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"{url.get_backend_name()}: only SQLite and PostgreSQL databases are supported")
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"{url.render_as_string()}: not a SQLite database file")
    return Path(url.database).expanduser()


def backup(engine: Engine, out: Path) -> int:
    """Copy the registry to `out` (replaced atomically if it exists); returns the size in bytes."""
    if engine.dialect.name == "postgresql":
        raise BackupError(
            "the registry is on PostgreSQL: back it up with pg_dump (password from ~/.pgpass or PGPASSWORD):\n"
            f"  {pg_dump_command(engine.url, out)}\n"
            f"and restore it with:\n  {pg_restore_command(engine.url, out)}"
        )
    source = sqlite_path(engine.url).resolve()
    out = out.expanduser().resolve()
    if out == source:
        raise BackupError(f"{out}: the backup would overwrite the registry itself; choose another file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(partial)
        try:
            # pages=-1: one step, so the copy is one snapshot even while another connection writes.
            raw.driver_connection.backup(target, pages=-1)  # type: ignore[union-attr]
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            _check(target, partial)
        finally:
            target.close()
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup to {out} failed: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        raw.close()
    os.replace(partial, out)
    return out.stat().st_size


def known_revisions() -> set[str]:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def _check(connection: sqlite3.Connection, path: Path) -> str:
    """The registry revision of the SQLite database on `connection`; BackupError if it is not a sound registry."""
    try:
        ok = connection.execute("PRAGMA quick_check").fetchone()
        if ok is None or ok[0] != "ok":
            raise BackupError(f"{path}: the SQLite database is damaged ({ok[0] if ok else 'no result'})")
        has_version = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if has_version is None:
            raise BackupError(f"{path}: a SQLite database, but not a registry (no alembic_version table)")
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path}: not a usable SQLite database: {error}") from None
    if row is None:
        raise BackupError(f"{path}: a registry without a schema revision (alembic_version is empty)")
    return str(row[0])


def check_backup_file(file: Path) -> str:
    """The schema revision of a backup file; BackupError unless it is a sound registry this version can open."""
    if not file.is_file():
        raise BackupError(f"{file}: no such backup file")
    with file.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"{file}: not a SQLite database (a PostgreSQL dump is restored with pg_restore)")
    connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        revision = _check(connection, file)
    finally:
        connection.close()
    if revision not in known_revisions():
        raise BackupError(f"{file}: schema revision {revision!r} is unknown to this version of mailbot (newer?)")
    return revision


def restore(url: str, file: Path, yes: bool = False) -> Path:
    """Put the backup `file` back as the registry at `url`; an existing registry is only replaced with `yes`.

    The copy goes through SQLite's backup API into the target, so SQLite's locks and its WAL are respected
    (stop the worker first all the same: it would carry on from the restored state mid-pass).
    Returns the path of the restored database; migrations newer than the backup run on the next start.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        raise BackupError(
            "the registry is on PostgreSQL: stop the worker, then restore a pg_dump file with:\n"
            f"  {pg_restore_command(parsed, file)}"
        )
    target = sqlite_path(parsed).resolve()
    file = file.expanduser().resolve()
    check_backup_file(file)
    if file == target:
        raise BackupError(f"{file} is the registry itself")
    if target.exists() and target.stat().st_size > 0 and not yes:
        raise BackupError(f"{target} exists: restoring replaces everything in it; add --yes to do so")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(target, timeout=30)
        try:
            source.backup(destination, pages=-1)
            destination.execute("PRAGMA journal_mode=WAL")  # as registry.db opens it
            _check(destination, target)
        finally:
            destination.close()
    except sqlite3.Error as error:
        raise BackupError(f"restore into {target} failed: {error}") from None
    finally:
        source.close()
    return target
