"""`mailbot run` with IMAP IDLE (RFC 2177) against the real Dovecot: new mail is read when it arrives, not at
the next poll. The poll interval is 10 minutes, so a receipt within the test's wait proves the wake-up; the
latency itself is measured by benchmarks/latency.py, not asserted here.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from test_failover import CORPUS, TZ, start_worker, unique_copy, wait_for, worker_env

if TYPE_CHECKING:
    from servers import DovecotServer, SmtpServer

POLL_SECONDS = 600.0  # 10 minutes: only IDLE can bring the receipt within the test's wait
MEMBER_LIST_FROM_FEDERATION = CORPUS / "008_medlemslista-fran-forbundet.eml"  # registered: a receipt is due


def this_years_copy(index: int, now: datetime) -> bytes:
    """The federation's member list of corpus mail 008 as if sent now: its own Message-ID and Date, and the
    year it names (subject, text, file name) this year, so that it is the list in force and gets a receipt.
    The lines of base64 (the .xlsx itself) are left alone."""
    raw = unique_copy(MEMBER_LIST_FROM_FEDERATION.read_bytes(), index, now)
    year = str(now.year).encode()
    lines = raw.split(b"\r\n")
    return b"\r\n".join(line if re.fullmatch(rb"[A-Za-z0-9+/=]{60,}", line) else line.replace(b"2025", year)
                         for line in lines)  # fmt: skip


def receipts(smtp: SmtpServer) -> list[str]:
    """The In-Reply-To of every receipt the SMTP server accepted."""
    found = []
    for mail in smtp.messages:
        message = message_from_bytes(mail.raw, policy=default_policy)
        if str(message["Subject"] or "").startswith("Kvittens"):
            found.append(str(message["In-Reply-To"] or "").strip())
    return found


def test_worker_with_idle_reads_new_mail_at_once_and_stops_cleanly(
    dovecot: DovecotServer, smtp_server: Callable[..., SmtpServer], database_url: str, tmp_path: Path
) -> None:
    smtp = smtp_server("plain")
    env = worker_env(dovecot, smtp, database_url, POLL_SECONDS)
    env["MAILBOT_SCHEDULE__REMIND_HOUR"] = "23"  # no reminder run in the way (and none at all before 23:00)
    worker = start_worker("idle", env, tmp_path)
    try:
        # The first pass runs at once on the empty mailbox (an idle pass logs nothing); IDLE starts beside it.
        wait_for(lambda: worker.lines("^waiting for new mail with IMAP IDLE"), "IDLE to start", 120, [worker])
        time.sleep(1)  # the first pass is done (one STATUS) and IDLE is issued

        raw = this_years_copy(1, datetime.now(TZ))
        message_id = str(message_from_bytes(raw, policy=default_policy)["Message-ID"]).strip()
        appended = time.monotonic()
        dovecot.append(raw)
        wait_for(lambda: message_id in receipts(smtp), "the receipt of the new mail", 120, [worker])
        waited = time.monotonic() - appended
        assert waited < POLL_SECONDS  # not a timing test: without IDLE it would come only at the next poll
        print(f"\nAPPEND -> receipt at the SMTP server: {waited:.1f} s (poll interval {POLL_SECONDS:g} s)")

        # One pass registered the mail: it was recorded once and answered once.
        assert receipts(smtp).count(message_id) == 1
        wait_for(lambda: worker.lines(r"^poll: 1 new \(1 registered"), "the pass's summary line", 30, [worker])
        assert len(worker.lines(r"^poll: \d+ new")) == 1

        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(30)
    assert not [e for e in worker.log() if e["level"] in ("ERROR", "CRITICAL") or "exception" in e]
    assert worker.lines("^stopping")


def test_worker_without_idle_setting_waits_for_the_poll(
    dovecot: DovecotServer, smtp_server: Callable[..., SmtpServer], database_url: str, tmp_path: Path
) -> None:
    """`imap.idle = false`: no IDLE connection, the schedule alone decides (the documented fallback)."""
    smtp = smtp_server("plain")
    env = worker_env(dovecot, smtp, database_url, POLL_SECONDS)
    env.update(MAILBOT_IMAP__IDLE="false", MAILBOT_SCHEDULE__REMIND_HOUR="23")
    worker = start_worker("no-idle", env, tmp_path)
    try:
        wait_for(lambda: worker.lines("^lease worker: active"), "the worker to start", 120, [worker])
        time.sleep(1)  # its first pass is done (one STATUS on the empty mailbox)
        dovecot.append(this_years_copy(2, datetime.now(TZ)))
        time.sleep(5)  # long enough for IDLE to have answered (the test above), far below the poll interval
        assert receipts(smtp) == []
        assert not worker.lines("IDLE")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(60) == 0
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(30)
