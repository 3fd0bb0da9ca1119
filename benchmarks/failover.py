"""Failover of `mailbot run`: how long after a SIGKILL of the active worker the standby takes over (issue 8).

    python benchmarks/failover.py                     # 5 runs on SQLite, poll interval 15 s
    python benchmarks/failover.py --runs 10 --postgres
    python benchmarks/failover.py --poll-seconds 60

Runs the scenario of tests/test_failover.py against a throwaway Dovecot, aiosmtpd and SQLite file (or a fresh
PostgreSQL database with --postgres; needs the `postgresql` server binaries): two real `mailbot run`
processes, 60 mails read and the day's reminders sent by the active one, then 240 more mails, and a SIGKILL of
the active worker once it has recorded 30 % of them. Prints per run, measured from the SIGKILL: when the
standby held the lease (takeover), recorded its first mail, and finished the pass; then min/median/max, and
the window the lease arithmetic promises (0.75 to 1.25 lease, the lease being 0.8 poll interval by default).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll-seconds", type=float, default=15.0)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from servers import (  # type: ignore[import-not-found]
        DovecotServer,
        PostgresServer,
        SmtpBehaviour,
        SmtpServer,
        make_temp_root,
        make_tls_certificate,
    )
    from test_failover import run_failover  # type: ignore[import-not-found]

    from mailbot.settings import ScheduleSettings

    lease = ScheduleSettings(poll_seconds=args.poll_seconds).lease_time.total_seconds()
    work = Path(tempfile.mkdtemp(prefix="mailbot-failover-"))
    dovecot = DovecotServer()
    postgres = PostgresServer() if args.postgres else None
    rows: list[tuple[float, float, float]] = []
    try:
        dovecot.start()
        certificate = make_tls_certificate(make_temp_root("mailbot-failover-tls-"))
        if postgres is not None:
            postgres.init()
            postgres.start()
        engine = "PostgreSQL" if postgres else "SQLite"
        print(f"{engine}, poll interval {args.poll_seconds:g} s, lease {lease:g} s, heartbeat {lease / 4:g} s; "
              f"promised takeover {0.75 * lease:.1f}-{1.25 * lease:.1f} s after the SIGKILL")  # fmt: skip
        print(f"{'run':>3}  {'killed after':>12}  {'takeover':>9}  {'first mail':>10}  {'pass done':>9}")
        for run in range(1, args.runs + 1):
            dovecot.reset_mailbox("INBOX")
            smtp = SmtpServer("plain", certificate, SmtpBehaviour())
            smtp.start()
            directory = work / f"run{run}"
            directory.mkdir()
            url = postgres.url(postgres.create_database()) if postgres else f"sqlite:///{directory / 'r.sqlite3'}"
            try:
                outcome = run_failover(dovecot, smtp, url, directory, kill_fraction=random.uniform(0.2, 0.6),
                                       poll_seconds=args.poll_seconds)  # fmt: skip
            finally:
                smtp.stop()
            rows.append((outcome.takeover_seconds, outcome.resumed_seconds, outcome.finished_seconds))
            print(f"{run:>3}  {outcome.killed_after:>7} mails  {outcome.takeover_seconds:>8.1f}s  "
                  f"{outcome.resumed_seconds:>9.1f}s  {outcome.finished_seconds:>8.1f}s", flush=True)  # fmt: skip
        for label, values in zip(("takeover", "first mail", "pass done"), zip(*rows, strict=True), strict=True):
            print(f"{label:>10}: min {min(values):.1f} s, median {statistics.median(values):.1f} s, "
                  f"max {max(values):.1f} s")  # fmt: skip
    finally:
        dovecot.close()
        if postgres is not None:
            postgres.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
