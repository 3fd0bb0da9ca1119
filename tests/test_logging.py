"""`--log-format json` on both CLIs: stderr carries one JSON object per line and nothing else (issue 8)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from registry.runtime import JsonLogFormatter

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    environment.update(env)
    module = "mailbot.cli" if args[0] == "mailbot" else "registry.cli"
    return subprocess.run([sys.executable, "-m", module, *args[1:]], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def json_lines(stderr: str) -> list[dict[str, object]]:
    """Every line of stderr as JSON (fails on any line that is not one JSON object with the four keys)."""
    entries = []
    for line in stderr.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict) and {"ts", "level", "logger", "message"} <= set(entry), line
        assert datetime.fromisoformat(str(entry["ts"])).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        entries.append(entry)
    return entries


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """A Maildir with a handful of corpus mails (registered ones, one for review, one broken MIME)."""
    root = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (root / folder).mkdir(parents=True)
    for index, path in enumerate(sorted(CORPUS.glob("*.eml"))[:8]):
        shutil.copy(path, root / "new" / f"{index}.eml")
    return root


def test_poll_logs_only_json_lines(tmp_path: Path, maildir: Path) -> None:
    result = run(["mailbot", "--log-format", "json", "poll", "--json"], tmp_path, MAILBOT_MAILDIR=str(maildir),
                 MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = json_lines(result.stderr)
    recorded = [e for e in entries if str(e["message"]).startswith("message-id=")]
    assert len(recorded) == 8 and all(e["level"] == "INFO" and e["logger"] == "mailbot.intake" for e in recorded)
    assert json.loads(result.stdout)["new"] == 8  # stdout is still the command's own JSON document


def test_a_failing_command_says_why_in_one_json_line(tmp_path: Path) -> None:
    result = run(["mailbot", "--log-format", "json", "poll"], tmp_path)
    assert result.returncode == 1
    [entry] = json_lines(result.stderr)
    assert entry["level"] == "ERROR" and "no mailbox configured" in str(entry["message"])


def test_registry_cli_takes_the_format_from_the_settings(tmp_path: Path, maildir: Path) -> None:
    env = {"MAILBOT_MAILDIR": str(maildir), "MAILBOT_SMTP__DIRECTORY": str(tmp_path / "outbox")}
    assert run(["mailbot", "poll"], tmp_path, **env).returncode == 0
    result = run(["registry", "members", "no-such-network"], tmp_path, MAILBOT_LOGGING__FORMAT="json", **env)
    assert result.returncode == 2
    [entry] = json_lines(result.stderr)
    assert "unknown network" in str(entry["message"])


def test_the_option_wins_over_the_settings(tmp_path: Path) -> None:
    result = run(["registry", "--log-format", "text", "members", "x"], tmp_path, MAILBOT_LOGGING__FORMAT="json")
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown network")


def test_bad_settings_are_reported_although_they_name_the_log_format(tmp_path: Path) -> None:
    result = run(["registry", "networks"], tmp_path, MAILBOT_LOGGING__FORMAT="xml")
    assert result.returncode == 1
    assert "logging.format" in result.stderr and "Traceback" not in result.stderr


def test_an_exception_is_kept_with_its_traceback_in_the_object() -> None:
    try:
        raise ValueError("trasig bilaga")
    except ValueError:
        record = logging.LogRecord("mailbot.intake", logging.ERROR, __file__, 1, "message-id=%s: failed", ("<a@b>",),
                                   sys.exc_info())  # fmt: skip
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["message"] == "message-id=<a@b>: failed" and entry["level"] == "ERROR"
    assert "Traceback" in entry["exception"] and "ValueError: trasig bilaga" in entry["exception"]
    assert "\n" not in JsonLogFormatter().format(record)
