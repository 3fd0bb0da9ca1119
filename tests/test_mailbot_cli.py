"""The `mailbot` commands end to end on the embedded default: the bundled sample Maildir, SQLite, a
directory as the outbox. Run as real subprocesses, as an admin would. The demo's tests run again with the
registry on PostgreSQL (MAILBOT_DATABASE__URL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli" if args[0] == "mailbot" else "registry.cli", *args[1:]],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@dataclass
class Demo:
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)  # MAILBOT_DATABASE__URL on PostgreSQL
    first: subprocess.CompletedProcess[str] | None = None  # the first `mailbot demo`, as a person saw it

    def run(self, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return run(args, self.cwd, **self.env, **env)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A working directory where `mailbot demo` has run once: on the built-in default (SQLite at
    var/registry.sqlite3, no configuration at all), then on a PostgreSQL database of this module's own."""
    cwd = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        demo = Demo(cwd)
        result = demo.first = demo.run(["mailbot", "demo"])
        assert result.returncode == 0, result.stderr
        assert (cwd / "var" / "registry.sqlite3").is_file()
        yield demo
        return
    server = request.getfixturevalue("postgres_server")
    name = server.copy_of(request.getfixturevalue("postgres_registry_template"))
    demo = Demo(cwd, {"MAILBOT_DATABASE__URL": server.url(name)})
    result = demo.first = demo.run(["mailbot", "demo"])
    assert result.returncode == 0, result.stderr
    assert not (cwd / "var" / "registry.sqlite3").exists()
    yield demo
    server.drop_database(name)


def test_demo_reads_the_sample_mailbox_and_writes_reminders(demo: Demo) -> None:
    mails = json.loads(demo.run(["registry", "mails", "--json"]).stdout)
    sample = Path(__file__).resolve().parents[1] / "sample" / "maildir"
    on_disk = sum(1 for folder in ("cur", "new") for _ in (sample / folder).iterdir())
    assert len(mails) == on_disk
    assert {m["status"] for m in mails} >= {"registered", "review", "ignored"}
    outbox = list((demo.cwd / "var" / "outbox").glob("*.eml"))
    assert any("reminder" in path.name for path in outbox)


def test_demo_summary_counts_reminders_apart_from_the_admin_summary_and_says_why_no_receipt(demo: Demo) -> None:
    assert demo.first is not None
    out, err = demo.first.stdout, demo.first.stderr
    assert " INFO " not in err and " INFO " not in out  # one log line per mail goes to the file, not the console
    log = (demo.cwd / "var" / "demo.log").read_text(encoding="utf-8")
    assert " INFO mailbot.intake: message-id=" in log
    assert "Loggen över varje inläst mejl finns i var/demo.log" in out
    outbox = [p.name for p in (demo.cwd / "var" / "outbox").glob("*.eml")]
    reminders = sum(1 for name in outbox if name.endswith("-reminder.eml"))
    summaries = sum(1 for name in outbox if name.endswith("-admin_summary.eml"))
    assert reminders >= 1 and summaries == 1
    assert f"{reminders} påminnelser till nätverk och administratörens sammanfattning att skicka 2025-11-21" in out
    registered = int(re.search(r"\((\d+) registrerade, ", out).group(1))  # type: ignore[union-attr]  # by this pass
    receipts = sum(1 for name in outbox if name.endswith("-receipt.eml"))
    assert 0 < receipts < registered
    assert (
        f"Ingen kvittens för {registered - receipts} registrerade mejl: {registered - receipts} kom in mer än 14 "
        "dagar före demokörningens dag (receipts.max_age_days = 14;"
    ) in out


def test_demo_shows_members_meetings_and_minutes_for_all_five_networks(demo: Demo) -> None:
    keys = ("skis", "grundskola", "elevhalsa", "introduktion", "vux")
    commands = [["registry", "members", key, "--as-of", "2025-11-21", "--json"] for key in keys]
    commands += [["registry", "meetings", key, "--year", "2025", "--json"] for key in keys]
    with ThreadPoolExecutor(max_workers=4) as pool:  # ten read-only processes: start-up time is most of it
        outputs = [json.loads(done.stdout) for done in pool.map(demo.run, commands)]
    for key, members, meetings in zip(keys, outputs[:5], outputs[5:], strict=True):
        assert members, key
        assert any(m["status"] == "held" for m in meetings), key
        assert any(m["has_minutes"] for m in meetings), key


def test_second_demo_records_and_sends_nothing_new(demo: Demo) -> None:
    before_mails = json.loads(demo.run(["registry", "mails", "--json"]).stdout)
    before_files = sorted(p.name for p in (demo.cwd / "var" / "outbox").glob("*.eml"))
    result = demo.run(["mailbot", "demo"])
    assert result.returncode == 0, result.stderr
    assert "0 nya" in result.stdout and "Inga nya påminnelser att skicka" in result.stdout
    assert json.loads(demo.run(["registry", "mails", "--json"]).stdout) == before_mails
    assert sorted(p.name for p in (demo.cwd / "var" / "outbox").glob("*.eml")) == before_files


def test_remind_dry_run_lists_one_mail_per_network_behind_and_records_nothing(demo: Demo) -> None:
    result = demo.run(["mailbot", "remind", "--as-of", "2025-12-01", "--dry-run", "--json"])
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
    again = json.loads(demo.run(["mailbot", "remind", "--as-of", "2025-12-01", "--dry-run", "--json"]).stdout)
    assert again == planned  # nothing was recorded by the first dry run


def test_remind_twice_on_the_same_day_sends_nothing_the_second_time(demo: Demo) -> None:
    first = json.loads(demo.run(["mailbot", "remind", "--as-of", "2025-12-02", "--json"]).stdout)
    files = sorted(p.name for p in (demo.cwd / "var" / "outbox").glob("*.eml"))
    second = json.loads(demo.run(["mailbot", "remind", "--as-of", "2025-12-02", "--json"]).stdout)
    assert any(item["queued"] for item in first)
    assert not any(item.get("queued") for item in second)
    assert sorted(p.name for p in (demo.cwd / "var" / "outbox").glob("*.eml")) == files


def test_remind_on_a_public_holiday_sends_nothing(demo: Demo) -> None:
    result = demo.run(["mailbot", "remind", "--as-of", "2025-12-25", "--json"])
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
    assert "not a valid date" in result.stderr


def test_check_reports_each_dependency_as_json(demo: Demo) -> None:
    result = demo.run(["mailbot", "check", "--json"], MAILBOT_SMTP__DIRECTORY="var/outbox",
                      MAILBOT_MAILDIR=str(Path(__file__).resolve().parents[1] / "sample" / "maildir"))  # fmt: skip
    report = json.loads(result.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["configuration"]["ok"] and by_name["database"]["ok"] and by_name["mailbox"]["ok"]
    assert by_name["smtp"]["ok"]
    # The demo ran "as of" 2025, so the last poll is stale today: a monitoring check must say so.
    assert result.returncode == 1 and by_name["last poll"]["ok"] is False


def test_every_demo_receipt_says_what_was_registered(demo: Demo) -> None:
    import email
    import email.policy

    receipts = sorted((demo.cwd / "var" / "outbox").glob("*-receipt.eml"))
    assert receipts
    for path in receipts:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        text = message.get_body(("plain",)).get_content()
        registered = text.split("Det här registrerades:", 1)[1].split("Stämmer något inte?", 1)[0]
        assert registered.strip(), f"{path.name} lists nothing under 'Det här registrerades:'"
