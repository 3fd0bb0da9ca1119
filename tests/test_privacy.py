"""`registry export-person` and `registry forget`: after forget the address and the name are nowhere in the file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from registry import record
from registry.cli import app
from registry.config import load_registry
from registry.db import open_registry
from registry.models import BouncingAddress, InboundMail, Membership, OutboundMail, Person
from registry.paths import config_dir

T0 = datetime(2025, 1, 20, 8, 0, tzinfo=UTC)
ADDRESS = "karin.oskarsson@mariestad.se"
NAME = "Karin Oskarsson"


def raw_mail(sender: str, body: str) -> bytes:
    return (f"From: {sender}\r\nTo: utbildning@skaraborg.se\r\nSubject: Medlemmar\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    path = tmp_path / "registry.sqlite3"
    engine: Engine = open_registry(f"sqlite:///{path}", load_registry(config_dir()))
    with Session(engine) as session:

        def mail(sender: str, name: str, subject: str, body: str, status: str = "registered") -> int:
            raw = raw_mail(f"{name} <{sender}>", body)
            row = InboundMail(sha256=record.sha256(raw), folder="INBOX", raw=raw, size=len(raw), from_address=sender,
                              from_name=name, subject=subject, body_text=body, received=T0, first_seen=T0,
                              status=status, network_key="grundskola", reason="unclear" if status == "review" else None)  # fmt: skip
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

        # a member list sent by the secretary that names Karin
        list_mail = mail("anna.svensson@skovde.se", "Anna Svensson", "Medlemslista grundskola 2025",
                         f"Här är listan:\n{NAME}, {ADDRESS}, Mariestad\nPer Ek, per.ek@hjo.se, Hjo")  # fmt: skip
        record.member_list(session, "grundskola", [
            record.NewMember(NAME, ADDRESS, "Mariestad", "member"),
            record.NewMember("Per Ek", "per.ek@hjo.se", "Hjo", "member"),
        ], [{"row_number": 4, "text": f"{NAME} (vikarie) {ADDRESS}", "reason": "duplicate"}], T0, "body", list_mail,
            ZoneInfo("Europe/Stockholm"))  # fmt: skip
        # minutes naming her
        doc, _ = record.document(session, "Protokoll 250206.txt", "text/plain",
                                 f"Närvarande: {NAME} (Mariestad), Per Ek (Hjo)".encode(),
                                 f"Närvarande: {NAME} (Mariestad), Per Ek (Hjo)", list_mail)  # fmt: skip
        record.minutes(session, "grundskola", date(2025, 2, 6), doc, ["Mariestad", "Hjo"], T0, list_mail)
        # mails from her, one in review
        mail(ADDRESS, NAME, f"Fråga från {NAME}", "Hej, när är nästa träff? /Karin", status="review")
        mail(ADDRESS, NAME, "Frånvaro", "Jag kan inte komma på fredag.")
        record.bounce(session, ADDRESS, T0, list_mail)
        session.add(OutboundMail(dedup_key="r1", kind="reminder", network_key="grundskola",
                                 recipients=f"per.ek@hjo.se,{ADDRESS}", cc=ADDRESS, subject="Påminnelse",
                                 body_text=f"Hej {NAME}!\nSkicka in protokollet.", message_id="<m1@mailbot>",
                                 created=T0, state="sent"))  # fmt: skip
        session.commit()
    engine.dispose()
    config = tmp_path / "mailbot.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
    yield config, path


def run(config: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--config", str(config), *args], input=input)


def file_bytes(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_export_person_lists_everything(setup: tuple[Path, Path]) -> None:
    config, _ = setup
    result = run(config, "export-person", ADDRESS.upper())
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["person"]["name"] == NAME
    assert [(m["network"], m["municipality"], m["role"], m["valid_from"]) for m in data["memberships"]] == [
        ("grundskola", "Mariestad", "member", "2025-01-20")
    ]
    assert {m["subject"] for m in data["mails_from"]} == {f"Fråga från {NAME}", "Frånvaro"}
    assert [m["kind"] for m in data["mails_to"]] == ["reminder"]
    assert [m["reason"] for m in data["review_items"]] == ["unclear"]


def test_forget_asks_first(setup: tuple[Path, Path]) -> None:
    config, path = setup
    result = run(config, "forget", ADDRESS, input="n\n")
    assert result.exit_code == 1
    assert ADDRESS.encode() in file_bytes(path)


def test_forget_erases_the_person_from_the_file_and_keeps_the_counts(setup: tuple[Path, Path]) -> None:
    config, path = setup
    assert ADDRESS.encode() in file_bytes(path) and NAME.encode() in file_bytes(path)
    result = run(config, "forget", ADDRESS, input="y\n")
    assert result.exit_code == 0, result.output
    assert ADDRESS not in result.output and NAME not in result.output
    assert "forget: memberships anonymised: 1" in result.stderr  # the log: counts only
    data = file_bytes(path)
    for needle in (ADDRESS, NAME, "Oskarsson", "oskarsson"):
        assert needle.encode() not in data, needle
        assert needle.encode("utf-16-le") not in data, needle

    engine = open_registry(f"sqlite:///{path}", load_registry(config_dir()))
    with Session(engine) as session:
        memberships = session.exec(select(Membership).where(Membership.valid_to == None)).all()  # noqa: E711
        assert sorted((m.municipality or "", m.person_id is None) for m in memberships) == [
            ("Hjo", False), ("Mariestad", True)
        ]  # fmt: skip
        assert [p.email for p in session.exec(select(Person)).all()] == ["per.ek@hjo.se"]
        assert session.exec(select(BouncingAddress)).all() == []
        out = session.exec(select(OutboundMail)).one()
        assert (out.recipients, out.cc) == ("per.ek@hjo.se,borttagen@invalid", "borttagen@invalid")
        mails = session.exec(select(InboundMail).order_by(InboundMail.id)).all()
        assert len(mails) == 3  # the rows (and the facts pointing at them) stay
        assert mails[0].raw is None and "Per Ek" in mails[0].body_text  # named her: bytes purged, text redacted
        assert all(m.raw is None and m.from_address == "[borttagen]" for m in mails[1:])
        assert mails[2].subject == "Frånvaro"
    engine.dispose()
    # search no longer finds her, and export-person has nothing
    assert json.loads(run(config, "search", "Oskarsson", "--json").stdout) == []
    exported = json.loads(run(config, "export-person", ADDRESS).stdout)
    assert exported["person"] is None and exported["mails_from"] == [] and exported["memberships"] == []
