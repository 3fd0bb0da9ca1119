"""`registry export-person` and `registry forget`, on both engines: after forget the address and the name are nowhere
in the database (SQLite: the file's bytes; PostgreSQL: any column of any row), nor in the outbox directory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, select
from typer.testing import CliRunner

from mailbot.outbox import drain_outbox
from mailbot.settings import load_settings
from registry import record
from registry.cli import app
from registry.config import load_registry
from registry.db import open_registry
from registry.models import BouncingAddress, InboundMail, Membership, OutboundMail, Person
from registry.paths import config_dir
from registry.privacy import Redactor, forget_in_outbox_directory

T0 = datetime(2025, 1, 20, 8, 0, tzinfo=UTC)
ADDRESS = "karin.oskarsson@mariestad.se"
NAME = "Karin Oskarsson"
NEEDLES = (ADDRESS, NAME, "Oskarsson")


def raw_mail(sender: str, body: str) -> bytes:
    return (f"From: {sender}\r\nTo: utbildning@skaraborg.se\r\nSubject: Medlemmar\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()  # fmt: skip


@dataclass
class Registry:
    config: Path
    url: str
    outbox: Path


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    engine: Engine = open_registry(database_url, load_registry(config_dir()))
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
        # two reminders, sent below through the directory transport: one to her (and Per), one to Per alone
        session.add(OutboundMail(dedup_key="r1", kind="reminder", network_key="grundskola",
                                 recipients=f"per.ek@hjo.se,{ADDRESS}", cc=ADDRESS, subject="Påminnelse",
                                 body_text=f"Hej {NAME}!\nSkicka in protokollet.", message_id="<m1@mailbot>",
                                 created=T0))  # fmt: skip
        session.add(OutboundMail(dedup_key="r2", kind="reminder", network_key="grundskola",
                                 recipients="per.ek@hjo.se", subject="Påminnelse", body_text="Hej Per Ek!\nMöte på fredag.",
                                 message_id="<m2@mailbot>", created=T0))  # fmt: skip
        session.commit()
    engine.dispose()
    outbox = tmp_path / "outbox"
    config = tmp_path / "mailbot.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[smtp]\ndirectory = "{outbox}"\n', encoding="utf-8")
    settings = load_settings(config)
    engine = open_registry(database_url, load_registry(config_dir()))
    assert len(drain_outbox(engine, settings, lambda: T0).sent) == 2
    engine.dispose()
    yield Registry(config, database_url, outbox)


def run(config: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--config", str(config), *args], input=input)


def sqlite_file_bytes(url: str) -> bytes:
    path = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    wal = Path(str(path) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def postgres_rows_mentioning(url: str, needle: str) -> dict[str, int]:
    """Per table, how many rows have the needle (case-insensitive) in any column, bytea columns included."""
    engine = create_engine(url)
    found: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            ).scalars()
            binary = connection.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type = 'bytea'"
                )  # fmt: skip
            ).all()
            for table in tables:
                # A row cast to text shows bytea as hex, so bytea columns are searched as escaped text too.
                conditions = ["CAST(r AS text) ILIKE :pattern"] + [
                    f"encode(r.\"{column}\", 'escape') ILIKE :pattern" for name, column in binary if name == table
                ]
                count = connection.execute(
                    text(f'SELECT count(*) FROM "{table}" AS r WHERE ' + " OR ".join(conditions)),
                    {"pattern": f"%{needle}%"},
                ).scalar_one()
                if count:
                    found[table] = count
    finally:
        engine.dispose()
    return found


def stored_anywhere(url: str, needle: str) -> bool:
    if url.startswith("sqlite"):
        data = sqlite_file_bytes(url)
        return needle.lower().encode() in data.lower() or needle.encode("utf-16-le") in data
    return bool(postgres_rows_mentioning(url, needle))


def test_export_person_lists_everything(setup: Registry) -> None:
    result = run(setup.config, "export-person", ADDRESS.upper())
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["person"]["name"] == NAME
    assert [(m["network"], m["municipality"], m["role"], m["valid_from"]) for m in data["memberships"]] == [
        ("grundskola", "Mariestad", "member", "2025-01-20")
    ]
    assert {m["subject"] for m in data["mails_from"]} == {f"Fråga från {NAME}", "Frånvaro"}
    assert [m["kind"] for m in data["mails_to"]] == ["reminder"]
    assert [m["reason"] for m in data["review_items"]] == ["unclear"]


def test_forget_asks_first(setup: Registry) -> None:
    result = run(setup.config, "forget", ADDRESS, input="n\n")
    assert result.exit_code == 1
    assert stored_anywhere(setup.url, ADDRESS)
    assert len(list(setup.outbox.glob("*.eml"))) == 2


def test_forget_erases_the_person_from_the_database_and_keeps_the_counts(setup: Registry) -> None:
    assert all(stored_anywhere(setup.url, needle) for needle in NEEDLES)
    result = run(setup.config, "forget", ADDRESS, input="y\n")
    assert result.exit_code == 0, result.output
    assert ADDRESS not in result.output and NAME not in result.output
    assert "forget: memberships anonymised: 1" in result.stderr  # the log: counts only
    for needle in (*NEEDLES, "karin.oskarsson"):
        assert not stored_anywhere(setup.url, needle), needle

    engine = open_registry(setup.url, load_registry(config_dir()))
    with Session(engine) as session:
        memberships = session.exec(select(Membership).where(Membership.valid_to == None)).all()  # noqa: E711
        assert sorted((m.municipality or "", m.person_id is None) for m in memberships) == [
            ("Hjo", False), ("Mariestad", True)
        ]  # fmt: skip
        assert [p.email for p in session.exec(select(Person)).all()] == ["per.ek@hjo.se"]
        assert session.exec(select(BouncingAddress)).all() == []
        out = session.exec(select(OutboundMail).where(OutboundMail.dedup_key == "r1")).one()
        assert (out.recipients, out.cc) == ("per.ek@hjo.se,borttagen@invalid", "borttagen@invalid")
        mails = session.exec(select(InboundMail).order_by(InboundMail.id)).all()
        assert len(mails) == 3  # the rows (and the facts pointing at them) stay
        assert mails[0].raw is None and "Per Ek" in mails[0].body_text  # named her: bytes purged, text redacted
        assert all(m.raw is None and m.from_address == "[borttagen]" for m in mails[1:])
        assert mails[2].subject == "Frånvaro"
        assert all(json.loads(m.details)["raw_purged"]["by"] == "forget" for m in mails)  # why the bytes are gone
    engine.dispose()
    # search no longer finds her, and export-person has nothing
    assert json.loads(run(setup.config, "search", "Oskarsson", "--json").stdout) == []
    exported = json.loads(run(setup.config, "export-person", ADDRESS).stdout)
    assert exported["person"] is None and exported["mails_from"] == [] and exported["memberships"] == []


def test_forget_deletes_the_sent_mail_files_that_name_her_and_keeps_the_others(setup: Registry) -> None:
    files = sorted(p.name for p in setup.outbox.glob("*.eml"))
    assert len(files) == 2
    result = run(setup.config, "forget", ADDRESS, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"]["outbox files deleted"] == 1
    left = list(setup.outbox.glob("*.eml"))
    assert [p.name for p in left] == [files[1]]  # r2, to Per alone
    assert b"per.ek@hjo.se" in left[0].read_bytes()
    for path in setup.outbox.iterdir():
        assert b"oskarsson" not in path.read_bytes().lower()


@pytest.mark.parametrize(
    "header, body",
    [
        (f"To: {NAME} <{ADDRESS}>", "Hej!"),
        ("To: =?utf-8?q?Karin_Oskarsson?= <x@y.se>", "Hej!"),  # RFC 2047
        ("To: x@y.se", "SGVqIEthcmluIE9za2Fyc3NvbiEK"),  # base64 body: "Hej Karin Oskarsson!"
    ],
)
def test_an_outbox_file_naming_her_in_any_encoding_is_deleted(tmp_path: Path, header: str, body: str) -> None:
    encoding = "Content-Transfer-Encoding: base64\r\n" if body.startswith("SGVq") else ""
    (tmp_path / "7-reminder.eml").write_bytes(
        f"{header}\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n{encoding}\r\n{body}\r\n".encode()
    )
    (tmp_path / "8-reminder.eml").write_bytes(b"To: per.ek@hjo.se\r\nSubject: x\r\n\r\nHej Per!\r\n")
    assert forget_in_outbox_directory(tmp_path, Redactor(ADDRESS, [NAME])) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["8-reminder.eml"]


def test_forget_with_json_prints_counts_only(setup: Registry) -> None:
    result = run(setup.config, "forget", ADDRESS, "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["erased"] is True and report["done"]["person rows deleted"] == 1
    assert "oskarsson" not in result.output.lower() and "karin" not in result.output.lower()


def test_forget_redacts_a_text_attachment_in_the_outbox(setup: Registry) -> None:
    if "attachment" not in OutboundMail.model_fields:
        pytest.skip("outbound_mail.attachment arrives with migration 0005")
    engine = open_registry(setup.url, load_registry(config_dir()))
    with Session(engine) as session:
        out = session.exec(select(OutboundMail).where(OutboundMail.dedup_key == "r2")).one()
        out.attachment_name, out.attachment_type = "arsrapport-2025.html", "text/html"
        out.attachment = f"<p>Ordförande: {NAME} ({ADDRESS}); sekreterare: Per Ek</p>".encode()
        session.commit()
    result = run(setup.config, "forget", ADDRESS, "--yes")
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        out = session.exec(select(OutboundMail).where(OutboundMail.dedup_key == "r2")).one()
        assert out.attachment == b"<p>Ordf\xc3\xb6rande: [borttagen] ([borttagen]); sekreterare: Per Ek</p>"
    engine.dispose()
    assert not stored_anywhere(setup.url, "Oskarsson")


def zipped_list_mail() -> bytes:
    """A member list as a zipped attachment (as an .xlsx is): her name is nowhere in the mail's bytes as text."""
    import io
    import zipfile
    from email.message import EmailMessage

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", f"<t>{NAME}</t><t>{ADDRESS}</t><t>Mariestad</t>" * 20)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "anna.svensson@skovde.se", "utbildning@skaraborg.se", "Lista"
    message.set_content("Se bifogad lista.")
    message.add_attachment(buffer.getvalue(), maintype="application", subtype="zip", filename="medlemmar.xlsx")
    return message.as_bytes()


