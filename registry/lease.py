"""A lease row per kind of work, so only one `mailbot run` polls, sends and reminds at a time.

The active worker renews its lease on every tick; a standby's acquire fails until the lease has expired,
then the first standby to ask takes it over. Plain SQL (one conditional UPDATE, else one INSERT against the
primary key), so it works the same on SQLite and PostgreSQL.

Expiry is compared with the caller's clock: the machines that share a database need synchronised clocks
(NTP), and the TTL must be well above any clock skew.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from registry.models_ops import WorkerLease

if TYPE_CHECKING:
    from registry.runtime import Runtime

log = logging.getLogger("registry.lease")
TABLE = WorkerLease.__table__  # type: ignore[attr-defined]


def new_holder_id() -> str:
    """hostname:pid:uuid, unique per process (and per call, so two holders in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


HOLDER = new_holder_id()  # this process's identity as a lease holder


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease `name` until now + ttl; False when another holder's lease has not expired.

    Atomic: the UPDATE only matches our own row or an expired one (on PostgreSQL a concurrent UPDATE waits
    for the row lock and re-checks the condition; SQLite serialises writers), and a missing row is created by
    an INSERT whose primary key lets only one of two racing processes win.
    """
    expires = now + ttl
    with engine.begin() as connection:
        taken = connection.execute(
            update(TABLE)
            .where(TABLE.c.name == name, or_(TABLE.c.holder == holder, TABLE.c.expires_at < now))
            .values(expires_at=expires)
        )
        if taken.rowcount == 1:
            # A takeover (not a renewal) also records the new holder and when it took over.
            connection.execute(
                update(TABLE)
                .where(TABLE.c.name == name, TABLE.c.holder != holder)
                .values(holder=holder, acquired_at=now)
            )
            return True
    try:
        with engine.begin() as connection:
            connection.execute(insert(TABLE).values(name=name, holder=holder, acquired_at=now, expires_at=expires))
    except IntegrityError:
        return False  # the row exists: another holder has it, or just won the race to create it
    return True


def release(engine: Engine, name: str, holder: str) -> bool:
    """Give the lease up (on a clean shutdown) so a standby can take over at once; False if we did not hold it."""
    with engine.begin() as connection:
        return bool(connection.execute(delete(TABLE).where(TABLE.c.name == name, TABLE.c.holder == holder)).rowcount)


def current(engine: Engine, name: str) -> WorkerLease | None:
    """The lease row as it is (expired or not), for `check` and the logs."""
    with engine.connect() as connection:
        row = connection.execute(select(TABLE).where(TABLE.c.name == name)).mappings().first()
    return None if row is None else WorkerLease(**row)


_holding: dict[str, bool] = {}


def with_lease(rt: Runtime, name: str, ttl: timedelta, holder: str | None = None) -> bool:
    """Acquire or renew `name` for this process; the worker's ticks call it first and skip the work on False.

    A database error counts as not holding the lease (the tick logs it and waits for the next one).
    Changes (became active, became standby) are logged once, not on every tick.
    """
    holder = holder or HOLDER
    try:
        held = acquire(rt.engine(), name, holder, datetime.now(UTC), ttl)
    except SQLAlchemyError as error:
        log.error("lease %s: database error, not working this tick: %s", name, getattr(error, "orig", error))
        held = False
    if _holding.get(name) != held:
        if held:
            log.info("lease %s: active (holder %s)", name, holder)
        else:
            other = None
            try:
                other = current(rt.engine(), name)
            except SQLAlchemyError:
                pass
            log.info("lease %s: standby, held by %s until %s", name, other.holder if other else "?",
                     other.expires_at.isoformat() if other else "?")  # fmt: skip
        _holding[name] = held
    return held
