"""The review queue re-examines itself: a list that makes the sender a member registers the minutes that waited
in review for that reason, with their original arrival (each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from mailbot.intake import Intake, PassReport
from mailbot.settings import Settings
from mailbot.sources import RawMail
from registry.config import load_registry
from registry.db import open_registry
from registry.models import InboundMail, Minutes
from registry.paths import config_dir

TZ = ZoneInfo("Europe/Stockholm")
BASELINE = json.loads((Path(__file__).parent / "fixtures/corpus/baseline.json").read_text(encoding="utf-8"))
NEW = ("Nils Holm", "nils.holm@hjo.se", "Hjo")
ROLE_SV = {"chair": "ordförande", "secretary": "sekreterare", "presidium": "presidium", "member": "ledamot",
           "school_chief": "skolchef"}  # fmt: skip


def mail(sender: str, subject: str, body: str, day: datetime, ident: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: utbildning@skaraborg.se\r\nSubject: {subject}\r\n"
        f"Date: {day.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\nMessage-ID: <{ident}@hjo.se>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def skis_list(extra: bool) -> str:
    rows = [(m["name"], m["municipality"] or "Skaraborgs Kommunalförbund", m["email"], m["role"])
            for m in BASELINE["networks"]["skis"]]  # fmt: skip
    if extra:
        rows.append((*NEW, "member"))
    lines = [f"{name}, {town}, {email} – {ROLE_SV[role]}" for name, town, email, role in rows]
    return "Hej!\r\n\r\nHär är förteckningen över SKIS medlemmar:\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\nJohan"


def test_a_list_that_makes_the_sender_a_member_registers_their_minutes_waiting_in_review(database_url: str) -> None:
    registry = load_registry(config_dir())
    engine = open_registry(database_url, registry)
    intake = Intake(engine=engine, settings=Settings(), registry=registry, tz=TZ)
    secretary = "Johan Lindberg <johan.lindberg@falkoping.se>"
    day = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    minutes_day = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
    sequence = [
        (mail(secretary, "Förteckning SKIS 2025", skis_list(False), day, "list-1"), day),
        (mail(f"{NEW[0]} <{NEW[1]}>", "Minnesanteckningar SKIS 2025-03-14",
              "Minnesanteckningar SKIS 2025-03-14\r\n\r\nNärvarande: Nils Holm (Hjo), Anna Svensson (Skövde)\r\n\r\n"
              "§ 1 Mötets öppnande", minutes_day, "minutes-1"), minutes_day),
        (mail(secretary, "Förteckning SKIS 2025, ny medlem", skis_list(True), day + timedelta(days=20), "list-2"),
         day + timedelta(days=20)),
    ]  # fmt: skip
    statuses = []
    for uid, (raw, when) in enumerate(sequence, start=1):
        report = PassReport(folder="INBOX")
        item = RawMail(folder="INBOX", uidvalidity=1, uid=uid, raw=raw, size=len(raw), internal_date=None, flags=())
        statuses.append(intake.record_mail(item, 1, when + timedelta(hours=1), report))
    try:
        assert statuses == ["registered", "review", "registered"]
        with Session(engine) as session:
            waited = session.exec(select(InboundMail).where(InboundMail.subject.startswith("Minnes"))).one()  # type: ignore[attr-defined]
            assert waited.status == "registered"
            assert waited.reason and waited.reason.startswith("re-examined on 2025-03-23")
            assert json.loads(waited.details)["reexamined"]["after_list_mail"] > waited.id
            (minutes,) = session.exec(select(Minutes)).all()
            assert minutes.meeting_date.isoformat() == "2025-03-14"
            received = minutes.received if minutes.received.tzinfo else minutes.received.replace(tzinfo=UTC)
            assert received == minutes_day, "recorded with the minutes' own arrival, not the list's"
    finally:
        engine.dispose()
