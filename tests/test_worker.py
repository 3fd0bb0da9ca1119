"""`mailbot run` as the service manager runs it: it polls at once, and stops cleanly on SIGTERM.

On the default SQLite file in its working directory, and on PostgreSQL (conftest's database_url).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "maildir"


def test_worker_polls_and_stops_cleanly_on_sigterm(tmp_path: Path, database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(MAILBOT_MAILDIR=str(SAMPLE), MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"))
    if database_url.startswith("postgresql"):  # SQLite: the built-in default, var/registry.sqlite3 in the cwd
        env.update(MAILBOT_DATABASE__URL=database_url)
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "mailbot.cli", "run"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "poll: " not in log.read_text() and worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "poll: 66 new" in log.read_text(), log.read_text()[-2000:]
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
    text = log.read_text()
    assert returncode == 0, text[-2000:]
    assert "stopping" in text and "Traceback" not in text
    # The sample's mails are old: importing them sends no receipt (receipts.max_age_days).
    # (Reminders may go: whether they are due depends on the wall clock, working day and remind_hour.)
    assert not list((tmp_path / "outbox").glob("*-receipt.eml"))
    assert (tmp_path / "var" / "registry.sqlite3").exists() == database_url.startswith("sqlite")
