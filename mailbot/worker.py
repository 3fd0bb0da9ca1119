"""`mailbot run`: the scheduler (APScheduler 3.x) that polls the mailbox and runs the daily reminders.

A failing tick logs one line and waits for the next one; it never dies and never spins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from mailbot import jobs
from mailbot.remind import is_working_day
from registry import lease
from registry.errors import ExpectedError
from registry.runtime import Runtime

log = logging.getLogger("mailbot.worker")
LEASE = "worker"  # one lease for polling, sending and reminding: the active worker does all three


def lease_ttl(rt: Runtime) -> timedelta:
    """Two poll intervals (at least 2 minutes): a standby takes over within about one interval of its expiry."""
    return timedelta(minutes=max(2 * rt.settings.schedule.poll_minutes, 2))


def with_lease(rt: Runtime, name: str = LEASE, ttl: timedelta | None = None) -> bool:
    """Acquire or renew the lease; False (standby, or database unreachable) means: skip this tick."""
    return lease.with_lease(rt, name, ttl or lease_ttl(rt))


def poll_tick(rt: Runtime) -> None:
    if not with_lease(rt):
        return
    try:
        result = jobs.poll(rt, datetime.now(UTC))
        if not result.report.idle:
            log.info("poll: %d new (%d registered, %d review, %d ignored)", result.report.new,
                     result.report.registered, result.report.review, result.report.ignored)  # fmt: skip
    except ExpectedError as error:
        log.error("poll failed, retrying on the next tick: %s", error)


def remind_tick(rt: Runtime) -> None:
    if not with_lease(rt):
        return
    now = datetime.now(UTC)
    today = now.astimezone(rt.tz).date()
    if not is_working_day(today):
        log.info("remind: %s is not a working day", today)
        return
    try:
        listing = jobs.remind(rt, today, now)
        log.info("remind: %d reminders due", len(listing))
    except ExpectedError as error:
        log.error("reminder run failed, retrying tomorrow: %s", error)


def run_worker(rt: Runtime) -> None:
    settings = rt.settings.schedule
    scheduler = BlockingScheduler(timezone=rt.tz)
    # One instance at a time; missed runs (a long pass, a suspended machine) coalesce into one.
    scheduler.add_job(poll_tick, "interval", minutes=settings.poll_minutes, args=[rt], id="poll",
                      max_instances=1, coalesce=True, next_run_time=datetime.now(rt.tz))  # fmt: skip
    scheduler.add_job(remind_tick, CronTrigger(hour=settings.remind_hour, minute=0, timezone=rt.tz), args=[rt],
                      id="remind", max_instances=1, coalesce=True, misfire_grace_time=3600)  # fmt: skip
    # Renews the lease during a long poll pass too (the pass runs in another thread of the scheduler).
    scheduler.add_job(with_lease, "interval", seconds=lease_ttl(rt).total_seconds() / 4, args=[rt], id="lease",
                      max_instances=1, coalesce=True)  # fmt: skip
    log.info(
        "worker started: poll every %d min, reminders at %02d:00 %s", settings.poll_minutes, settings.remind_hour, rt.tz
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
        scheduler.shutdown(wait=True)
        try:
            lease.release(rt.engine(), LEASE, lease.HOLDER)  # the standby takes over at its next tick
        except Exception as error:  # noqa: BLE001 - shutting down anyway; the lease expires by itself
            log.warning("could not release the lease: %s", error)
