"""`mailbot run`: the scheduler (APScheduler 3.x) that polls the mailbox and runs the daily reminders.

A failing tick logs one line and waits for the next one; it never dies and never spins. Nothing is polled,
sent or reminded without holding the worker lease.

Every `mailbot run` against the same database runs the same two jobs; the lease decides which one works:

1. `heartbeat`, every L/4: take or renew the lease row "worker" (registry/lease.py) until now + L. The active
   worker renews it; a standby reads it, and once it has expired takes it over and starts a poll at once (it
   does not wait for its own poll tick). It renews the lease during a pass too, from its own thread: on SQLite
   it waits for the pass's next commit (every transaction takes the write lock at BEGIN IMMEDIATE, and the
   intake commits at least every `intake.batch_seconds` and before it waits for a slow mail), so a pass of any
   length, and a single slow mail, keep the lease.
2. `poll_tick`, every P: if this worker holds the lease, one intake pass and the receipts it queued
   (jobs.poll), the dead-man's ping (mailbot/monitoring.py), then the day's reminders when they are due: the
   first tick at or after `remind_hour` on a working day whose reminder run has not succeeded yet, so a worker
   that was down, or standby, at that hour catches up. Reminders come after the pass, so a mail that arrived
   overnight is registered before anyone is reminded of it. Between mails and before sending, the pass makes
   sure the lease is still its own (lease.ensure_held) and stops if not; the next pass, this worker's or the
   standby's, resumes at the next mail. The day's run also queues the yearly report in January
   (mailbot/yearly_report.py) and purges raw mail past `retention.raw_mail_days` (registry/retention.py).

Failover, with P the poll interval and L the lease (`schedule.lease_seconds`, default 0.8 P, at least 10 s):
the active worker renewed its lease at most L/4 before it died; the lease expires L after that renewal; a
standby's heartbeat comes at most L/4 after the expiry and polls at once. So the standby takes over between
0.75 L and 1.25 L after the active one dies: between 0.6 P and P with the default L, i.e. within one poll
interval (for P of at least 12.5 s; below that the 10 s floor of L rules). Measured with P = 15 s (L = 12 s):
see benchmarks/failover.py and the README. The active worker trusts its lease only until 0.75 L after its
last renewal, so one whose renewals stall stops L/4 before a standby may start; that quarter of L is also
the clock skew the machines may have. A single mail that takes longer than 0.75 L to process would let the
standby in, were it not renewed from the heartbeat's thread; the unique sha256 of each mail and the outbox's
claims would keep even that from doing anything twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from mailbot import jobs, monitoring
from mailbot.idle import IdleWatcher
from mailbot.remind import is_working_day
from registry import lease
from registry.errors import ExpectedError
from registry.runtime import Runtime

log = logging.getLogger("mailbot.worker")
LEASE = lease.WORKER_LEASE


def reminders_due(now_local: datetime, remind_hour: int, last_run_day: date | None) -> bool:
    """Whether the day's reminder run is due at `now_local`: a working day, at or after `remind_hour`, and no
    run has succeeded yet today (`last_run_day` is the local date of the last successful run)."""
    today = now_local.date()
    return is_working_day(today) and now_local.hour >= remind_hour and (last_run_day is None or last_run_day < today)


class Worker:
    """One `mailbot run` process: its runtime, its scheduler, and whether it is the active worker."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.schedule = rt.settings.schedule
        self.scheduler = BlockingScheduler(timezone=rt.tz)
        self._working = threading.Lock()  # held by a pass (and the reminders after it), or by a heartbeat
        self._renew_at = 0.0  # time.monotonic() of the next renewal due during a pass

    def _renew(self) -> bool:
        was_active = lease.still_held(LEASE)
        held = lease.with_lease(self.rt, LEASE, self.schedule.lease_time)
        self._renew_at = time.monotonic() + self.schedule.lease_time.total_seconds() / 4
        if held and not was_active:
            self.take_over_sending()
        return held

    def take_over_sending(self) -> None:
        """On becoming the active worker: the receipts and reminders a dead holder left in 'sending' go at once
        (the holder it took the lease from, or a process of this machine that no longer runs)."""
        from mailbot.outbox import take_over_sending

        try:
            taken = take_over_sending(self.rt.engine(), datetime.now(UTC), lease.taken_over_from.get(LEASE))
        except SQLAlchemyError as error:
            log.error(
                "taking over unsent mail failed, it waits for its claim to expire: %s", getattr(error, "orig", error)
            )
            return
        if taken:
            log.info("took over %d mails a previous worker left in 'sending'", taken)

    def heartbeat(self) -> bool:
        """Take or renew the lease; on a takeover, poll at once. During a pass (which only checks the lease,
        `check_lease`) the renewal is all it does."""
        if not self._working.acquire(blocking=False):
            return self._renew()
        try:
            was_active = lease.still_held(LEASE)
            held = self._renew()
            if held and not was_active:
                self.poll_now()
            return held
        finally:
            self._working.release()

    def keep_lease(self) -> None:
        """Between two steps of the work after a pass (publication, reminders): renew the lease when a quarter of
        it has passed, and raise LeaseLost if this worker can no longer be sure it holds it."""
        if time.monotonic() >= self._renew_at:
            self._renew()
        lease.ensure_held(LEASE)

    @staticmethod
    def check_lease() -> None:
        """Between two mails of a pass and around each send: raise LeaseLost if this worker can no longer be sure
        it holds the lease. No database call: the pass may hold an open transaction (on SQLite the write lock),
        and the heartbeat renews the lease from its own thread meanwhile."""
        lease.ensure_held(LEASE)

    def poll_tick(self) -> None:
        with self._working:
            if self._renew():
                self._poll_and_remind()

    def poll_now(self) -> None:
        """A pass at once (new mail announced by IDLE, or a takeover), besides the regular poll job.

        A one-off job of its own, not the poll job moved: a run of the poll job while a pass is running would
        be skipped (max_instances=1). This one waits for the running pass (`_working`) and then starts another,
        which finds whatever arrived after the first had looked; at worst it is an idle pass (one STATUS).
        Announcements while it is still pending replace it, so they never pile up; one may wait while an earlier
        one runs (max_instances=2, else the scheduler would skip it)."""
        self.scheduler.add_job(self.poll_tick, id="poll-now", replace_existing=True, max_instances=2,
                               misfire_grace_time=None)  # fmt: skip

    def _poll_and_remind(self) -> None:
        monitor = self.rt.settings.monitoring
        try:
            result = jobs.poll(self.rt, datetime.now(UTC), check_lease=self.check_lease)
        except lease.LeaseLost as error:
            log.warning("poll stopped: %s", error)  # the standby that took over carries on
            return
        except (ExpectedError, SQLAlchemyError) as error:
            log.error("poll failed, retrying on the next tick: %s", getattr(error, "orig", None) or error)
            monitoring.ping(monitor, failure=f"poll failed: {error}")
            return
        except Exception as error:  # an unexpected bug: logged with its traceback, and the tick is over
            log.exception("poll failed unexpectedly, retrying on the next tick")
            monitoring.ping(monitor, failure=f"poll failed: {type(error).__name__}: {error}")
            return
        report = result.report
        if not report.idle:
            sent = len(result.drained.sent) if result.drained else 0
            log.info("poll: %d new (%d registered, %d review, %d ignored), %d already recorded, %d mails sent",
                     report.new, report.registered, report.review, report.ignored, report.already_recorded,
                     sent)  # fmt: skip
        monitoring.ping(monitor)
        self.publish(datetime.now(UTC))
        self.remind_if_due(datetime.now(UTC))

    def publish(self, now: datetime, daily: bool = False) -> None:
        """The public site after a pass (new or approved minutes, a failed upload to retry), and daily."""
        try:
            self.keep_lease()
            result = jobs.publish_if_due(self.rt, now, daily=daily)
            if result.built:
                log.info("publish: site rebuilt (%d minutes published for the first time)", len(result.first_time))
        except lease.LeaseLost as error:
            log.warning("publish not started: %s", error)
        except (ExpectedError, SQLAlchemyError, OSError) as error:
            log.error("publish failed, retrying after the next pass: %s", getattr(error, "orig", None) or error)

    def remind_if_due(self, now: datetime) -> None:
        engine = self.rt.engine()
        local = now.astimezone(self.rt.tz)
        try:
            last = jobs.last_runs(engine).get("remind", {}).get("last_success")
            last_day = last.astimezone(self.rt.tz).date() if isinstance(last, datetime) else None
            if not reminders_due(local, self.schedule.remind_hour, last_day):
                return
            self.keep_lease()
            listing = jobs.remind(self.rt, local.date(), now)
            log.info(
                "remind: %d reminders due, %d newly queued", len(listing), sum(bool(i.get("queued")) for i in listing)
            )
            self.keep_lease()
            jobs.purge_old_raw_mail(self.rt, now)  # once a day, with the reminders
            self.publish(now, daily=True)
        except lease.LeaseLost as error:
            log.warning("reminder run not started: %s", error)
        except (ExpectedError, SQLAlchemyError) as error:
            log.error("reminder run failed, retrying on the next tick: %s", getattr(error, "orig", None) or error)
            try:
                jobs.mark_run(engine, "remind", now, str(error))
            except SQLAlchemyError:
                pass  # the database is what failed; the log line above says so

    def run(self) -> None:
        self.rt.engine(create=True)  # the worker is one of the commands that makes a new registry
        schedule = self.schedule
        poll_seconds = schedule.poll_interval.total_seconds()
        lease_seconds = schedule.lease_time.total_seconds()
        # One instance of each job at a time; missed runs (a long pass, a busy or suspended machine) coalesce
        # into one that runs however late it is (APScheduler's default would drop a run more than 1 s late).
        self.scheduler.add_job(self.poll_tick, "interval", seconds=poll_seconds, id="poll", max_instances=1,
                               coalesce=True, misfire_grace_time=None, next_run_time=datetime.now(self.rt.tz))  # fmt: skip
        # Renews the lease during a long pass too (the pass runs in another thread of the scheduler).
        self.scheduler.add_job(self.heartbeat, "interval", seconds=lease_seconds / 4, id="heartbeat",
                               max_instances=1, coalesce=True, misfire_grace_time=None)  # fmt: skip
        log.info("worker started: poll every %gs, lease %gs (a standby takes over within %gs), reminders from "
                 "%02d:00 %s on working days", poll_seconds, lease_seconds, 1.25 * lease_seconds,
                 schedule.remind_hour, self.rt.tz)  # fmt: skip
        if not self.rt.debug:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per job run
        watcher = self._idle_watcher()
        try:
            self.scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            log.info("stopping")
            if watcher is not None:
                watcher.stop()
            self.scheduler.shutdown(wait=True)
            try:
                lease.release(self.rt.engine(), LEASE, lease.HOLDER)  # the standby takes over at its next heartbeat
            except SQLAlchemyError as error:  # shutting down anyway; the lease expires by itself
                log.warning("could not release the lease: %s", error)

    def _idle_watcher(self) -> IdleWatcher | None:
        """Start waiting for new mail with IMAP IDLE, when the mailbox is IMAP and `imap.idle` is on."""
        settings = self.rt.settings
        if settings.maildir is not None or not settings.imap.host or not settings.imap.idle:
            return None
        watcher = IdleWatcher(settings.imap, self.poll_now)
        watcher.start()
        return watcher


def run_worker(rt: Runtime) -> None:
    Worker(rt).run()