def test_forget_purges_the_mail_whose_attachment_listed_her_even_when_compressed(setup: Registry) -> None:
    raw = zipped_list_mail()
    assert not Redactor(ADDRESS, [NAME]).found_in_bytes(raw)  # a byte search alone would keep it
    engine = open_registry(setup.url, load_registry(config_dir()))
    with Session(engine) as session:
        mail = InboundMail(sha256=record.sha256(raw), folder="INBOX", raw=raw, size=len(raw), subject="Lista",
                           from_address="anna.svensson@skovde.se", received=T0, first_seen=T0, status="registered",
                           network_key="elevhalsa")  # fmt: skip
        session.add(mail)
        session.flush()
        assert mail.id is not None
        record.member_list(session, "elevhalsa", [record.NewMember(NAME, ADDRESS, "Mariestad", "member")], [], T0,
                           "medlemmar.xlsx", mail.id, ZoneInfo("Europe/Stockholm"))  # fmt: skip
        session.commit()
        mail_id = mail.id
    assert run(setup.config, "forget", ADDRESS, "--yes").exit_code == 0
    with Session(engine) as session:
        mail = session.get(InboundMail, mail_id)
        assert mail is not None and mail.raw is None and mail.subject == "Lista"
        assert json.loads(mail.details)["raw_purged"]["by"] == "forget"
    engine.dispose()
