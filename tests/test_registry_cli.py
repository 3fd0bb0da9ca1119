"""`registry` CLI (registry/cli.py) end to end on a real SQLite file and on PostgreSQL, through typer's CliRunner.

Shapes as in ../shared/CONTRACT.md: one JSON document on stdout with --json, exit 1 failed, 2 bad usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from servers import free_port
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner, Result

from registry import record
from registry.cli import app
from registry.config import Registry, load_registry
from registry.db import open_registry
from registry.models import InboundMail
from registry.paths import config_dir

TZ = ZoneInfo("Europe/Stockholm")
KEYS = ["skis", "grundskola", "elevhalsa", "introduktion", "vux"]
Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


def invoker(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    for name in list(os.environ):
        if name.startswith("MAILBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / "mailbot.toml"
    settings.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--config", str(settings), *args])

    return run


@pytest.fixture
def invoke(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    return invoker(tmp_path, database_url, monkeypatch)


@pytest.fixture
def engine(database_url: str, registry: Registry) -> Iterator[Engine]:
    engine = open_registry(database_url, registry)
    yield engine
    engine.dispose()


def as_json(result: Result) -> object:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def add_mail(session: Session, **changes: object) -> int:
    received = changes.pop("received", datetime(2025, 3, 20, 8, 0, tzinfo=UTC))
    fields: dict[str, object] = dict(
        sha256=os.urandom(32).hex(), message_id=f"<{os.urandom(6).hex()}@skovde.se>", folder="INBOX",
        from_address="anna.svensson@skovde.se", subject="Protokoll 14/3", received=received, first_seen=received,
        status="registered", kinds="minutes", network_key="grundskola",
    )  # fmt: skip
    fields.update(changes)
    mail = InboundMail(**fields)
    session.add(mail)
    session.flush()
    assert mail.id is not None
    return mail.id


PAYLOAD = b"%PDF-1.4\n\x00\x01\xfeprotokoll 14 mars\n%%EOF"


@pytest.fixture
def facts(engine: Engine) -> dict[str, int]:
    """A member list, three meetings (one cancelled), minutes for one, a mail in review."""
    with Session(engine) as session:
        list_mail = add_mail(session, subject="Medlemslista 2025", kinds="member_list",
                             received=datetime(2025, 1, 10, 9, 0, tzinfo=UTC))  # fmt: skip
        members = [
            record.NewMember("Anna Svensson", "anna.svensson@skovde.se", "Skövde", "chair"),
            record.NewMember("Bo Ek", "bo.ek@hjo.se", "Hjo", "member"),
            record.NewMember("Extern Expert", "expert@example.org", None, "member"),
        ]
        record.member_list(session, "grundskola", members, [], datetime(2025, 1, 10, 9, 0, tzinfo=UTC), "body",
                           list_mail, TZ)  # fmt: skip
        dates_mail = add_mail(session, subject="Mötesdatum 2025", kinds="meeting_dates",
                              received=datetime(2025, 1, 12, 9, 0, tzinfo=UTC))  # fmt: skip
        record.announced_meeting(session, "grundskola", date(2025, 3, 14), time(9, 0), time(12, 0), "Stadshuset, Hjo",
                                 dates_mail)  # fmt: skip
        record.announced_meeting(session, "grundskola", date(2025, 5, 9), None, None, None, dates_mail)
        record.calendar_meeting(session, "grundskola", "uid-sept", "", 0, date(2025, 9, 12), time(9, 0), None, None,
                                True, dates_mail)  # fmt: skip
        minutes_mail = add_mail(session)
        doc, _ = record.document(session, "protokoll-14-mars.pdf", "application/pdf", PAYLOAD, "", minutes_mail)
        item, _, _ = record.minutes(session, "grundskola", date(2025, 3, 14), doc, ["Hjo"],
                                    datetime(2025, 3, 20, 8, 0, tzinfo=UTC), minutes_mail)  # fmt: skip
        review_mail = add_mail(session, subject="Fråga om nätverket", status="review", kinds="other",
                               network_key=None, reason="no network recognised",
                               received=datetime(2025, 3, 21, 8, 0, tzinfo=UTC))  # fmt: skip
        session.commit()
        return {"minutes": item.id or 0, "review": review_mail, "list": list_mail}


# --- networks -----------------------------------------------------------------------------------------


def test_networks_json(invoke: Invoke) -> None:
    rows = as_json(invoke("networks", "--json"))
    assert isinstance(rows, list)
    assert [r["key"] for r in rows] == KEYS
    assert [r["min_meetings_per_year"] for r in rows] == [4, 4, 4, 6, 6]
    assert {r["key"]: r["meeting_weekday"] for r in rows} == {
        "skis": "friday", "grundskola": None, "elevhalsa": "friday", "introduktion": None, "vux": None,
    }  # fmt: skip
    assert all(r["name"] for r in rows)


@pytest.mark.parametrize("engine_name", ["sqlite", "postgres"])
def test_networks_table_needs_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_name: str) -> None:
    # A SQLite file that is not there (and is not created), a PostgreSQL server that does not answer.
    path = tmp_path / "var" / "registry.sqlite3"
    closed_port = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    url = f"sqlite:///{path}" if engine_name == "sqlite" else closed_port
    result = invoker(tmp_path, url, monkeypatch)("networks")
    assert result.exit_code == 0, result.output
    assert "grundskola" in result.stdout and "Introduktionsprogrammen" in result.stdout
    assert not path.exists()


# --- status -------------------------------------------------------------------------------------------


def test_status_on_an_empty_registry(invoke: Invoke, engine: Engine) -> None:
    rows = as_json(invoke("status", "--as-of", "2025-02-15", "--json"))
    assert isinstance(rows, list)
    for row in rows:
        assert {"network", "obligation", "state", "due", "detail"} <= set(row)
        assert row["state"] in {"ok", "open", "overdue", "at_risk", "breach"}
    for key in KEYS:
        for obligation in ("member_list", "meeting_dates"):
            matching = [r for r in rows if r["network"] == key and r["obligation"] == obligation]
            assert [(r["state"], r["due"]) for r in matching] == [("overdue", "2025-01-31")], (key, obligation)
    assert {r["network"] for r in rows} == set(KEYS)
    member_list = next(r for r in rows if r["network"] == "grundskola" and r["obligation"] == "member_list")
    assert (
        member_list["detail"] == "Medlemsförteckningen för 2025 har inte kommit in (skulle skickas senast 31 januari)."
    )


def test_status_for_one_network_with_facts(invoke: Invoke, facts: dict[str, int]) -> None:
    rows = as_json(invoke("status", "--network", "grundskola", "--as-of", "2025-06-01", "--json"))
    assert {r["network"] for r in rows} == {"grundskola"}
    states = {r["obligation"]: r["state"] for r in rows if r["obligation"] != "minutes"}
    assert states == {"member_list": "ok", "meeting_dates": "ok", "meeting_count": "at_risk"}
    minutes = [(r["meeting_date"], r["state"]) for r in rows if r["obligation"] == "minutes"]
    assert minutes == [("2025-03-14", "ok"), ("2025-05-09", "overdue")]


def test_status_table(invoke: Invoke, engine: Engine) -> None:
    result = invoke("status", "--as-of", "2025-01-15")
    assert result.exit_code == 0, result.output
    assert "Status per 2025-01-15" in result.stdout
    # Swedish for the person at the terminal: headings and state names (--json keeps the English values).
    assert "skyldighet" in result.stdout and "ej förfallen" in result.stdout
    assert " open " not in result.stdout and "obligation" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", "--network", "nope", "--json"), "unknown network 'nope'"),
        (("members", "nope", "--json"), "unknown network 'nope'"),
        (("meetings", "Gymnasiet"), "unknown network 'Gymnasiet'"),
        (("status", "--as-of", "2025-02-30"), "--as-of: '2025-02-30' is not a valid date"),
        (("status", "--as-of", "15/2/2025", "--json"), "is not a date"),
        (("members", "grundskola", "--as-of", "igår"), "is not a date"),
        (("mails", "--since", "2025-13-01"), "--since: '2025-13-01' is not a valid date"),
        (("minutes", "--get", "1"), "--get needs --out FILE"),
    ],
)
def test_bad_usage_exits_2_with_a_message(invoke: Invoke, engine: Engine, args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


@pytest.mark.parametrize("engine_name", ["sqlite", "postgres"])
def test_a_configured_database_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, engine_name: str
) -> None:
    path = tmp_path / "var" / "registry.sqlite3"
    if engine_name == "sqlite":
        url, expected = f"sqlite:///{path}", f"error: no registry database at {path} (run `mailbot demo`"
    else:  # PostgreSQL: the server is there, the database is not (the product never creates a database)
        url = request.getfixturevalue("postgres_server").url("no_such_registry")
        expected = "error: cannot use the registry database postgresql+psycopg://postgres@127.0.0.1:"
    invoke = invoker(tmp_path, url, monkeypatch)
    for args in (("status", "--json"), ("members", "grundskola"), ("mails", "--json"), ("review",)):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.stderr
        assert 'database "no_such_registry" does not exist' in result.stderr or engine_name == "sqlite"
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert result.stdout == ""
    assert not path.exists()


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "absent.toml"), "status", "--json"])
    assert result.exit_code == 1
    assert "absent.toml: configuration file not found" in result.stderr
    assert "Traceback" not in result.output


def test_the_database_url_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry, database_url: str
) -> None:
    for name in list(os.environ):
        if name.startswith("MAILBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    open_registry(database_url, registry).dispose()
    monkeypatch.setenv("MAILBOT_DATABASE__URL", database_url)
    result = CliRunner().invoke(app, ["status", "--network", "vux", "--as-of", "2025-01-15", "--json"])
    rows = as_json(result)
    assert {r["network"] for r in rows} == {"vux"}
    assert next(r for r in rows if r["obligation"] == "member_list")["state"] == "open"


# --- members, meetings, minutes ------------------------------------------------------------------


def test_members(invoke: Invoke, facts: dict[str, int]) -> None:
    rows = as_json(invoke("members", "grundskola", "--as-of", "2025-02-01", "--json"))
    assert [{k: r[k] for k in ("name", "email", "municipality", "role")} for r in rows] == [
        {"name": "Anna Svensson", "email": "anna.svensson@skovde.se", "municipality": "Skövde", "role": "chair"},
        {"name": "Bo Ek", "email": "bo.ek@hjo.se", "municipality": "Hjo", "role": "member"},
        {"name": "Extern Expert", "email": "expert@example.org", "municipality": None, "role": "member"},
    ]
    assert as_json(invoke("members", "grundskola", "--as-of", "2025-01-09", "--json")) == []
    assert as_json(invoke("members", "skis", "--json")) == []
    table = invoke("members", "grundskola", "--as-of", "2025-02-01")
    assert table.exit_code == 0 and "anna.svensson@skovde.se" in table.stdout


def test_meetings(invoke: Invoke, facts: dict[str, int]) -> None:
    rows = as_json(invoke("meetings", "grundskola", "--year", "2025", "--as-of", "2025-06-01", "--json"))
    assert [{k: r[k] for k in ("date", "start", "place", "status", "has_minutes")} for r in rows] == [
        {"date": "2025-03-14", "start": "09:00", "place": "Stadshuset, Hjo", "status": "held", "has_minutes": True},
        {"date": "2025-05-09", "start": None, "place": None, "status": "held", "has_minutes": False},
        {"date": "2025-09-12", "start": "09:00", "place": None, "status": "cancelled", "has_minutes": False},
    ]
    early = as_json(invoke("meetings", "grundskola", "--as-of", "2025-03-14", "--json"))
    assert [r["status"] for r in early] == ["planned", "planned", "cancelled"]  # a meeting today is not held yet
    assert as_json(invoke("meetings", "grundskola", "--year", "2024", "--json")) == []


def test_minutes_list_and_get(invoke: Invoke, facts: dict[str, int], tmp_path: Path) -> None:
    rows = as_json(invoke("minutes", "grundskola", "--json"))
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("id", "meeting_date", "filename")} == {
        "id": facts["minutes"], "meeting_date": "2025-03-14", "filename": "protokoll-14-mars.pdf",
    }  # fmt: skip
    assert row["received"].startswith("2025-03-20T08:00")
    assert as_json(invoke("minutes", "grundskola", "--year", "2024", "--json")) == []

    out = tmp_path / "saved.pdf"
    result = invoke("minutes", "--get", str(facts["minutes"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == PAYLOAD
    missing = invoke("minutes", "--get", "9999", "--out", str(tmp_path / "x.pdf"))
    assert missing.exit_code == 1
    assert "no minutes with id 9999" in missing.stderr
    assert not (tmp_path / "x.pdf").exists()


def test_minutes_without_a_network(invoke: Invoke, engine: Engine) -> None:
    result = invoke("minutes", "--json")
    assert result.exit_code == 2
    assert "give a NETWORK" in result.stderr


# --- mails and review -----------------------------------------------------------------------------


def test_mails(invoke: Invoke, facts: dict[str, int]) -> None:
    rows = as_json(invoke("mails", "--json"))
    assert len(rows) == 4
    for row in rows:
        assert {"id", "message_id", "from", "subject", "received", "status", "network", "kinds"} <= set(row)
        assert row["status"] in {"registered", "review", "ignored"}
        assert isinstance(row["kinds"], list)
    first = rows[0]
    assert (first["id"], first["subject"], first["kinds"], first["network"], first["from"]) == (
        facts["list"], "Medlemslista 2025", ["member_list"], "grundskola", "anna.svensson@skovde.se",
    )  # fmt: skip
    since = as_json(invoke("mails", "--since", "2025-03-21", "--json"))
    assert [r["id"] for r in since] == [facts["review"]]
    table = invoke("mails")
    assert table.exit_code == 0 and "Medlemslista 2025" in table.stdout


def test_review(invoke: Invoke, facts: dict[str, int]) -> None:
    rows = as_json(invoke("review", "--json"))
    assert [{k: r[k] for k in ("id", "from", "subject", "reason")} for r in rows] == [
        {"id": facts["review"], "from": "anna.svensson@skovde.se", "subject": "Fråga om nätverket",
         "reason": "no network recognised"},
    ]  # fmt: skip
    assert rows[0]["message_id"].endswith("@skovde.se>")


def test_review_resolve_needs_dismiss_or_a_network(invoke: Invoke, facts: dict[str, int]) -> None:
    result = invoke("review", "--resolve", str(facts["review"]))
    assert result.exit_code == 2
    assert "--resolve needs either --dismiss" in result.stderr


def test_json_on_stdout_only_even_with_debug(invoke: Invoke, facts: dict[str, int]) -> None:
    result = invoke("--debug", "status", "--as-of", "2025-06-01", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows
