"""`mailbot check --json`: each dependency, the worker lease, the last good poll and reminder run, and a
non-zero exit when one fails or is stale, for Nagios/Zabbix-style checks (issue 8)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from mailbot.health import last_reminder_due
from registry import lease

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
TZ = ZoneInfo("Europe/Stockholm")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")} | env
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A registry (SQLite, then PostgreSQL) where a poll and a reminder run have just succeeded and a worker
    holds the lease."""
    maildir = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (maildir / folder).mkdir(parents=True)
    shutil.copy(CORPUS / "001_skis-medlemmar-xlsx-titelrad.eml", maildir / "new" / "1.eml")
    settings = {
        "MAILBOT_MAILDIR": str(maildir),
        "MAILBOT_SMTP__DIRECTORY": str(tmp_path / "outbox"),
        "MAILBOT_DATABASE__URL": database_url,
    }
    for command in (["poll"], ["remind"]):
        done = run(command, tmp_path, settings)
        assert done.returncode == 0, done.stderr
    engine = create_engine(settings["MAILBOT_DATABASE__URL"])
    assert lease.acquire(engine, "worker", "mailbot-1:4242:abc", datetime.now(UTC), timedelta(minutes=4))
    engine.dispose()
    return settings


def check(tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, dict[str, object]]]:
    done = run(["check", "--json"], tmp_path, env)
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0)
    return done.returncode, {c["name"]: c for c in report["checks"]}


def test_all_fresh_exits_zero_and_lists_each_dependency(tmp_path: Path, env: dict[str, str]) -> None:
    status, checks = check(tmp_path, env)
    assert status == 0, checks
    assert list(checks) == ["configuration", "database", "mailbox", "smtp", "worker", "last poll", "last remind"]
    assert all(c["ok"] for c in checks.values())
    assert "mailbot-1:4242:abc" in str(checks["worker"]["detail"])
    for kind in ("poll", "remind"):
        last = datetime.fromisoformat(str(checks[f"last {kind}"]["last_success"]))
        assert datetime.now(UTC) - last < timedelta(minutes=5)


def set_last_success(env: dict[str, str], kind: str, moment: datetime) -> None:
    engine = create_engine(env["MAILBOT_DATABASE__URL"])
    with engine.begin() as connection:
        connection.execute(text("UPDATE run_log SET last_success = :at WHERE kind = :kind"),
                           {"at": moment.astimezone(UTC).replace(tzinfo=None), "kind": kind})  # fmt: skip
    engine.dispose()


def test_a_stale_poll_exits_one(tmp_path: Path, env: dict[str, str]) -> None:
    set_last_success(env, "poll", datetime.now(UTC) - timedelta(minutes=16))  # three 5-minute intervals
    status, checks = check(tmp_path, env)
    assert status == 1
    assert not checks["last poll"]["ok"] and "stale" in str(checks["last poll"]["detail"])
    assert checks["last remind"]["ok"]


def test_a_missed_reminder_run_exits_one(tmp_path: Path, env: dict[str, str]) -> None:
    set_last_success(env, "remind", datetime.now(UTC) - timedelta(days=8))
    status, checks = check(tmp_path, env)
    assert status == 1 and not checks["last remind"]["ok"] and checks["last poll"]["ok"]


def test_no_worker_holding_the_lease_exits_one(tmp_path: Path, env: dict[str, str]) -> None:
    engine = create_engine(env["MAILBOT_DATABASE__URL"])
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM worker_lease"))
    engine.dispose()
    status, checks = check(tmp_path, env)
    assert status == 1 and not checks["worker"]["ok"] and "mailbot run" in str(checks["worker"]["detail"])


def test_an_unreachable_mailbox_exits_one_with_the_reason(tmp_path: Path, env: dict[str, str]) -> None:
    status, checks = check(tmp_path, env | {"MAILBOT_MAILDIR": str(tmp_path / "missing")})
    assert status == 1 and not checks["mailbox"]["ok"] and checks["database"]["ok"]


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-11-23 09:30", "2026-11-23 08:00"),  # Monday, after the hour: today's run
        ("2026-11-23 07:59", "2026-11-20 08:00"),  # Monday, before it: Friday's
        ("2026-11-22 12:00", "2026-11-20 08:00"),  # Sunday: Friday's
        ("2026-04-07 07:00", "2026-04-02 08:00"),  # Tuesday after Easter: Maundy Thursday's (5 days)
        ("2026-12-28 10:00", "2026-12-28 08:00"),
        ("2026-12-28 06:00", "2026-12-23 08:00"),  # julafton, juldagen, annandag jul, a weekend
    ],
)
def test_the_last_reminder_run_due_skips_weekends_and_holidays(now: str, due: str) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=TZ)
    assert last_reminder_due(moment, 8) == datetime.fromisoformat(due).replace(tzinfo=TZ)
