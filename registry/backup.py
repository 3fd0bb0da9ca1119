"""Backup and restore of the registry database.

SQLite: the online backup API (sqlite3.Connection.backup) copies a consistent snapshot while the worker
keeps writing (WAL: readers do not block the writer). The copy is one self-contained file (journal mode
DELETE), checked before it is kept. PostgreSQL: `pg_dump --format=custom` (one snapshot, also while the
worker writes) and `pg_restore --clean --if-exists --no-owner --single-transaction`, run from PATH (else
`pg_config --bindir`, else /usr/lib/postgresql/*/bin); the password of the URL goes to them in PGPASSWORD,
never on their command line.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import Engine, inspect, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from registry.db import MIGRATIONS
from registry.errors import ExpectedError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"  # the first bytes of a pg_dump --format=custom archive
PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")
PG_TOOL_TIMEOUT = 3600.0


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
        "pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error "
        f"--dbname {shlex.quote(_libpq_url(url))} {shlex.quote(str(file))}"
    )


def pg_tool(name: str) -> str:
    """The path of pg_dump or pg_restore: on PATH, else in `pg_config --bindir`, else the newest
    /usr/lib/postgresql/N/bin (Debian's server package); BackupError naming the package if none is found."""
    found = shutil.which(name)
    if found:
        return found
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            bindir = ""
        if bindir and os.access(Path(bindir) / name, os.X_OK):
            return str(Path(bindir) / name)
    candidates = [Path(d) / name for pattern in PG_BIN_GLOBS for d in glob.glob(pattern)]
    candidates = [c for c in candidates if os.access(c, os.X_OK)]
    if candidates:
        return str(max(candidates, key=_version_key))
    raise BackupError(
        f"{name} not found on PATH, in `pg_config --bindir` or in {', '.join(PG_BIN_GLOBS)}: install the PostgreSQL "
        "client tools (Debian: postgresql-client) in the version of the server or newer"
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path)))


def pg_tool_invocation(tool: str, url: URL, arguments: list[str]) -> tuple[list[str], dict[str, str]]:
    """argv and environment for a libpq tool on `url`: the password (if the URL has one) in PGPASSWORD only."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return [pg_tool(tool), *arguments, "--dbname", _libpq_url(url)], env


def _run_pg_tool(tool: str, url: URL, arguments: list[str], what: str, manual: str) -> None:
    try:
        argv, env = pg_tool_invocation(tool, url, arguments)
    except BackupError as error:
        raise BackupError(f"{error}; or run (password from ~/.pgpass or PGPASSWORD):\n  {manual}") from None
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PG_TOOL_TIMEOUT)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        raise BackupError(f"{what} failed: {tool}: {error}") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        if url.password:
            message = message.replace(str(url.password), "***")
        raise BackupError(f"{what} failed: {message}")


def _pg_backup(engine: Engine, out: Path) -> int:
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        _run_pg_tool("pg_dump", engine.url, ["--format=custom", "--no-owner", "--file", str(partial)],
                     f"backup to {out}", pg_dump_command(engine.url, out))  # fmt: skip
        check_pg_dump_file(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return out.stat().st_size


def check_pg_dump_file(file: Path) -> None:
    """BackupError unless `file` is a pg_dump custom-format archive."""
    if not file.is_file():
        raise BackupError(f"{file}: no such backup file")
    with file.open("rb") as handle:
        if handle.read(len(PG_DUMP_MAGIC)) != PG_DUMP_MAGIC:
            raise BackupError(f"{file}: not a pg_dump archive (the registry is on PostgreSQL; a SQLite backup file "
                              "cannot be restored into it)")  # fmt: skip


def _pg_restore(url: URL, file: Path, yes: bool) -> str:
    from registry.db import make_engine

    file = file.expanduser().resolve()
    check_pg_dump_file(file)
    where = url.render_as_string(hide_password=True)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        tables = inspect(engine).get_table_names()
    except SQLAlchemyError as error:
        raise BackupError(f"restore into {where} failed: {getattr(error, 'orig', error)}") from None
    finally:
        engine.dispose()
    if tables and not yes:
        raise BackupError(f"{where} is not empty: restoring replaces everything in it; add --yes to do so")
    _run_pg_tool("pg_restore", url, ["--clean", "--if-exists", "--no-owner", "--single-transaction",
                                     "--exit-on-error", str(file)], f"restore into {where}",
                 pg_restore_command(url, file))  # fmt: skip
    return where


def sqlite_path(url: URL) -> Path:
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"{url.get_backend_name()}: only SQLite and PostgreSQL databases are supported")
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"{url.render_as_string()}: not a SQLite database file")
    return Path(url.database).expanduser()


def backup(engine: Engine, out: Path) -> int:
    """Copy the registry to `out` (replaced atomically if it exists); returns the size in bytes."""
    if engine.dialect.name == "postgresql":
        return _pg_backup(engine, out)
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
    # Alembic only here: importing it costs every `registry` command ~0.2 s of start-up (the CLI imports this module).
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

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
            raise BackupError(
                f"{file}: not a SQLite database (a pg_dump archive is restored into a PostgreSQL registry)"
            )
    connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        revision = _check(connection, file)
    finally:
        connection.close()
    if revision not in known_revisions():
        raise BackupError(f"{file}: schema revision {revision!r} is unknown to this version of mailbot (newer?)")
    return revision


def restore(url: str, file: Path, yes: bool = False) -> Path | str:
    """Put the backup `file` back as the registry at `url`; an existing registry is only replaced with `yes`.

    SQLite: the copy goes through SQLite's backup API into the target, so SQLite's locks and its WAL are
    respected; returns the path of the restored database. PostgreSQL: pg_restore of a `pg_dump` archive into
    the (existing) database, in one transaction; returns the URL without its password. Stop the worker first
    all the same: it would carry on from the restored state mid-pass. Migrations newer than the backup run on
    the next start.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _pg_restore(parsed, file, yes)
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
