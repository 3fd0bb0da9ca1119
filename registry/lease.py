"""A lease row per kind of work, so only one `mailbot run` polls, sends and reminds at a time.

The active worker renews its lease on every tick; a standby's acquire fails until the lease has expired,
then the first standby to ask takes it over. Plain SQL (one conditional UPDATE, else one INSERT against the
primary key), so it works the same on SQLite and PostgreSQL.

Expiry is compared with the caller's clock: the machines that share a database need synchronised clocks
(NTP), and the TTL must be well above any clock skew. The holder itself stops trusting its lease a quarter of
the TTL before the expiry it wrote (measured on its monotonic clock from before the write), so a holder whose
renewals stall (a hung database, a paused process) stops working before a standby may take over.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from registry.db import reader
from registry.errors import ExpectedError
from registry.tables import worker_lease

if TYPE_CHECKING:
    from registry.runtime import Runtime

log = logging.getLogger("registry.lease")
TABLE = worker_lease  # the Core table: `mailbot check` reads the lease without the ORM
# The lease of `mailbot run`: one for polling, sending and reminding, the active worker does all three.
WORKER_LEASE = "worker"


def new_holder_id() -> str:
    """hostname:pid:uuid, unique per process (and per call, so two holders in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


HOLDER = new_holder_id()  # this process's identity as a lease holder


class LeaseLost(ExpectedError):
    """This process no longer holds (or can no longer be sure it holds) the lease: stop the work in hand."""


SAFETY = 0.25  # the part of the TTL a holder gives up at the end of its lease (covers clock skew and slow writes)
_holding: dict[str, bool] = {}
_trusted_until: dict[tuple[str, str], float] = {}  # (name, holder) -> time.monotonic() deadline
# name -> the holder whose lease this process took over at its last acquire (None: a renewal, or a new row)
taken_over_from: dict[str, str | None] = {}


def holder_is_gone(holder: str | None) -> bool:
    """True only when `holder` (host:pid:uuid) was a process on this machine that no longer runs. A holder on
    another machine, this process, or one whose id cannot be read counts as alive: only the lease tells."""
    if not holder:
        return False
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs, under another user
        return False
    return False


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease `name` until now + ttl; False when another holder's lease has not expired.

    Atomic: the UPDATE only matches our own row or an expired one (on PostgreSQL a concurrent UPDATE waits
    for the row lock and re-checks the condition; SQLite serialises writers), and a missing row is created by
    an INSERT whose primary key lets only one of two racing processes win.
    """
    expires = now + ttl
    with reader(engine).connect() as connection:
        held = connection.execute(select(TABLE.c.holder, TABLE.c.expires_at).where(TABLE.c.name == name)).first()
    taken_over_from[name] = None
    if held is not None and held.holder != holder and held.expires_at >= now:
        # Another holder's live lease: decided by a read, so a standby writes nothing while the active worker
        # lives (on SQLite any commit makes the holder's open read-then-write transactions fail).
        return False
    with engine.begin() as connection:
        taken = connection.execute(
            update(TABLE)
            .where(TABLE.c.name == name, or_(TABLE.c.holder == holder, TABLE.c.expires_at < now))
            .values(expires_at=expires)
        )
        if taken.rowcount == 1:
            # A takeover (not a renewal) also records the new holder and when it took over.
            replaced = connection.execute(
                update(TABLE)
                .where(TABLE.c.name == name, TABLE.c.holder != holder)
                .values(holder=holder, acquired_at=now)
            )
            if replaced.rowcount == 1 and held is not None and held.holder != holder:
                taken_over_from[name] = held.holder  # its lease ran out: it is dead (or stalled past its lease)
            return True
    try:
        with engine.begin() as connection:
            connection.execute(insert(TABLE).values(name=name, holder=holder, acquired_at=now, expires_at=expires))
    except IntegrityError:
        return False  # the row exists: another holder has it, or just won the race to create it
    return True


def release(engine: Engine, name: str, holder: str) -> bool:
    """Give the lease up (on a clean shutdown) so a standby can take over at once; False if we did not hold it."""
    _trusted_until.pop((name, holder), None)
    with engine.begin() as connection:
        return bool(connection.execute(delete(TABLE).where(TABLE.c.name == name, TABLE.c.holder == holder)).rowcount)


def current(engine: Engine, name: str) -> Row[Any] | None:
    """The lease row as it is (expired or not), for `check` and the logs: name, holder, acquired_at, expires_at."""
    with reader(engine).connect() as connection:
        return connection.execute(select(TABLE).where(TABLE.c.name == name)).first()


def still_held(name: str, holder: str | None = None) -> bool:
    """True while this process may act on the lease `name`: its last renewal has not run out (no database call)."""
    return time.monotonic() < _trusted_until.get((name, holder or HOLDER), float("-inf"))


def ensure_held(name: str, holder: str | None = None) -> None:
    """Raise LeaseLost unless `still_held`: called between mails and before sending, so a worker whose lease has
    lapsed stops before another one can take over."""
    if not still_held(name, holder):
        raise LeaseLost(f"lease {name}: no longer held by this process (renewal lapsed or taken over); stopping")


def with_lease(rt: Runtime, name: str, ttl: timedelta, holder: str | None = None) -> bool:
    """Acquire or renew `name` for this process; the worker's ticks call it first and skip the work on False.

    A database error counts as not holding the lease (the tick logs it and waits for the next one).
    Changes (became active, became standby) are logged once, not on every tick.
    """
    holder = holder or HOLDER
    asked = time.monotonic()  # before the write: the expiry written is at least this far ahead
    try:
        held = acquire(rt.engine(), name, holder, datetime.now(UTC), ttl)
    except SQLAlchemyError as error:
        # The expiry written last still keeps the others out, so the work in hand may go on until
        # `still_held` runs out by itself; this tick starts nothing new.
        log.error("lease %s: database error, not working this tick: %s", name, getattr(error, "orig", error))
        held = False
    else:
        if held:
            _trusted_until[(name, holder)] = asked + ttl.total_seconds() * (1 - SAFETY)
        else:
            _trusted_until.pop((name, holder), None)  # someone else holds it: stop at once
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
