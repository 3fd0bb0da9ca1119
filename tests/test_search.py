"""`registry search` against a real registry on both engines (SQLite FTS5 kept in step by triggers; PostgreSQL's
`swedish` text-search configuration): å/ä/ö distinct, prefixes, phrases, the match marked with [ ]."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session
from typer.testing import CliRunner

from registry import record
from registry.cli import app
from registry.config import load_registry
from registry.db import open_registry
from registry.models import Document, InboundMail
from registry.paths import config_dir
from registry.search import parse_terms, search, tsquery

T0 = datetime(2025, 3, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path, database_url: str) -> Iterator[tuple[Engine, Path]]:
    engine = open_registry(database_url, load_registry(config_dir()))
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    yield engine, cfg
    engine.dispose()


def add_mail(session: Session, subject: str, body: str, network: str = "elevhalsa", received: datetime = T0) -> int:
    mail = InboundMail(
        sha256=os.urandom(32).hex(), folder="INBOX", from_address="emma.holmberg@lidkoping.se", subject=subject,
        body_text=body, received=received, first_seen=received, status="registered", kinds="minutes",
        network_key=network,
    )  # fmt: skip
    session.add(mail)
    session.flush()
    assert mail.id is not None
    return mail.id


def add_minutes(session: Session, network: str, day: date, filename: str, body: str) -> int:
    mail_id = add_mail(
        session, f"Protokoll {day}", "Se bifogat protokoll.", network, datetime(day.year, 6, 1, tzinfo=UTC)
    )
    doc, _ = record.document(session, filename, "text/plain", body.encode(), body, mail_id)
    item, _, _ = record.minutes(session, network, day, doc, [], T0, mail_id)
    assert item.id is not None
    return item.id


@pytest.fixture
def filled(db: tuple[Engine, Path]) -> tuple[Engine, Path]:
    engine, _ = db
    with Session(engine) as session:
        add_minutes(session, "elevhalsa", date(2025, 3, 21), "Minnesanteckningar elevhälsa 2025-03-21.docx",
                    "Närvarande: Skövde, Lidköping.\n§ 3 Elevhälsoplanen diskuterades och antogs.")  # fmt: skip
        add_minutes(session, "grundskola", date(2024, 2, 6), "Protokoll grundskola 240206.docx",
                    "Närvarande: Mariestad.\n§ 2 Halsa nyckelband, inte något annat.")  # fmt: skip
        add_minutes(session, "grundskola", date(2025, 2, 6), "Protokoll grundskola 250206.docx",
                    "§ 4 Elevhälsans roll i skolutvecklingen togs upp.")  # fmt: skip
        add_mail(session, "Datum elevhälsa HT 2025", "Hej! Här är höstens datum för elevhälsonätverket.")
        session.commit()
    return db


def test_prefix_search_finds_minutes_and_mails_with_the_match_marked(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        hits = search(session, "elevhäls*")
    minutes = [h for h in hits if h.kind == "minutes"]
    mails = [h for h in hits if h.kind == "mail"]
    assert {(h.network, h.meeting_date) for h in minutes} == {("elevhalsa", "2025-03-21"), ("grundskola", "2025-02-06")}
    assert all(h.filename and h.filename.endswith(".docx") for h in minutes)
    assert any("[Elevhälsoplanen]" in h.snippet for h in minutes)
    assert any("[elevhälsonätverket]" in h.snippet or "[elevhälsa]" in h.snippet for h in mails)


def test_a_and_ä_and_ö_stay_distinct(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        halsa = search(session, "halsa")
        hälsa = search(session, "hälsa*")
    assert [h.meeting_date for h in halsa] == ["2024-02-06"]
    assert "2024-02-06" not in {h.meeting_date for h in hälsa}


def test_upper_case_å_ä_ö_find_lower_case(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        mail_id = add_mail(session, "Årsmöte", "Välkomna till årsmötet i Töreboda, Östra skolan.")
        session.commit()
        assert [h.id for h in search(session, "ÅRSMÖT*")] == [mail_id]
        assert [h.id for h in search(session, "töreboda ÖSTRA")] == [mail_id]
        assert search(session, "Ostra") == [] and search(session, "arsmot*") == []


def test_a_match_only_in_the_file_name_is_marked_there(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        hits = search(session, "minnesanteckningar")
    assert [(h.kind, h.meeting_date) for h in hits] == [("minutes", "2025-03-21")]
    assert hits[0].snippet.startswith("[Minnesanteckningar] elevhälsa")


def test_the_query_is_the_same_on_both_engines(filled: tuple[Engine, Path]) -> None:
    """Prefix, phrase and plain words mean the same on SQLite and PostgreSQL (stemming aside)."""
    engine, _ = filled
    with Session(engine) as session:
        prefix = {(h.kind, h.network, h.meeting_date) for h in search(session, "elevhälsopl*")}
        phrase = [h.kind for h in search(session, '"Elevhälsoplanen diskuterades"')]
        wrong_order = search(session, '"diskuterades Elevhälsoplanen"')
    assert prefix == {("minutes", "elevhalsa", "2025-03-21")}
    assert phrase == ["minutes"] and wrong_order == []


def test_postgresql_stems_swedish_and_sqlite_does_not(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        found = {h.meeting_date for h in search(session, "protokollen") if h.kind == "minutes"}  # files: "Protokoll …"
    assert found == ({"2024-02-06", "2025-02-06"} if engine.dialect.name == "postgresql" else set())


def test_network_and_year_filters(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        only_grundskola = search(session, "elevhäls*", network="grundskola")
        only_2024 = search(session, "närvarande", year=2024)
    assert {h.network for h in only_grundskola} == {"grundskola"}
    assert [h.meeting_date for h in only_2024] == ["2024-02-06"]


def test_the_index_follows_updates_and_deletes_in_the_same_transaction(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        mail_id = add_mail(session, "Kallelse", "Vi ses i Falköping för skolbiblioteksfrågor.")
        assert [h.id for h in search(session, "skolbibliotek*")] == [mail_id]  # before commit: same transaction
        session.rollback()
        assert search(session, "skolbibliotek*") == []
        doc = session.get(Document, 1)
        assert doc is not None
        doc.text = "Bara nytt innehåll om läxhjälp."
        session.commit()
        assert search(session, "läxhjälp") and not search(session, "Elevhälsoplanen")
        if engine.dialect.name == "sqlite":  # PostgreSQL has no index to keep in step: it searches the rows
            count = session.connection().execute(text("SELECT count(*) FROM search_index")).scalar_one()
            rows = session.connection().execute(text("SELECT (SELECT count(*) FROM document) + (SELECT count(*) FROM inbound_mail)")).scalar_one()  # fmt: skip
            assert count == rows


def test_odd_input_is_not_fts_syntax(filled: tuple[Engine, Path]) -> None:
    engine, _ = filled
    with Session(engine) as session:
        assert search(session, '14/3 AND "OR" NEAR(') == []
        assert [h.kind for h in search(session, '"höstens datum" HT')] == ["mail"]
    assert parse_terms('"två ord"* elev') and tsquery(parse_terms("elevhäls* ord")) == "('elevhäls':*) & ('ord')"


def test_cli_search_json_and_table(filled: tuple[Engine, Path]) -> None:
    _, cfg = filled
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(cfg), "search", "elevhäls*", "--network", "elevhalsa", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits and {h["network"] for h in hits} == {"elevhalsa"}
    table = runner.invoke(app, ["--config", str(cfg), "search", "Elevhälsoplanen"])
    assert table.exit_code == 0, table.output
    assert "2025-03-21" in table.stdout and "[Elevhälsoplanen]" in table.stdout
