"""Settings gathered without pydantic-settings' BaseSettings (mailbot/settings.py) are the ones it gave.

The reference is Settings' own fields on a BaseSettings with the configuration and sources Settings had
(keyword arguments, then MAILBOT_* variables, then the TOML file); each case is built both ways, and the values,
or the error, must be the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict, SecretStr, ValidationError, create_model
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from mailbot import settings as module
from mailbot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


class _AsBefore(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILBOT_", env_nested_delimiter="__", extra="forbid")
    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


REFERENCE = create_model(  # type: ignore[call-overload]
    "Settings", __base__=_AsBefore, **{name: (info.annotation, info) for name, info in Settings.model_fields.items()}
)

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "none": {},
    "not-settings": {"MAILBOT_CONFIG": "elsewhere.toml", "MAILBOT_CACHE_DIR": "/tmp/cache", "MAILBOT_TEST_X": "1"},
    "url": {"MAILBOT_DATABASE__URL": "sqlite:///from-env.sqlite3"},
    "lower-case": {"mailbot_database__url": "sqlite:///lower.sqlite3", "Mailbot_Schedule__Poll_Minutes": "9"},
    "numbers": {"MAILBOT_SCHEDULE__POLL_MINUTES": "7", "MAILBOT_SMTP__PORT": "2525"},
    "bad-number": {"MAILBOT_SCHEDULE__POLL_MINUTES": "0"},
    "list": {"MAILBOT_ADMIN__ADDRESSES": '["kansli@skaraborg.se"]'},
    "bad-json": {"MAILBOT_ADMIN__ADDRESSES": "kansli@skaraborg.se"},
    "section-json": {"MAILBOT_SMTP": '{"host": "smtp.example.se", "port": 25}', "MAILBOT_SMTP__PORT": "26"},
    "paths": {"MAILBOT_CONFIG_DIR": "/etc/mailbot", "MAILBOT_MAILDIR": "/var/mail/bot"},
    "secret": {"MAILBOT_IMAP__PASSWORD": "s3cret", "MAILBOT_IMAP__HOST": "imap.example.se"},
    "empty": {"MAILBOT_IMAP__HOST": "", "MAILBOT_SMTP__USER": ""},
    "unknown-key": {"MAILBOT_SMTP__COLOUR": "blue"},
}
FILES: dict[str, bytes | None] = {
    "none": None,
    "plain": b'[database]\nurl = "sqlite:///from-file.sqlite3"\n[smtp]\nhost = "mail.skaraborg.se"\nport = 587\n'
    b"[schedule]\npoll_minutes = 3\n",
    "list": b'[admin]\naddresses = ["a@skaraborg.se", "b@skaraborg.se"]\n',
    "bad-value": b"[schedule]\npoll_minutes = -1\n[smtp]\nport = 0\n",
    "byte-order-mark": b'\xef\xbb\xbf[database]\nurl = "sqlite:///bom.sqlite3"\n',
}
KEYWORDS: dict[str, dict[str, Any]] = {
    "none": {},
    "config-dir": {"config_dir": Path("/srv/config")},
    "demo-smtp": {"maildir": Path("sample/maildir"), "smtp": {"directory": Path("var/outbox"), "port": 25}},
}


def _outcome(build: Any) -> tuple[object, ...]:
    try:
        made = build()
    except ValidationError as error:
        return ("invalid", error.json(include_url=False))
    except SettingsError as error:
        return ("settings error", str(error))
    except Exception as error:  # noqa: BLE001 (a TOML error: its type and message are the outcome)
        return (type(error).__name__, str(error))
    dumped = made.model_dump()

    def revealed(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return ("secret", value.get_secret_value())
        if isinstance(value, dict):
            return {key: revealed(item) for key, item in value.items()}
        return value

    return ("ok", revealed(dumped))


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=str)
@pytest.mark.parametrize("file", FILES, ids=str)
def test_settings_are_gathered_as_pydantic_settings_gathered_them(
    environment: str, file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in __import__("os").environ if name.lower().startswith("mailbot_")]:
        monkeypatch.delenv(name)
    for name, value in ENVIRONMENTS[environment].items():
        monkeypatch.setenv(name, value)
    path = None
    if FILES[file] is not None:
        path = tmp_path / "mailbot.toml"
        path.write_bytes(FILES[file])  # type: ignore[arg-type]
    reference = type("Reference", (REFERENCE,), {"toml_file": path})
    for keywords in KEYWORDS.values():
        token = module._TOML_FILE.set(path)
        try:
            ours = _outcome(lambda: Settings(**keywords))  # noqa: B023
        finally:
            module._TOML_FILE.reset(token)
        assert ours == _outcome(lambda: reference(**keywords))  # noqa: B023


def test_settings_validate_with_the_configuration_of_base_settings() -> None:
    validation_keys = set(ConfigDict.__annotations__)
    theirs = {key: value for key, value in BaseSettings.model_config.items() if key in validation_keys}
    ours = {key: value for key, value in Settings.model_config.items() if key in validation_keys}
    assert ours == theirs


def test_only_a_possible_setting_in_the_environment_imports_pydantic_settings(tmp_path: Path) -> None:
    program = (
        "import sys\n"
        "from mailbot.settings import load_settings\n"
        "settings = load_settings()\n"
        "print(settings.database.url, 'pydantic_settings' in sys.modules)\n"
    )
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mailbot.toml").write_text('[database]\nurl = "sqlite:///file.sqlite3"\n')
    env = {k: v for k, v in __import__("os").environ.items() if not k.lower().startswith("mailbot_")}
    env["PYTHONPATH"] = str(ROOT)
    results = []
    for extra in (
        {},
        {"MAILBOT_CACHE_DIR": str(tmp_path / "cache")},
        {"MAILBOT_DATABASE__URL": "sqlite:///env.sqlite3"},
    ):
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path,
                              env={**env, **extra}, check=True)  # fmt: skip
        results.append(done.stdout.split())
    assert results == [
        ["sqlite:///file.sqlite3", "False"],
        ["sqlite:///file.sqlite3", "False"],
        ["sqlite:///env.sqlite3", "True"],
    ]
