"""What both CLIs share: loading settings and configuration, opening the database, printing, errors.

The CLIs stay thin; nothing here holds domain logic. Every command imports this module (and `--help` only this
and typer), so what only some commands need is imported where it is used: the settings (pydantic-settings) and the
configuration when a command first asks for them, SQLAlchemy when it opens the database, rich when a table is
drawn on a terminal (benchmarks/startup.py).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer

from registry.errors import ExpectedError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailbot.settings import Settings
    from registry.config import Registry

log = logging.getLogger("registry")


class UsageError(Exception):
    """Bad input on the command line that typer could not catch (exit status 2)."""


@dataclass
class Runtime:
    config_path: Path | None
    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        from mailbot.settings import load_settings

        return load_settings(self.config_path, **self.overrides)

    @cached_property
    def registry(self) -> Registry:
        from registry.config import load_registry

        return load_registry(self.settings.networks_dir())

    @cached_property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.settings.schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            from registry.config import ConfigError

            raise ConfigError(f"schedule.timezone: unknown time zone {self.settings.schedule.timezone!r}") from None

    def engine(self, create: bool = True) -> Engine:
        """The registry database, upgraded (made if new). Only the worker's commands that fill a registry (poll,
        run, demo) may make one: every other command opens it with create=False, and a missing, empty or foreign
        database is then an error (registry/db.py)."""
        if "_engine" not in self.__dict__:
            from registry.db import open_registry

            self.__dict__["_engine"] = open_registry(
                self.settings.database.url, self.registry, self.settings.database.busy_timeout_ms, create=create
            )
        return self.__dict__["_engine"]

    def reader(self) -> Engine:
        """The registry database for a command that only reads (every `registry` listing): on SQLite it does not
        queue for the write lock while the worker or an admin command writes."""
        from registry.db import reader

        return reader(self.engine(create=False))

    def today(self, as_of: str | None) -> date:
        if as_of is None:
            return datetime.now(self.tz).date()
        return parse_date_option(as_of, "--as-of")

    def network_key(self, key: str) -> str:
        try:
            return self.registry.network(key).key
        except KeyError as error:
            raise UsageError(str(error.args[0])) from None


class LogFormat(StrEnum):
    text = "text"
    json = "json"


AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD).")]
YearOption = Annotated[int | None, typer.Option("--year", min=2000, max=2999, help="Only this calendar year (YYYY).")]
JsonOption = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON document on stdout.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Settings file (TOML).")]
ConfigDirOption = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="Folder of networks.toml and municipalities.toml (default: $MAILBOT_CONFIG_DIR, else config/ beside "
        "the settings file, else the bundled one).",
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", metavar="", help="Show tracebacks and debug logs.")]
LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format", help="Logs on stderr as text, or as one JSON object per line (default: logging.format)."
    ),
]


def context_runtime(ctx: typer.Context) -> Runtime:
    """The runtime the app's callback (`start`) put on the command's context."""
    return ctx.obj  # type: ignore[no-any-return]


def start(
    config: Path | None, debug: bool, log_format: LogFormat | None = None, config_dir: Path | None = None
) -> Runtime:
    """What both CLIs' main callbacks do: logging on stderr, and the runtime for the command.

    The log format is --log-format, else `logging.format` of the settings (MAILBOT_LOGGING__FORMAT); settings
    that do not load yet mean text here, and the command then reports why they do not load."""
    runtime = Runtime(config_path=config, debug=debug, overrides={"config_dir": config_dir} if config_dir else {})
    if log_format is None:
        try:
            log_format = LogFormat(runtime.settings.logging.format)
        except (ExpectedError, OSError):
            log_format = LogFormat.text
    setup_logging(debug, log_format)
    return runtime


def parse_date_option(value: str, option: str) -> date:
    """YYYY-MM-DD only (date.fromisoformat also takes 20251121 and 2025-W47); 2025-02-30 is in the form but is no
    date, and says so."""
    if not (len(value) == 10 and value[4] == value[7] == "-" and (value[:4] + value[5:7] + value[8:]).isdigit()):
        raise UsageError(f"{option}: {value!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise UsageError(f"{option}: {value!r} is not a valid date ({error})") from None


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, message, and exception (the traceback
    text) when there is one. For journald, Loki or Elasticsearch; a newline in a message stays inside the JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_log_format = LogFormat.text


def setup_logging(debug: bool, log_format: LogFormat = LogFormat.text) -> None:
    global _log_format
    _log_format = LogFormat(log_format)
    handler = logging.StreamHandler(sys.stderr)
    if _log_format is LogFormat.json:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(logging.DEBUG if debug else logging.WARNING)
    # Python warnings (a library's DeprecationWarning) go through the same handler, so stderr stays one format.
    logging.captureWarnings(True)


def log_to_file(path: Path, console_level: int = logging.WARNING) -> None:
    """Keep the console for what a person must see (`console_level` and up) and write every record to `path`
    in the same format: `mailbot demo` prints its summary, not one INFO line per mail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(console_level)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(root.handlers[0].formatter if root.handlers else logging.Formatter())
    root.addHandler(file_handler)


# orjson indents in C (json.dumps with indent= falls back to pure Python: 0.3 s for the 10,000 findings of
# 1,000 networks). Datetimes and dataclasses pass through to str() as before, so the output is unchanged.
_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str, option=_ORJSON_OPTIONS).decode("utf-8") + "\n")


# Above this many rows, or when stdout is not a terminal, a table is printed as plain aligned text: rich lays out
# about 500 rows a second, too slow for the status of hundreds of networks.
RICH_TABLE_MAX_ROWS = 300


def _plain_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


def print_table(
    title: str, columns: list[str], rows: list[list[Any]], styles: dict[str, dict[str, str]] | None = None
) -> None:
    """Cells are plain text (a subject's "[EXTERN]" stays as it is). `styles` colours a column's values on a
    terminal: {"state": {"overdue": "red"}}."""
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    if not sys.stdout.isatty() or len(cells) > RICH_TABLE_MAX_ROWS:
        sys.stdout.write(_plain_table(title, columns, [[v.replace("\n", " ") for v in row] for row in cells]))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    by_index = {columns.index(name): mapping for name, mapping in (styles or {}).items()}
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*(Text(v, style=by_index.get(i, {}).get(v, "")) for i, v in enumerate(row)))
    Console().print(table)


def fail(message: str, status: int = 1) -> None:
    """One clear line on stderr (a JSON log line with --log-format json), then exit with `status`."""
    if _log_format is LogFormat.json:
        logging.getLogger("cli").error("%s", message)
    else:
        sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(status)


@contextmanager
def reported_errors(runtime: Runtime) -> Iterator[None]:
    """Expected failures become one clear line on stderr and exit status 1 (2 for usage); --debug shows tracebacks."""
    try:
        yield
    except typer.Exit:
        raise
    except UsageError as error:
        if runtime.debug:
            raise
        fail(str(error), 2)
    except ExpectedError as error:
        if runtime.debug:
            raise
        fail(str(error))
    except Exception as error:
        if runtime.debug:
            raise
        if _is_sqlalchemy_error(error):
            fail(f"database error: {error.__class__.__name__}: {getattr(error, 'orig', error)}")
        if isinstance(error, OSError):
            fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
        raise


def _is_sqlalchemy_error(error: BaseException) -> bool:
    """Whether `error` is a SQLAlchemyError, without importing SQLAlchemy: a command that has not imported it
    cannot have raised one."""
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.SQLAlchemyError)
