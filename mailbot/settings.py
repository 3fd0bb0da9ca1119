"""The worker's settings: one TOML file, every key overridable by MAILBOT_<SECTION>__<KEY>.

Resolution of the file: --config, else $MAILBOT_CONFIG, else config/mailbot.toml in the working
directory if it exists, else built-in defaults. Secrets are SecretStr and never printed.

The values are gathered as pydantic-settings gathers them (keyword arguments over MAILBOT_* variables over the
file), and pydantic-settings itself reads the environment; it is imported only when some MAILBOT_* variable may be
a setting, which spares every command on a plain settings file its import (benchmarks/startup.py).
"""

import codecs
import difflib
import os
import shlex
import tomllib
from contextvars import ContextVar
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic._internal._utils import deep_update  # the merge pydantic-settings uses

from registry.config import ConfigError
from registry.paths import config_dir


def read_password_file(path: Path) -> str:
    """A password file as Windows editors save it too: UTF-8 with or without a BOM, or UTF-16 with a BOM (Notepad's
    "Unicode"); the trailing newline is not part of the password."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        text = data.decode("utf-8-sig")
    return text.rstrip("\r\n")


def _password(password: SecretStr | None, password_file: Path | None, section: str) -> str | None:
    if password is not None:
        return password.get_secret_value()
    if password_file is None:
        return None
    try:
        return read_password_file(password_file)
    except OSError as error:
        raise ConfigError(f"{section}.password_file: cannot read {password_file}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{section}.password_file: {password_file} is neither UTF-8 nor UTF-16 with a BOM; save it as UTF-8"
        ) from None


def _one_password(model: Any, section: str) -> Any:
    if model.password is not None and model.password_file is not None:
        raise ValueError(f"set {section}.password or {section}.password_file, not both")
    return model


# The default addresses (smtp.sender, smtp.reply_to, admin.addresses), which tests/test_settings_strict.py checks
# with email-validator: they are taken as they are, since importing email-validator (a twentieth of a second) costs
# more than the rest of loading the settings, and every command loads them (benchmarks/startup.py).
DEFAULT_SENDER = "Utbildning Skaraborg <utbildning@skaraborg.se>"
DEFAULT_ADDRESS = "utbildning@skaraborg.se"
VALID_DEFAULT_ADDRESSES = frozenset({DEFAULT_SENDER, DEFAULT_ADDRESS})


def _email(value: str, what: str) -> str:
    """An address as email-validator reads it (no DNS look-up); a display name ("Name <addr>") is allowed."""
    if value in VALID_DEFAULT_ADDRESSES:
        return value
    return check_email(value, what)


def check_email(value: str, what: str) -> str:
    """`_email` without the defaults' shortcut."""
    from email.utils import parseaddr

    from email_validator import EmailNotValidError, validate_email

    address = parseaddr(value)[1] if "<" in value else value
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"{what} {value!r} is not an e-mail address: {error}") from None
    return value


class ImapSettings(BaseModel):
    host: str | None = None
    port: int = Field(993, ge=1, le=65535)
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
    connect_timeout: float = Field(30.0, gt=0)
    read_timeout: float = Field(120.0, gt=0)
    # Mails per FETCH of their bodies: 100 of issue 14's mix hold the main process about 20 MB below 500, with the
    # same pass time (benchmarks/intake_imap.py).
    batch_size: int = Field(100, ge=1, le=5000)
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1)
    ca_file: Path | None = None  # extra CA for a private server (tests)

    @model_validator(mode="after")
    def _one_password(self) -> "ImapSettings":
        return _one_password(self, "imap")

    # IMAP IDLE (RFC 2177) in `mailbot run`: a second connection waits for new mail and starts a pass at once.
    idle: bool = True
    # RFC 2177: servers may log out a client idle for 30 minutes; re-issue IDLE well before that.
    idle_renew_minutes: float = Field(25.0, gt=0, le=29)
    idle_retry_seconds: float = Field(60.0, ge=1)  # wait after a failed IDLE connection before trying again

    def resolved_password(self) -> str | None:
        return _password(self.password, self.password_file, "imap")


class SmtpSettings(BaseModel):
    host: str | None = None
    port: int = Field(587, ge=1, le=65535)
    ssl: bool = False  # implicit TLS (port 465)
    starttls: bool = True  # false only for a loopback test server
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    sender: str = DEFAULT_SENDER
    reply_to: str = DEFAULT_ADDRESS
    message_id_domain: str = "mailbot.skaraborg.se"
    timeout: float = Field(60.0, gt=0)
    directory: Path | None = None  # write .eml files here instead of sending (embedded default)
    max_attempts: int = Field(8, ge=1)
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self) -> "SmtpSettings":
        return _one_password(self, "smtp")

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str) -> str:
        return _email(value, "address")

    def resolved_password(self) -> str | None:
        return _password(self.password, self.password_file, "smtp")


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///var/registry.sqlite3"
    busy_timeout_ms: int = Field(15000, ge=0)


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
    max_age_days: int = Field(14, ge=0)
    per_sender_per_hour: int = Field(5, ge=1)


