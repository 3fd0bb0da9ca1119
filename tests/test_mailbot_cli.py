"""The `mailbot` commands end to end on the embedded default: the bundled sample Maildir, SQLite, a
directory as the outbox. Run as real subprocesses, as an admin would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli" if args[0] == "mailbot" else "registry.cli", *args[1:]],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory where `mailbot demo` has run once."""
    cwd = tmp_path_factory.mktemp("demo")
    result = run(["mailbot", "demo"], cwd)
    assert result.returncode == 0, result.stderr
    return cwd


def test_demo_reads_the_sample_mailbox_and_writes_reminders(demo_dir: Path) -> None:
    mails = json.loads(run(["registry", "mails", "--json"], demo_dir).stdout)
    sample = Path(__file__).resolve().parents[1] / "sample" / "maildir"
    on_disk = sum(1 for folder in ("cur", "new") for _ in (sample / folder).iterdir())
    assert len(mails) == on_disk
    assert {m["status"] for m in mails} >= {"registered", "review", "ignored"}
    outbox = list((demo_dir / "var" / "outbox").glob("*.eml"))
    assert any("reminder" in path.name for path in outbox)


def test_demo_shows_members_meetings_and_minutes_for_all_five_networks(demo_dir: Path) -> None:
    for key in ("skis", "grundskola", "elevhalsa", "introduktion", "vux"):
        members = json.loads(run(["registry", "members", key, "--as-of", "2025-11-21", "--json"], demo_dir).stdout)
        meetings = json.loads(run(["registry", "meetings", key, "--year", "2025", "--json"], demo_dir).stdout)
        assert members, key
        assert any(m["status"] == "held" for m in meetings), key
        assert any(m["has_minutes"] for m in meetings), key


def test_second_demo_records_and_sends_nothing_new(demo_dir: Path) -> None:
    before_mails = json.loads(run(["registry", "mails", "--json"], demo_dir).stdout)
    before_files = sorted(p.name for p in (demo_dir / "var" / "outbox").glob("*.eml"))
    result = run(["mailbot", "demo"], demo_dir)
    assert result.returncode == 0, result.stderr
    assert "0 new" in result.stdout
    assert json.loads(run(["registry", "mails", "--json"], demo_dir).stdout) == before_mails
    assert sorted(p.name for p in (demo_dir / "var" / "outbox").glob("*.eml")) == before_files


def test_remind_dry_run_lists_one_mail_per_network_behind_and_records_nothing(demo_dir: Path) -> None:
    result = run(["mailbot", "remind", "--as-of", "2025-12-01", "--dry-run", "--json"], demo_dir)
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    reminders = [p for p in planned if p["kind"] == "reminder"]
    assert reminders, planned
    networks = [p["network"] for p in reminders]
    assert len(networks) == len(set(networks))
    for item in reminders:
        assert set(item) >= {"network", "to", "cc", "subject", "obligations"}
        assert item["to"] and all("@" in a for a in item["to"])
        assert item["subject"].startswith("Påminnelse")
    again = json.loads(run(["mailbot", "remind", "--as-of", "2025-12-01", "--dry-run", "--json"], demo_dir).stdout)
    assert again == planned  # nothing was recorded by the first dry run


def test_remind_twice_on_the_same_day_sends_nothing_the_second_time(demo_dir: Path) -> None:
    first = json.loads(run(["mailbot", "remind", "--as-of", "2025-12-02", "--json"], demo_dir).stdout)
    files = sorted(p.name for p in (demo_dir / "var" / "outbox").glob("*.eml"))
    second = json.loads(run(["mailbot", "remind", "--as-of", "2025-12-02", "--json"], demo_dir).stdout)
    assert any(item["queued"] for item in first)
    assert not any(item.get("queued") for item in second)
    assert sorted(p.name for p in (demo_dir / "var" / "outbox").glob("*.eml")) == files


def test_remind_on_a_public_holiday_sends_nothing(demo_dir: Path) -> None:
    result = run(["mailbot", "remind", "--as-of", "2025-12-25", "--json"], demo_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_poll_without_a_mailbox_fails_with_one_clear_line(tmp_path: Path) -> None:
    result = run(["mailbot", "poll"], tmp_path)
    assert result.returncode == 1
    assert "no mailbox configured" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["mailbot", "remind", "--as-of", "2025-02-30", "--dry-run"], tmp_path)
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr


def test_check_reports_each_dependency_as_json(demo_dir: Path) -> None:
    result = run(["mailbot", "check", "--json"], demo_dir, MAILBOT_SMTP__DIRECTORY="var/outbox",
                 MAILBOT_MAILDIR=str(Path(__file__).resolve().parents[1] / "sample" / "maildir"))  # fmt: skip
    report = json.loads(result.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["configuration"]["ok"] and by_name["database"]["ok"] and by_name["mailbox"]["ok"]
    assert by_name["smtp"]["ok"]
    # The demo ran "as of" 2025, so the last poll is stale today: a monitoring check must say so.
    assert result.returncode == 1 and by_name["last poll"]["ok"] is False


def test_every_demo_receipt_says_what_was_registered(demo_dir: Path) -> None:
    import email
    import email.policy

    receipts = sorted((demo_dir / "var" / "outbox").glob("*-receipt.eml"))
    assert receipts
    for path in receipts:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        text = message.get_body(("plain",)).get_content()
        registered = text.split("Det här registrerades:", 1)[1].split("Stämmer något inte?", 1)[0]
        assert registered.strip(), f"{path.name} lists nothing under 'Det här registrerades:'"
