"""The README is a contract: every `registry`/`mailbot` command its ```sh blocks show runs, in the order shown,
through the installed console scripts in a subprocess, on a demo registry (`mailbot demo` in a temp directory).

The commands are parsed out of README.md, so the README and this test cannot drift apart."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# Commands that need a server or a person the demo has not got: none so far. A command listed here must say why.
NEEDS_MORE_THAN_THE_DEMO: set[str] = set()


def readme_commands() -> list[list[str]]:
    """Every command line of the README's ```sh blocks that starts `registry` or `mailbot` (also after `&&`),
    without its shell comment."""
    commands: list[list[str]] = []
    for block in re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in ("registry", "mailbot") and " ".join(words) not in NEEDS_MORE_THAN_THE_DEMO:
                    commands.append(words)
    return commands


def test_the_readme_shows_backup_restore_and_forget() -> None:
    shown = {tuple(words[:2]) for words in readme_commands()}
    assert {("registry", "backup"), ("registry", "restore"), ("registry", "forget"), ("mailbot", "demo")} <= shown


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(extra)
    return env


@pytest.fixture(params=["sqlite", "postgres"])
def demo_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield environment()
        return
    server = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield environment(MAILBOT_DATABASE__URL=server.url(name))
    server.drop_database(name)


def test_every_readme_command_runs_on_the_demo_registry(demo_env: dict[str, str], tmp_path: Path) -> None:
    commands = readme_commands()
    assert commands[0][:2] == ["mailbot", "demo"]  # the README's first command makes the registry
    for words in commands:
        if words[0] == "registry" and words[1:2] == ["report"] and "--pdf" in words and not shutil.which("chromium"):
            continue  # exit 1 by design without Chromium (README: "exit 1 if none is installed")
        script = shutil.which(words[0])
        assert script is not None, f"{words[0]} is not installed on PATH"
        done = subprocess.run([script, *words[1:]], cwd=tmp_path, env=demo_env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, (shlex.join(words), done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr, shlex.join(words)
    assert (tmp_path / "var" / "registry-backup").is_file()
    assert (tmp_path / "var" / "moten.ics").is_file()
