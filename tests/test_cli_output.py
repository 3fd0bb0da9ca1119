"""What the admin's read commands print on the demo registry, byte for byte, against the files of
tests/fixtures/cli_output/ (stdout, stderr and exit status of each).

Guards the start-up work of issue 14 (queries through Core tables, a cheaper start): a faster command must print
what it printed before. Run through the installed console scripts, in a directory made by `mailbot demo`, whose
mails and clock are fixed (sample/as_of.txt); every command that would read today's date is given one. After an intended change of output, write the files again with
MAILBOT_TEST_UPDATE_OUTPUT=1 and read the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = Path(__file__).resolve().parent / "fixtures" / "cli_output"
UPDATE = os.environ.get("MAILBOT_TEST_UPDATE_OUTPUT") == "1"
NETWORKS = ["skis", "grundskola", "elevhalsa", "introduktion", "vux"]

COMMANDS: list[tuple[str, ...]] = [
    ("registry", "networks"),
    ("registry", "networks", "--json"),
    ("registry", "status", "--as-of", "2026-01-15"),
    ("registry", "status", "--as-of", "2025-11-21", "--json"),
    ("registry", "status", "--as-of", "2025-03-01", "--network", "skis"),
    ("registry", "status", "--network", "nosuch"),
    *(("registry", "members", key, "--as-of", "2025-11-21", "--json") for key in NETWORKS),
    ("registry", "members", "skis", "--as-of", "2025-11-21"),
    ("registry", "members", "grundskola", "--as-of", "2024-01-01", "--json"),
    *(("registry", "meetings", key, "--as-of", "2025-11-21", "--json") for key in NETWORKS),
    ("registry", "meetings", "skis", "--as-of", "2025-11-21", "--year", "2025"),
    *(("registry", "minutes", key, "--json") for key in NETWORKS),
    ("registry", "minutes", "skis", "--year", "2025"),
    ("registry", "minutes", "--get", "2", "--out", "minutes.pdf"),
    ("registry", "minutes", "--get", "999", "--out", "minutes.pdf"),
    ("registry", "mails"),
    ("registry", "mails", "--json"),
    ("registry", "mails", "--since", "2025-03-01", "--json"),
    ("registry", "review"),
    ("registry", "review", "--json"),
    ("mailbot", "check", "--json"),
]


def _name(command: tuple[str, ...]) -> str:
    return re.sub(r"[^a-z0-9]+", "-", " ".join(command).lower()).strip("-")


def _normalised(text: str, work: Path) -> str:
    """The paths of this checkout and of the test's directory, and `mailbot check`'s times relative to now."""
    text = text.replace(str(work.resolve()), "<WORK>").replace(str(ROOT), "<ROOT>")
    return re.sub(r"expected one after \d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d\d:\d\d", "expected one after <NOW>", text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    subprocess.run(["mailbot", "demo"], cwd=work, env=env, check=True, capture_output=True)
    return work, env


@pytest.mark.parametrize("command", COMMANDS, ids=_name)
def test_a_read_command_prints_what_it_printed_before(
    command: tuple[str, ...], demo: tuple[Path, dict[str, str]]
) -> None:
    work, env = demo
    done = subprocess.run(list(command), cwd=work, env=env, capture_output=True, check=False)
    output = (
        f"$ {' '.join(command)}\nexit status {done.returncode}\n"
        f"--- stdout\n{done.stdout.decode('utf-8')}--- stderr\n{done.stderr.decode('utf-8')}"
    )
    output = _normalised(output, work)
    expected = EXPECTED / f"{_name(command)}.txt"
    if UPDATE:
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_bytes(output.encode("utf-8"))
    assert output == expected.read_bytes().decode("utf-8")
