"""What an admin relies on, through the installed console scripts in a subprocess: a wrong directory or a wrong
file never looks like a real, empty registry; a dismissed review mail shows as `ignored`; usage errors exit 2.

The missing/empty/foreign/corrupt file cases are SQLite's own (a file path); the PostgreSQL equivalent, a
database without the registry's schema, is test_database_without_a_registry_is_refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REGISTRY_COMMANDS = [
    ["status"],
    ["review"],
    ["mails"],
    ["networks"],  # reads only the configuration, but still names the registry it would use? no: see below
    ["members", "skis"],
    ["search", "protokoll"],
    ["forget", "x@example.se", "--yes"],
    ["purge-raw-mail", "--yes"],
    ["backup", "--out", "copy"],
]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = shutil.which(args[0])
    assert script is not None, f"{args[0]} is not installed"
    return subprocess.run([script, *args[1:]], cwd=cwd, env=env or environment(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "sqlalche.me" not in done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("command", [c for c in REGISTRY_COMMANDS if c[0] != "networks"], ids=lambda c: c[0])
def test_registry_command_in_a_directory_without_a_registry_fails_and_creates_nothing(
    command: list[str], tmp_path: Path
) -> None:
    done = run(["registry", *command], tmp_path)
    assert_refused(done, str(tmp_path / "var" / "registry.sqlite3"), "--config", "MAILBOT_DATABASE__URL")
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("content", "what"),
    [(b"", "empty file"), (b"name,email\nAnna,anna@skovde.se\n", "not a SQLite file")],
    ids=["empty", "foreign"],
)
def test_empty_or_foreign_file_is_refused(content: bytes, what: str, tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "registry.sqlite3").write_bytes(content)
    for command in (["status"], ["review"]):
        assert_refused(run(["registry", *command], tmp_path), what, "MAILBOT_DATABASE__URL")
    assert (tmp_path / "var" / "registry.sqlite3").read_bytes() == content  # untouched, not migrated


def test_sqlite_database_that_is_not_a_registry_is_refused(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "other.db") as connection:
        connection.execute("CREATE TABLE t (x)")
    env = environment(MAILBOT_DATABASE__URL=f"sqlite:///{tmp_path / 'other.db'}")
    assert_refused(run(["registry", "status"], tmp_path, env), "holds no registry", "MAILBOT_DATABASE__URL")


def test_database_without_a_registry_is_refused(fresh_postgres_url: str, tmp_path: Path) -> None:
    env = environment(MAILBOT_DATABASE__URL=fresh_postgres_url)
    assert_refused(run(["registry", "status"], tmp_path, env), "holds no registry", "MAILBOT_DATABASE__URL")


def test_corrupt_registry_names_registry_restore(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "registry.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(3 * 4096))
    assert_refused(run(["registry", "status"], tmp_path), "corrupt", "registry restore")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("demo")
    done = run(["mailbot", "demo"], cwd)
    assert done.returncode == 0, done.stderr
    return cwd


def test_dismissed_review_mail_shows_as_ignored_with_its_note(demo_dir: Path) -> None:
    waiting = json.loads(run(["registry", "review", "--json"], demo_dir).stdout)
    mail_id = waiting[0]["id"]
    done = run(["registry", "review", "--resolve", str(mail_id), "--dismiss", "--note", "dubblett"], demo_dir)
    assert done.returncode == 0, done.stderr
    mails = {m["id"]: m for m in json.loads(run(["registry", "mails", "--json"], demo_dir).stdout)}
    assert mails[mail_id]["status"] == "ignored"
    assert mail_id not in {m["id"] for m in json.loads(run(["registry", "review", "--json"], demo_dir).stdout)}
    exported = run(["registry", "review", "--resolve", str(mail_id), "--dismiss"], demo_dir)
    assert exported.returncode == 1  # already decided: not in review any more


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["review", "--resolve", "5", "--network", "skis", "--kind", "nonsense"], "nonsense"),
        (["status", "--as-of", "2025-02-30"], "not a valid date"),
        (["status", "--as-of", "20251121"], "YYYY-MM-DD"),
        (["meetings", "vux", "--year", "25"], "--year"),
        (["members", "nosuchnetwork"], "nosuchnetwork"),
    ],
    ids=["unknown-kind", "feb-30", "basic-iso", "two-digit-year", "unknown-network"],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, demo_dir: Path) -> None:
    done = run(["registry", *args], demo_dir)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_meeting_after_as_of_is_planned_not_held(demo_dir: Path) -> None:
    early = json.loads(run(["registry", "meetings", "vux", "--as-of", "2025-01-01", "--json"], demo_dir).stdout)
    late = json.loads(run(["registry", "meetings", "vux", "--as-of", "2025-12-31", "--json"], demo_dir).stdout)
    assert any(m["status"] == "held" for m in late)
    assert all(m["status"] != "held" for m in early if m["date"] > "2025-01-01")


def test_help_shows_flags_as_flags_and_kind_choices() -> None:
    done = run(["registry", "--help"], Path.cwd())
    debug_line = next(line for line in done.stdout.splitlines() if "--debug" in line)
    assert "<bool>" not in debug_line
    review_help = run(["registry", "review", "--help"], Path.cwd(), environment(COLUMNS="200")).stdout
    kind_line = next(line for line in review_help.splitlines() if "--kind" in line)
    assert "minutes" in kind_line and "member_list" in kind_line
