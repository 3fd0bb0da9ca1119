"""New mail -> receipt with `mailbot run` and IMAP IDLE: how long a secretary waits for her receipt (issue 14).

    python benchmarks/latency.py                  # 10 mails, poll interval 10 minutes
    python benchmarks/latency.py --mails 30 --gap 2

Starts a throwaway Dovecot, aiosmtpd and SQLite registry (tests/servers.py), one real `mailbot run` with the
poll interval at 10 minutes (so only IDLE can bring a receipt sooner), then APPENDs a registrable mail (a member
list from federation staff, re-dated to now) every `--gap` seconds and measures APPEND -> the receipt accepted
by the SMTP server. Prints each figure, then min/median/max.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=10)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between two APPENDs")
    parser.add_argument("--poll-seconds", type=float, default=600.0)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from email import message_from_bytes
    from email.policy import default as default_policy

    from servers import DovecotServer, SmtpBehaviour, SmtpServer, make_temp_root, make_tls_certificate  # type: ignore[import-not-found]
    from test_failover import TZ, start_worker, wait_for, worker_env  # type: ignore[import-not-found]
    from test_idle import receipts, this_years_copy  # type: ignore[import-not-found]

    work = Path(tempfile.mkdtemp(prefix="mailbot-latency-"))
    dovecot = DovecotServer()
    smtp = SmtpServer("plain", make_tls_certificate(make_temp_root("mailbot-latency-tls-")), SmtpBehaviour())
    worker = None
    latencies: list[float] = []
    try:
        dovecot.start()
        smtp.start()
        env = worker_env(dovecot, smtp, f"sqlite:///{work / 'r.sqlite3'}", args.poll_seconds)
        env["MAILBOT_SCHEDULE__REMIND_HOUR"] = "23"
        env["MAILBOT_RECEIPTS__PER_SENDER_PER_HOUR"] = "100000"
        worker = start_worker("latency", env, work)
        wait_for(lambda: worker.lines("^waiting for new mail with IMAP IDLE"), "IDLE to start", 120, [worker])
        time.sleep(1)
        print(f"poll interval {args.poll_seconds:g} s; APPEND -> receipt at the SMTP server:")
        for index in range(1, args.mails + 1):
            raw = this_years_copy(index, datetime.now(TZ))
            message_id = str(message_from_bytes(raw, policy=default_policy)["Message-ID"]).strip()
            appended = time.monotonic()
            dovecot.append(raw)
            wait_for(lambda: message_id in receipts(smtp), f"the receipt of mail {index}", 120, [worker])  # noqa: B023
            latencies.append(time.monotonic() - appended)
            print(f"{index:>4}  {latencies[-1]:.2f} s", flush=True)
            time.sleep(args.gap)
        print(f"min {min(latencies):.2f} s, median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
    finally:
        if worker is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        smtp.stop()
        dovecot.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
