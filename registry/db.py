"""The database edge: engine creation, SQLite pragmas, and migrations run on start.

Every schema change goes through Alembic (registry/migrations); nothing here creates tables directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from registry.config import Registry
from registry.errors import ExpectedError
from registry.tables import municipality, network

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlmodel import Session

M = TypeVar("M")

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseError(ExpectedError):
    """The registry database cannot be opened or upgraded; the message says why."""


# Execution option of an engine (or connection) that only reads: on SQLite its transactions start with a plain
# (deferred) BEGIN and never wait for the write lock. `reader(engine)` sets it.
READ_ONLY = "registry_read_only"
# How often a transaction's BEGIN IMMEDIATE is tried when another process holds the write lock for longer than
# the busy timeout (each try waits that long): the admin's command and the worker's pass wait, they do not fail.
BEGIN_ATTEMPTS = 4
# pg_advisory_lock key of the migrations (and the configuration mirror after them): "mailbot" in ASCII.
MIGRATION_LOCK_KEY = 0x6D61696C626F74


def reader(engine: Engine) -> Engine:
    """The same engine (and pool) for a command that only reads: on SQLite it does not queue for the write lock."""
    return engine.execution_options(**{READ_ONLY: True})


def _is_sqlite_busy(error: BaseException) -> bool:
    message = str(error).lower()
    return "database is locked" in message or "database is busy" in message


def make_engine(url: str, busy_timeout_ms: int = 15000) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and WAL, foreign keys and a busy timeout are set.

    On SQLite every transaction but a reader's (see `reader`) starts with BEGIN IMMEDIATE: it takes the write
    lock first, waiting up to the busy timeout (and BEGIN_ATTEMPTS times that) for a writer in another process,
    so two writers queue instead of one failing with "database is locked". (A deferred transaction that reads
    and then writes cannot wait: when another process committed in between, SQLite refuses its write at once.)
    Nothing has been done in the transaction when BEGIN is retried, so the retry repeats all of it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        marker = waiting_marker(engine)

        def _begin_at_once(connection, timeout_ms: int) -> bool:  # type: ignore[no-untyped-def]
            """BEGIN IMMEDIATE without waiting; when another process holds the write lock, say that a writer
            waits (the marker's mtime) and return False: the caller then waits as usual."""
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                return True
            except OperationalError as error:
                if not _is_sqlite_busy(error):
                    raise
                _touch(marker)
                return False
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout_ms)}")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # pysqlite only sends BEGIN before the first write, so a SAVEPOINT could start (and its release
            # commit) a transaction of its own; SQLAlchemy's documented recipe takes over BEGIN instead.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):  # type: ignore[no-untyped-def]
            if connection.get_execution_options().get(READ_ONLY):
                connection.exec_driver_sql("BEGIN")
                return
            if marker is not None and _begin_at_once(connection, busy_timeout_ms):
                return
            for attempt in range(1, BEGIN_ATTEMPTS + 1):
                try:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except OperationalError as error:
                    if attempt == BEGIN_ATTEMPTS or not _is_sqlite_busy(error):
                        raise
                    _touch(marker)
                    log.warning("database %s: another process has been writing for %d ms, waiting again (%d/%d)",
                                path, busy_timeout_ms, attempt, BEGIN_ATTEMPTS - 1)  # fmt: skip

        return engine
    return create_engine(url, pool_pre_ping=True)


