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
