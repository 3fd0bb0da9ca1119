"""The worker's settings: one TOML file, every key overridable by MAILBOT_<SECTION>__<KEY>.

Resolution of the file: --config, else $MAILBOT_CONFIG, else config/mailbot.toml in the working
directory if it exists, else built-in defaults. Secrets are SecretStr and never printed.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from registry.config import ConfigError
from registry.paths import config_dir


class ImapSettings(BaseModel):
    host: str | None = None
    port: int = 993
    ssl: bool = True  # implicit TLS; false only for a loopback test server
    starttls: bool = True  # used when ssl is false; false only for a loopback test server
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    auth: Literal["password", "xoauth2"] = "password"
    oauth_tenant: str | None = None  # Microsoft Entra tenant id, for xoauth2
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    folder: str = "INBOX"
    keyword_registered: str = "Registrerad"
    keyword_review: str = "Granskas"
    keyword_ignored: str = "Ignorerad"
    move_registered_to: str | None = None  # off by default: the mailbox is left as it is
    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    batch_size: int = Field(200, ge=1, le=5000)
    max_message_bytes: int = 25 * 1024 * 1024
    ca_file: Path | None = None  # extra CA for a private server (tests)
    # IMAP IDLE (RFC 2177) in `mailbot run`: a second connection waits for new mail and starts a pass at once.
    idle: bool = True
    # RFC 2177: servers may log out a client idle for 30 minutes; re-issue IDLE well before that.
    idle_renew_minutes: float = Field(25.0, gt=0, le=29)
    idle_retry_seconds: float = Field(60.0, ge=1)  # wait after a failed IDLE connection before trying again

    def resolved_password(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"imap.password_file: cannot read {self.password_file}: {error.strerror}") from None
        return None


class SmtpSettings(BaseModel):
    host: str | None = None
    port: int = 587
    ssl: bool = False  # implicit TLS (port 465)
    starttls: bool = True  # false only for a loopback test server
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    sender: str = "Utbildning Skaraborg <utbildning@skaraborg.se>"
    reply_to: str = "utbildning@skaraborg.se"
    message_id_domain: str = "mailbot.skaraborg.se"
    timeout: float = 60.0
    directory: Path | None = None  # write .eml files here instead of sending (embedded default)
    max_attempts: int = 8
    ca_file: Path | None = None

    def resolved_password(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"smtp.password_file: cannot read {self.password_file}: {error.strerror}") from None
        return None


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///var/registry.sqlite3"
    busy_timeout_ms: int = 15000


class ScheduleSettings(BaseModel):
    timezone: str = "Europe/Stockholm"
    poll_minutes: int = Field(5, ge=1)
    poll_seconds: float | None = Field(None, ge=1)  # overrides poll_minutes (a test, or a mailbox polled faster)
    lease_seconds: float | None = Field(None, ge=10)  # the worker lease; default 0.8 poll interval, at least 10 s
    remind_hour: int = Field(8, ge=0, le=23)
    failures_before_alert: int = Field(3, ge=1)

    @property
    def poll_interval(self) -> timedelta:
        return timedelta(seconds=self.poll_seconds if self.poll_seconds is not None else 60 * self.poll_minutes)

    @property
    def lease_time(self) -> timedelta:
        """How long the active worker's lease lasts without renewal (see mailbot/worker.py for the arithmetic)."""
        if self.lease_seconds is not None:
            return timedelta(seconds=self.lease_seconds)
        return max(self.poll_interval * 0.8, timedelta(seconds=10))


class ReceiptSettings(BaseModel):
    enabled: bool = True
    max_age_days: int = 14
    per_sender_per_hour: int = 5


class ReminderSettings(BaseModel):
    heads_up_days: int = 0  # 0: no heads-up before a deadline
    repeat_days: int = 7
    escalate_after: int = 2  # reminders before the school chief and the admin are copied


class AdminSettings(BaseModel):
    addresses: list[str] = ["utbildning@skaraborg.se"]  # who gets alerts and summaries
    authorised_domains: list[str] = ["skaraborg.se"]  # federation staff may change anything


class AuthenticationSettings(BaseModel):
    """Which verdict of the receiving server a mail that changes the registry must not fail."""

    # The authserv-id(s) of the organisation's own server; empty: the topmost Authentication-Results (Microsoft 365
    # writes no authserv-id, and its header is the last one added, so the topmost).
    trusted_authserv_ids: list[str] = []
    # Forwarders (their ARC authserv-id) whose ARC verdict counts when our own server found the chain intact.
    trusted_arc_forwarders: list[str] = []
    spam_score_from: int = Field(5, ge=0, le=9)  # X-MS-Exchange-Organization-SCL from which a mail is spam


class ReportSettings(BaseModel):
    enabled: bool = True  # mail last year's report in January to each network's school chief and the admin
    mail_day: int = Field(15, ge=1, le=31)  # the day in January (or the first working day after it)


class RetentionSettings(BaseModel):
    raw_mail_days: int = Field(730, ge=0)  # purge raw mail bytes older than this (facts stay); 0: keep forever


class MonitoringSettings(BaseModel):
    ping_url: str | None = None  # dead-man's switch (Healthchecks.io-style): GET after every good pass
    ping_timeout: float = Field(10.0, gt=0)


class ReaderSettings(BaseModel):
    """The budget of reading and understanding one mail, enforced on a separate worker process."""

    timeout_seconds: float = Field(60.0, gt=0)  # wall clock per mail; the worker is killed and replaced past it
    memory_mb: int = Field(512, ge=64)  # RLIMIT_AS of the worker process
    max_attempts: int = Field(2, ge=1)  # readings that never finished (the service died) before quarantine


class LoggingSettings(BaseModel):
    format: Literal["text", "json"] = "text"  # json: one JSON object per line (--log-format overrides)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILBOT_", env_nested_delimiter="__", extra="forbid")

    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    database: DatabaseSettings = DatabaseSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    receipts: ReceiptSettings = ReceiptSettings()
    reminders: ReminderSettings = ReminderSettings()
    admin: AdminSettings = AdminSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    report: ReportSettings = ReportSettings()
    retention: RetentionSettings = RetentionSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    logging: LoggingSettings = LoggingSettings()
    reader: ReaderSettings = ReaderSettings()
    config_dir: Path | None = None  # networks.toml and municipalities.toml; default: the bundled config/
    maildir: Path | None = None  # read a local Maildir instead of IMAP (the embedded default)

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

    def networks_dir(self) -> Path:
        return self.config_dir or config_dir()


def resolve_config_path(explicit: Path | None) -> Path | None:
    """--config, else $MAILBOT_CONFIG, else ./config/mailbot.toml if present, else None."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: configuration file not found")
        return explicit
    from_env = os.environ.get("MAILBOT_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found (from $MAILBOT_CONFIG)")
        return path
    default = Path("config/mailbot.toml")
    return default if default.is_file() else None


def load_settings(explicit: Path | None = None, **overrides: Any) -> Settings:
    """Load the settings; a ConfigError names the file, the key and what is wrong."""
    path = resolve_config_path(explicit)

    class _Loaded(Settings):
        toml_file = path

    try:
        loaded = _Loaded(**overrides)
    except ValidationError as error:
        where = str(path) if path else "environment"
        lines = [f"{where}: {'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()]
        raise ConfigError("\n".join(lines)) from None
    except Exception as error:  # tomllib errors from the settings source
        if type(error).__name__ == "TOMLDecodeError":
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        raise
    return Settings.model_validate(loaded.model_dump())
