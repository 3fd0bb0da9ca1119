"""What every command pays before it does anything: the schema check, the configuration, and printing.

These guard the speed-ups measured by benchmarks/scale.py (1,000 networks), and that they change no result.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from registry.config import CACHE_THRESHOLD_BYTES, load_registry
from registry.db import MIGRATIONS, current_revision, head_revision, open_registry
from registry.paths import config_dir
from registry.runtime import print_json, print_table

ROOT = Path(__file__).resolve().parent.parent


def test_head_revision_from_file_names_is_alembics_head() -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_a_current_database_is_opened_without_importing_alembic(database_url: str) -> None:
    engine = open_registry(database_url, load_registry(config_dir()))  # creates the schema through Alembic
    assert current_revision(engine) == head_revision()
    engine.dispose()
    program = (
        "import sys\n"
        "from registry.config import load_registry\n"
        "from registry.db import open_registry\n"
        "from registry.paths import config_dir\n"
        f"open_registry({database_url!r}, load_registry(config_dir())).dispose()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_new_database_gets_the_newest_schema(database_url: str) -> None:
    engine = open_registry(database_url, load_registry(config_dir()))
    assert current_revision(engine) == head_revision()
    engine.dispose()


def _large_config(folder: Path, copies: int) -> Path:
    """The bundled configuration with every network repeated under new keys, beyond the cache threshold."""
    source = (config_dir() / "networks.toml").read_text(encoding="utf-8")
    blocks = re.split(r"(?m)^(?=\[networks\.[a-z]+\]$)", source)
    header, networks = blocks[0], blocks[1:]
    parts = [header]
    for copy in range(copies):
        for block in networks:
            parts.append(re.sub(r"(?m)^(\[\[?)networks\.([a-z]+)", rf"\1networks.\2-{copy:03d}", block))
    folder.mkdir()
    (folder / "networks.toml").write_text("".join(parts), encoding="utf-8")
    (folder / "municipalities.toml").write_bytes((config_dir() / "municipalities.toml").read_bytes())
    return folder


def test_a_large_configuration_is_cached_and_the_cache_follows_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_CACHE_DIR", str(tmp_path / "cache"))
    folder = _large_config(tmp_path / "config", copies=60)
    assert (folder / "networks.toml").stat().st_size > CACHE_THRESHOLD_BYTES

    parsed = load_registry(folder)
    assert len(parsed.networks) == 300
    assert len(list((tmp_path / "cache").glob("registry-*.pickle"))) == 1
    assert load_registry(folder) == parsed

    # An edit is seen at once: the cache is keyed by the files' content, not their age.
    text = (folder / "networks.toml").read_text(encoding="utf-8")
    (folder / "networks.toml").write_text(text.replace("min_meetings_per_year = 4", "min_meetings_per_year = 5", 1))
    edited = load_registry(folder)
    assert edited.networks[0].min_meetings_per_year == 5
    assert len(list((tmp_path / "cache").glob("registry-*.pickle"))) == 2


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("MAILBOT_CACHE_DIR", str(blocked))
    folder = _large_config(tmp_path / "config", copies=60)
    assert len(load_registry(folder).networks) == 300


def test_a_small_configuration_writes_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOT_CACHE_DIR", str(tmp_path / "cache"))
    load_registry(config_dir())
    assert not (tmp_path / "cache").exists()


def test_piped_tables_are_plain_text_and_keep_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    print_table("Inlästa mejl", ["id", "subject"], [[1, "[EXTERN] Protokoll SKIS 14/3"], [22, None]],
                styles={"id": {"1": "red"}})  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Inlästa mejl"
    assert lines[1].split() == ["id", "subject"]
    assert lines[3] == "1   [EXTERN] Protokoll SKIS 14/3"
    assert lines[4].rstrip() == "22"


def test_json_output_is_unchanged_by_the_fast_encoder(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from datetime import UTC, date, datetime

    data = {"when": datetime(2025, 11, 21, 8, 0, tzinfo=UTC), "day": date(2025, 11, 21), "name": "Åsa Öberg",
            "items": (1, 2.5, None, True)}  # fmt: skip
    print_json(data)
    out = capsys.readouterr().out
    assert out == json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    assert os.linesep in out


# --- what each command imports (issue 14: a CLI that starts at once) -----------------------------------------
# A command imports what it uses when it uses it; these are the libraries it must then not have imported.
# (benchmarks/startup.py measures the time; a test only says which modules were loaded, which cannot flake.)
NOT_AT_START = ("rich", "alembic", "jinja2", "openpyxl", "docx", "pypdf", "pypdfium2", "icalendar", "imapclient",
                "aiosmtplib", "apscheduler", "holidays.countries", "email_validator", "msal", "tnefparse")  # fmt: skip
# The ORM and the SQLModel tables: the commands that only read query the Core tables of registry/tables.py.
ORM = ("sqlmodel", "sqlalchemy.orm", "registry.models")
# pydantic-settings reads MAILBOT_* variables; with none set (the database below is named in a settings file) it is
# not imported.
WATCHED = (*NOT_AT_START, *ORM, "sqlalchemy", "pydantic", "pydantic_settings", "holidays", "mailbot.remind")
PROBE = """
import sys
sys.argv = [{script!r}, *{args!r}]
from {script}.cli import main
try:
    main()