def insert_or_nothing(dialect: str, table: Table, keys: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, for SQLite or PostgreSQL: a row two processes may both be about to
    create (a folder's state on a new database, a mail two workers fetched) is created once, and neither fails."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=keys)  # type: ignore[return-value]


def row_of(session: Session, model: type[M], **values: object) -> M:
    """The row of `model` with these primary-key values, created with the other `values` if it is not there yet.
    A get-or-add would let two processes both add it (three `mailbot poll` on a new database, an admin's command
    beside the worker), and all but one fail on the primary key; ON CONFLICT DO NOTHING makes the second wait for
    the first and then read its row."""
    table = model.__table__  # type: ignore[attr-defined]
    keys = [column.name for column in table.primary_key.columns]
    identity = {key: values[key] for key in keys}
    row = session.get(model, identity)
    if row is None:
        dialect = session.get_bind().dialect.name
        session.exec(insert_or_nothing(dialect, table, keys).values(**values))  # type: ignore[call-overload]
        row = session.get(model, identity)
        if row is None:  # deleted between the two statements: not something the product does
            raise RuntimeError(f"{table.name} {identity} vanished while it was being created")
    return row


def waiting_marker(engine: Engine) -> Path | None:
    """SQLite: the file whose mtime says when a transaction last found the write lock taken and began to wait
    (beside the database's -wal and -shm files). A long writer (the intake's batches) looks at it when it commits
    and leaves the lock free for a moment when someone waits. None for PostgreSQL and in-memory databases."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().with_name(Path(path).name + "-waiting")


def _touch(marker: Path | None) -> None:
    if marker is not None:
        try:
            marker.touch()
        except OSError:
            pass  # a read-only folder: the holder just does not know that someone waits


def writer_waiting(marker: Path | None, since: float) -> bool:
    """Whether a writer began to wait for the write lock after `since` (a time.time() value)."""
    if marker is None:
        return False
    try:
        return marker.stat().st_mtime >= since
    except OSError:
        return False


def head_revision() -> str:
    """The newest migration's revision id. Revisions are numbered like their files ("0006" in 0006_*.py), so this
    needs no Alembic import; tests/test_db.py checks that it agrees with Alembic's own view."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when it has none yet (a new database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (the registry upgrades itself on start). Alembic is only imported
    when there is something to do: a command on a current database starts faster without it.

    Two processes starting on a new database do not race: the migrations run in one transaction that holds the
    write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the advisory lock of `schema_lock`, taken by the caller), and
    Alembic reads the revision again inside it, so the second one finds the schema made and does nothing."""
    try:
        if current_revision(reader(engine)) == head_revision():
            return
        from alembic import command

        with engine.begin() as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as error:
        raise DatabaseError(f"cannot open the registry database {engine.url!r}: {error.orig}") from None


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, one process at a time migrates and mirrors the configuration (a session advisory lock,
    waited for); on SQLite the write lock each of those transactions takes at BEGIN IMMEDIATE does it."""
    if engine.dialect.name != "postgresql":
        yield
        return
    try:
        connection = engine.connect()
    except OperationalError as error:
        raise DatabaseError(f"cannot open the registry database {engine.url!r}: {error.orig}") from None
    with connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def sync_reference_data(engine: Engine, registry: Registry) -> None:
    """Mirror the configured networks and municipalities into their tables (for foreign keys). Read first, as a
    reader: a command on an unchanged configuration (nearly always) writes nothing and waits for no lock."""
    with reader(engine).connect() as look:
        if not _reference_changes(look, registry):
            return
    with engine.begin() as connection:
        _write_reference_data(connection, registry)


def _reference_names(connection: Connection) -> tuple[dict[str, str], set[str]]:
    """The network names by key, and the municipalities, in the registry."""
    names = {key: name for key, name in connection.execute(select(network.c.key, network.c.name))}
    return names, set(connection.execute(select(municipality.c.name)).scalars())


def _reference_changes(connection: Connection, registry: Registry) -> bool:
    names, municipalities = _reference_names(connection)
    return any(names.get(item.key) != item.name for item in registry.networks) or any(
        item.name not in municipalities for item in registry.municipalities
    )


def _write_reference_data(connection: Connection, registry: Registry) -> None:
    names, municipalities = _reference_names(connection)  # again, under the write lock
    for item in registry.networks:
        if item.key not in names:
            connection.execute(insert(network).values(key=item.key, name=item.name))
            names[item.key] = item.name
        elif names[item.key] != item.name:
            connection.execute(update(network).where(network.c.key == item.key).values(name=item.name))
    for item in registry.municipalities:
        if item.name not in municipalities:
            connection.execute(insert(municipality).values(name=item.name))
            municipalities.add(item.name)


ELSEWHERE = "point to the registry with --config FILE or MAILBOT_DATABASE__URL"
SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None (another engine, or an in-memory database)."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path).expanduser()


def refuse_non_registry_file(path: Path) -> None:
    """Only `mailbot` (poll, run, demo) creates a registry: a missing, empty or foreign file is an error that names
    the path and how to point elsewhere, so a wrong working directory never looks like an empty registry."""
    if not path.exists():
        raise DatabaseError(
            f"no registry database at {path.resolve()} (run `mailbot demo` or `mailbot poll` to make one, or {ELSEWHERE})"
        )
    if path.is_dir():
        raise DatabaseError(f"{path.resolve()} is a directory, not a registry database ({ELSEWHERE})")
    if path.stat().st_size == 0:
        raise DatabaseError(f"{path.resolve()} is an empty file, not a registry database ({ELSEWHERE})")
    with path.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise DatabaseError(f"{path.resolve()} is not a registry database (not a SQLite file; {ELSEWHERE})")


def open_registry(url: str, registry: Registry, busy_timeout_ms: int = 15000, create: bool = True) -> Engine:
    """Open (and upgrade) the database at `url`. With create=False (every `registry` command) the database must
    already be a registry: a missing, empty or foreign SQLite file, or a database without the registry's schema,
    is an error; a corrupt file says so and names `registry restore`."""
    path = sqlite_path(url)
    if not create and path is not None:
        refuse_non_registry_file(path)
    engine = make_engine(url, busy_timeout_ms)
    where = str(path.resolve()) if path is not None else engine.url.render_as_string(hide_password=True)
    try:
        if not create and current_revision(reader(engine)) is None:
            raise DatabaseError(f"{where} holds no registry (no schema version); {ELSEWHERE}")
        with schema_lock(engine):
            upgrade(engine)
            sync_reference_data(engine, registry)
    except (SQLAlchemyError, DatabaseError) as error:
        engine.dispose()
        if isinstance(error, DatabaseError) and not _corrupt_message(str(error)):
            raise
        if _corrupt_message(str(getattr(error, "orig", error))):
            raise DatabaseError(
                f"the registry database {where} is corrupt; put a backup back with `registry restore FILE`"
            ) from None
        raise DatabaseError(f"cannot use the registry database {where}: {getattr(error, 'orig', error)}") from None
    return engine


def _corrupt_message(message: str) -> bool:
    lowered = message.lower()
    return "malformed" in lowered or "file is not a database" in lowered