class ReminderSettings(BaseModel):
    heads_up_days: int = Field(0, ge=0)  # 0: no heads-up before a deadline
    repeat_days: int = Field(7, ge=1)
    escalate_after: int = Field(2, ge=1)  # reminders before the school chief and the admin are copied


class AdminSettings(BaseModel):
    addresses: list[str] = [DEFAULT_ADDRESS]  # who gets alerts and summaries
    authorised_domains: list[str] = ["skaraborg.se"]  # federation staff may change anything

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_email(address, "admin address") for address in value]


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
    workers: int = Field(0, ge=0, le=64)  # worker processes reading mails in parallel; 0: one per core


class IntakeSettings(BaseModel):
    """`[intake]`: how the mails of a pass are recorded. One transaction per run of mails, committed after
    `batch_mails` mails or `batch_seconds` (whichever comes first), before a slow mail is waited for, and at the
    end: a kill loses at most one uncommitted run (read again by the next pass, never recorded twice). On SQLite
    the open transaction holds the write lock, so `batch_seconds` is also about how long an admin's command may
    wait for the worker."""

    batch_mails: int = Field(200, ge=1, le=10_000)
    batch_seconds: float = Field(1.0, gt=0, le=60)


class PublicationSettings(BaseModel):
    """`[publication]`: the public site of the minutes (`registry publish`, and the worker after new minutes)."""

    directory: Path = Path("var/publish")  # a symlink to the build in place (see registry/publication.py)
    base_url: str = "https://utbildningskaraborg.se/natverk/"  # where the web server serves the directory
    tag_authority: str = "utbildningskaraborg.se,2026"  # the feeds' ids are tag: URIs (RFC 4151); never change it
    # Run after each build, without a shell: split like a shell would (shlex), "{dir}" replaced by the build's
    # directory, e.g. "rsync -a --delete {dir}/ web:/var/www/natverk/". None: the directory is all there is.
    upload_command: str | None = None
    upload_timeout: float = Field(300.0, gt=0)  # seconds; a slower upload is killed and counts as failed
    keep_builds: int = Field(2, ge=1, le=20)  # builds kept beside the one in place (requests still reading one)

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be an absolute http(s) address")
        return value if value.endswith("/") else value + "/"

    @field_validator("upload_command")
    @classmethod
    def _splits(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if not shlex.split(value):
                    raise ValueError("upload_command is empty")
            except ValueError as error:
                raise ValueError(f"upload_command does not split into words: {error}") from None
        return value


class LoggingSettings(BaseModel):
    format: Literal["text", "json"] = "text"  # json: one JSON object per line (--log-format overrides)


# What pydantic-settings' BaseSettings sets for validation (tests/test_settings_sources.py compares them).
SETTINGS_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True,
                             protected_namespaces=("model_validate", "model_dump", "settings_customise_sources"))  # fmt: skip
# How the environment is read: MAILBOT_<SECTION>__<KEY>, case-insensitive (pydantic-settings' default).
ENVIRONMENT_CONFIG = {"env_prefix": "MAILBOT_", "env_nested_delimiter": "__"}


class Settings(BaseModel):
    """Keyword arguments over the environment over the TOML file, deep-merged, then validated: the values of
    pydantic-settings' BaseSettings with the sources (init, environment, TOML file) and the order it had here."""

    model_config = SETTINGS_CONFIG

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
    intake: IntakeSettings = IntakeSettings()
    publication: PublicationSettings = PublicationSettings()
    config_dir: Path | None = None  # networks.toml and municipalities.toml; default: the bundled config/
    maildir: Path | None = None  # read a local Maildir instead of IMAP (the embedded default)

    toml_file: ClassVar[Path | None] = None  # a subclass's own file; else the one `load_settings` reads

    def __init__(self, **values: Any) -> None:
        toml_file = type(self).toml_file if type(self).toml_file is not None else _TOML_FILE.get()
        super().__init__(**gathered_values(type(self), values, _toml_values(toml_file)))

    _settings_file: Path | None = PrivateAttr(default=None)

    @property
    def settings_file(self) -> Path | None:
        """The TOML file these settings came from (None: defaults and environment only)."""
        return self._settings_file

    def networks_dir(self) -> Path:
        """networks.toml and municipalities.toml: config_dir (--config-dir, MAILBOT_CONFIG_DIR, or the file's
        `config_dir`), else a config/ folder beside the settings file (or the settings file's own folder when it
        holds networks.toml), else the bundled config/."""
        if self.config_dir is not None:
            return self.config_dir
        if self._settings_file is not None:
            folder = self._settings_file.resolve().parent
            for candidate in (folder / "config", folder):
                if (candidate / "networks.toml").is_file():
                    return candidate
        return config_dir()


# The settings file `load_settings` is reading, for Settings.__init__.
_TOML_FILE: ContextVar[Path | None] = ContextVar("mailbot_settings_file", default=None)