except SystemExit as stop:
    status = stop.code or 0
else:
    status = 0
print()
print("PROBE", status, *sorted(name for name in {watched!r} if name in sys.modules))
"""


def _imported(script: str, *args: str, cwd: Path, url: str | None = None) -> tuple[int, set[str]]:
    """Run `script args` (registry or mailbot) in a fresh interpreter: its exit status and which of WATCHED it
    imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    if url is not None:  # config/mailbot.toml of the working directory, as an admin's
        (cwd / "config").mkdir(exist_ok=True)
        (cwd / "config" / "mailbot.toml").write_text(f"[database]\nurl = {url!r}\n", encoding="utf-8")
    program = PROBE.format(script=script, args=list(args), watched=WATCHED)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=cwd, env=env,
                          check=False)  # fmt: skip
    probe = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    assert probe, f"no probe line; stdout: {done.stdout[-2000:]!r}; stderr: {done.stderr[-2000:]!r}"
    status, *modules = probe[-1].split()[1:]
    return int(status), set(modules)


LISTINGS = [("status", "--json"), ("members", "skis", "--json"), ("meetings", "skis", "--json"),
            ("minutes", "skis", "--json"), ("mails", "--json"), ("review", "--json")]  # fmt: skip


@pytest.mark.parametrize("args", LISTINGS)
def test_a_listing_imports_only_sqlalchemy_core(args: tuple[str, ...], database_url: str, tmp_path: Path) -> None:
    open_registry(database_url, load_registry(config_dir())).dispose()
    status, modules = _imported("registry", *args, cwd=tmp_path, url=database_url)
    assert status == 0
    assert "sqlalchemy" in modules
    assert not modules & {*NOT_AT_START, *ORM, "pydantic_settings"}


@pytest.mark.parametrize(("script", "args"), [("registry", ("--help",)), ("mailbot", ("--help",)),
                                              ("registry", ("networks", "--json")), ("registry", ("search", "--help"))])  # fmt: skip
def test_help_and_the_configuration_need_no_database_library(
    script: str, args: tuple[str, ...], tmp_path: Path
) -> None:
    status, modules = _imported(script, *args, cwd=tmp_path)
    assert status == 0
    # --help is typer's help, which rich draws; nothing else of the list is loaded, and no SQLAlchemy.
    assert not modules & {*NOT_AT_START, "sqlalchemy", "pydantic_settings"} - {"rich"}
    assert ("rich" in modules) == ("--help" in args)


def test_mailbot_check_without_servers_imports_no_client(database_url: str, tmp_path: Path) -> None:
    """On a configuration without a mailbox or an SMTP server (the demo's), `mailbot check` reports both as
    failures without importing the IMAP or SMTP client, the jobs (Jinja2, the scheduler), the planning of reminders
    or every country of `holidays` (it needs Sweden's working days)."""
    open_registry(database_url, load_registry(config_dir())).dispose()
    status, modules = _imported("mailbot", "check", cwd=tmp_path, url=database_url)
    assert status == 1  # no mailbox, no SMTP server, no worker
    assert "holidays" in modules
    assert not modules & {*NOT_AT_START, *ORM, "pydantic_settings", "mailbot.remind"}


def test_swedish_working_days_from_sweden_alone_are_those_of_the_holidays_package() -> None:
    """mailbot/working_days.py loads holidays' sweden.py without the package of every country; the working days must be
    the ones of `holidays.Sweden` imported the usual way (each side in an interpreter of its own)."""
    days = "[date(2020, 1, 1) + timedelta(days=n) for n in range(366 * 12)]"
    ours = (
        "import sys\n"
        "from datetime import date, timedelta\n"
        "from mailbot.working_days import is_working_day\n"
        f"print([d.isoformat() for d in {days} if not is_working_day(d)])\n"
        "assert 'holidays.countries' not in sys.modules\n"
    )
    theirs = (
        "from datetime import date, timedelta\n"
        "import holidays.countries\n"
        "off = {}\n"
        "for year in range(2020, 2033):\n"
        "    off.update(holidays.countries.Sweden(years=year, categories=('public', 'de_facto')))\n"
        f"print([d.isoformat() for d in {days} if d.weekday() >= 5 or d in off])\n"
    )
    results = []
    for program in (ours, theirs):
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr
        results.append(done.stdout)
    assert "2025-06-20" in results[0]  # midsommarafton
    assert results[0] == results[1]
