"""`mailbot check`: the configuration, every connection, and when the jobs last succeeded.

Reports; never changes the mailbox or sends mail. No secret appears in a detail. The IMAP client and
aiosmtplib are imported by the probe that uses them, and nothing of the worker's jobs is: on a configuration
without a mailbox or an SMTP server the check starts and ends fast (benchmarks/startup.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import datetime, time, timedelta

from mailbot.working_days import is_working_day
from registry.errors import ExpectedError
from registry.runtime import Runtime


def _check(name: str, probe: Callable[[], str]) -> dict[str, object]:
    try:
        return {"name": name, "ok": True, "detail": probe()}
    except ExpectedError as error:
        return {"name": name, "ok": False, "detail": str(error)}
    except OSError as error:
        return {"name": name, "ok": False, "detail": f"{type(error).__name__}: {error.strerror or error}"}


REMIND_GRACE = timedelta(hours=1)  # the reminder run happens at the first poll tick after remind_hour


def run_checks(rt: Runtime, now: datetime) -> list[dict[str, object]]:
    """Each dependency, the worker lease, and the last good poll and reminder run; `ok` False when one fails
    or is stale (a poll older than 3 poll intervals, no reminder run since the last one was due)."""
    results = [
        _check(
            "configuration",
            lambda: (
                f"settings {rt.settings.settings_file or '(none: defaults and MAILBOT_* variables)'}; "
                f"config directory {rt.settings.networks_dir()}: "
                f"{len(rt.registry.networks)} networks, {len(rt.registry.municipalities)} municipalities"
            ),
        ),
        _check(
            "database",
            lambda: (
                rt.engine(create=False),
                f"{rt.engine(create=False).url.render_as_string(hide_password=True)} at the newest schema",
            )[1],
        ),
        _check("mailbox", lambda: _mailbox(rt)),
        _check("smtp", lambda: _smtp(rt)),
    ]
    if not results[1]["ok"]:
        return results
    from registry.queries import last_runs

    results.append(_worker(rt, now))
    runs = last_runs(rt.reader())
    schedule = rt.settings.schedule
    due = {
        "poll": now - 3 * schedule.poll_interval,
        "remind": last_reminder_due((now - REMIND_GRACE).astimezone(rt.tz), schedule.remind_hour),
    }
    for kind, needed_since in due.items():
        info = runs.get(kind, {})
        last = info.get("last_success")
        fresh = isinstance(last, datetime) and last >= needed_since
        detail = f"last success {last.isoformat(timespec='minutes') if isinstance(last, datetime) else 'never'}"
        if not fresh:
            detail += f", stale: expected one after {needed_since.isoformat(timespec='minutes')}"
        if info.get("last_error"):
            detail += f"; last error: {info['last_error']}"
        results.append({
            "name": f"last {kind}",
            "ok": fresh,
            "detail": detail,
            "last_success": last.isoformat() if isinstance(last, datetime) else None,
            "last_error": info.get("last_error"),
        })  # fmt: skip
    return results


def last_reminder_due(now_local: datetime, remind_hour: int) -> datetime:
    """When the latest reminder run was due: remind_hour on the last working day up to now (today only once
    that hour has passed). Looks back at most 3 weeks (no Swedish break between working days is longer)."""
    day = now_local.date()
    if now_local.hour < remind_hour:
        day -= timedelta(days=1)
    for _ in range(21):
        if is_working_day(day):
            break
        day -= timedelta(days=1)
    return datetime.combine(day, time(remind_hour), tzinfo=now_local.tzinfo)


def _worker(rt: Runtime, now: datetime) -> dict[str, object]:
    """Whether some `mailbot run` holds the worker lease now (it is renewed every quarter of its length)."""
    from registry import lease

    held = lease.current(rt.reader(), lease.WORKER_LEASE)
    if held is None:
        return {"name": "worker", "ok": False, "detail": "no worker holds the lease (is `mailbot run` running?)"}
    alive = held.expires_at >= now
    detail = (
        f"{'held' if alive else 'last held'} by {held.holder} since {held.acquired_at.isoformat(timespec='seconds')}"
    )
    detail += f", {'until' if alive else 'expired'} {held.expires_at.isoformat(timespec='seconds')}"
    return {"name": "worker", "ok": alive, "detail": detail, "holder": held.holder,
            "expires_at": held.expires_at.isoformat()}  # fmt: skip


def _mailbox(rt: Runtime) -> str:
    from mailbot.sources import open_source

    source = open_source(rt.settings)
    with source:
        uidvalidity, uidnext = source.status()
    return f"{source.folder}: readable (UIDVALIDITY {uidvalidity}, next UID {uidnext})"


def _smtp(rt: Runtime) -> str:
    smtp = rt.settings.smtp
    if smtp.directory is not None:
        smtp.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(smtp.directory, os.W_OK):
            raise ExpectedError(f"outbox directory {smtp.directory} is not writable")
        return f"writing mail as files to {smtp.directory}"
    if not smtp.host:
        raise ExpectedError("no SMTP server configured: set smtp.host (or smtp.directory)")
    import aiosmtplib

    async def probe() -> str:
        client = aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port, use_tls=smtp.ssl, start_tls=smtp.starttls and not smtp.ssl,
                                 timeout=smtp.timeout)  # fmt: skip
        try:
            await client.connect()
            if smtp.user:
                await client.login(smtp.user, smtp.resolved_password() or "")
            await client.noop()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise ExpectedError(
                f"SMTP server {smtp.host}:{smtp.port}: {type(error).__name__}: {getattr(error, 'message', error)}"
            ) from None
        finally:
            if client.is_connected:
                await client.quit()
        return f"{smtp.host}:{smtp.port} accepts connections" + (" and the login" if smtp.user else "")

    return asyncio.run(probe())