def _toml_values(toml_file: Path | None) -> dict[str, Any]:
    """The file as pydantic-settings' TomlConfigSettingsSource reads it: nothing when it is not a file, else
    tomllib.load of its bytes (a byte order mark is a TOML error there, which load_settings reports)."""
    if toml_file is None:
        return {}
    path = Path(toml_file).expanduser()
    if not path.is_file():
        return {}
    with path.open("rb") as file:
        return tomllib.load(file)


def _by_field(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the model's fields first, in its order, then the rest (InitSettingsSource's order)."""
    fields = model.model_fields
    return {**{name: values[name] for name in fields if name in values},
            **{key: value for key, value in values.items() if key not in fields}}  # fmt: skip


def may_be_setting(name: str, model: type[BaseModel]) -> bool:
    """Whether pydantic-settings could read the variable `name` for a field of `model`: MAILBOT_<field>, in any
    case, or anything longer (a nested key). More than it reads, never less."""
    lowered = name.lower()
    prefix = ENVIRONMENT_CONFIG["env_prefix"].lower()
    return lowered.startswith(prefix) and any(lowered[len(prefix) :].startswith(field) for field in model.model_fields)


@cache
def _environment_source_class(model: type[BaseModel]) -> type[BaseModel]:
    """A pydantic-settings class with the fields of `model` and the configuration Settings had as a BaseSettings,
    for its EnvSettingsSource; its validator is never built (defer_build)."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    return type(
        f"{model.__name__}FromEnvironment",
        (model, BaseSettings),
        {"model_config": SettingsConfigDict(**ENVIRONMENT_CONFIG, extra="forbid", defer_build=True)},  # type: ignore[typeddict-item]
    )


def environment_values(model: type[BaseModel]) -> dict[str, Any]:
    """The values pydantic-settings' EnvSettingsSource reads from the environment for `model`."""
    if not any(may_be_setting(name, model) for name in os.environ):
        return {}  # it would read nothing: no need to import it
    from pydantic_settings import EnvSettingsSource

    return EnvSettingsSource(_environment_source_class(model))()  # type: ignore[arg-type]


def gathered_values(model: type[BaseModel], init: dict[str, Any], toml: dict[str, Any]) -> dict[str, Any]:
    """What BaseSettings._settings_build_values made of the sources (init, environment, TOML file): each one
    deep-merged under the ones before it, then the keyword arguments' keys moved last, as it does."""
    init, toml = _by_field(model, init), _by_field(model, toml)
    state = deep_update(toml, deep_update(environment_values(model), init))
    for name in model.model_fields:
        if name in init and name in state:
            state[name] = state.pop(name)
    return state


# MAILBOT_* variables that are not settings: read by the CLIs, the cache and the tests themselves.
NOT_SETTINGS = ("MAILBOT_CONFIG", "MAILBOT_CACHE_DIR")
NOT_SETTINGS_PREFIXES = ("MAILBOT_TEST_",)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The settings model behind a field's type (`ImapSettings`, `X | None`), or None for a plain value."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _nearest(key: str, known: list[str]) -> str:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else f" (valid: {', '.join(sorted(known))})"


def unknown_keys(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of `data` the settings models do not have (derived from the models, so a new section is known
    as soon as it exists), each with the nearest valid key."""
    problems = []
    fields = {name: info for name, info in model.model_fields.items()}
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{prefix}{key}: unknown key{_nearest(key, list(fields))}")
            continue
        section = _section(fields[key].annotation)
        if section is not None and isinstance(value, dict):
            problems.extend(unknown_keys(value, section, f"{prefix}{key}."))
    return problems


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """Every MAILBOT_* variable that is neither a setting (MAILBOT_<SECTION>__<KEY>) nor one of NOT_SETTINGS."""
    problems = []
    for name in sorted(environ):
        if not name.startswith("MAILBOT_") or name in NOT_SETTINGS or name.startswith(NOT_SETTINGS_PREFIXES):
            continue
        parts = name[len("MAILBOT_") :].lower().split("__")
        model: type[BaseModel] | None = Settings
        for depth, part in enumerate(parts):
            fields = model.model_fields if model is not None else {}
            if part not in fields:
                known = [f"MAILBOT_{'__'.join([*parts[:depth], f]).upper()}" for f in fields]
                problems.append(f"{name}: unknown setting{_nearest(name, known)}")
                break
            model = _section(fields[part].annotation)
            if model is None and depth < len(parts) - 1:
                problems.append(f"{name}: {'.'.join(parts[: depth + 1])} has no keys below it")
                break
    return problems


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
    problems = unknown_variables(dict(os.environ))
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        problems.extend(f"{path}: {problem}" for problem in unknown_keys(data, Settings))
    if problems:
        raise ConfigError("\n".join(problems))

    # The file goes to the TOML source through a context variable, not a subclass made here: a new class would
    # build its pydantic schema again at every load (benchmarks/startup.py).
    token = _TOML_FILE.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        where = str(path) if path else "environment"
        lines = [f"{where}: {'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()]
        raise ConfigError("\n".join(lines)) from None
    except Exception as error:  # tomllib errors from the settings source
        if type(error).__name__ == "TOMLDecodeError":
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        raise
    finally:
        _TOML_FILE.reset(token)
    settings._settings_file = path
    return settings
