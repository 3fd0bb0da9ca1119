"""`mailbot check`: the configuration, every connection, and when the jobs last succeeded.

Reports; never changes the mailbox or sends mail. No secret appears in a detail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import datetime, timedelta

import aiosmtplib

from mailbot.sources import open_source
from registry.errors import ExpectedError
from registry.runtime import Runtime


def _check(name: str, probe: Callable[[], str]) -> dict[str, object]:
    try:
        return {"name": name, "ok": True, "detail": probe()}
    except ExpectedError as error:
        return {"name": name, "ok": False, "detail": str(error)}
    except OSError as error:
        return {"name": name, "ok": False, "detail": f"{type(error).__name__}: {error.strerror or error}"}


def run_checks(rt: Runtime, now: datetime) -> list[dict[str, object]]:
    results = [
        _check(
            "configuration",
            lambda: f"{len(rt.registry.networks)} networks, {len(rt.registry.municipalities)} municipalities",
        ),
        _check(
            "database",
            lambda: (rt.engine(), f"{rt.engine().url.render_as_string(hide_password=True)} at the newest schema")[1],
        ),
        _check("mailbox", lambda: _mailbox(rt)),
        _check("smtp", lambda: _smtp(rt)),
    ]
    if results[1]["ok"]:
        from mailbot.jobs import last_runs

        runs = last_runs(rt.engine())
        stale_after = {"poll": timedelta(minutes=rt.settings.schedule.poll_minutes * 3), "remind": timedelta(days=4)}
        for kind, limit in stale_after.items():
            info = runs.get(kind)
            last = info["last_success"] if info else None
            fresh = isinstance(last, datetime) and now - last <= limit
            detail = f"last success {last.isoformat(timespec='minutes') if isinstance(last, datetime) else 'never'}"
            if info and info.get("last_error"):
                detail += f"; last error: {info['last_error']}"
            results.append({"name": f"last {kind}", "ok": fresh, "detail": detail})
    return results


def _mailbox(rt: Runtime) -> str:
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
