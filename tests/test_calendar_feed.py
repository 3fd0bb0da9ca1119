"""`registry calendar`: the meetings as iCalendar, read back with icalendar and an independent line reader."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from registry import record
from registry.cli import app
from registry.config import load_registry
from registry.db import open_registry
from registry.models import InboundMail
from registry.paths import config_dir

T0 = datetime(2025, 1, 16, 8, 0, tzinfo=UTC)


@pytest.fixture
def cfg(tmp_path: Path, database_url: str) -> Iterator[Path]:
    engine: Engine = open_registry(database_url, load_registry(config_dir()))
    with Session(engine) as session:
        mail = InboundMail(sha256=os.urandom(32).hex(), folder="INBOX", subject="Datum", received=T0, first_seen=T0,
                           status="registered", network_key="elevhalsa")  # fmt: skip
        session.add(mail)
        session.flush()
        assert mail.id is not None
        record.announced_meeting(session, "elevhalsa", date(2025, 2, 7), time(9), time(12), "Stadshuset, Skövde",
                                 mail.id)  # fmt: skip
        record.announced_meeting(session, "elevhalsa", date(2025, 3, 21), None, None, None, mail.id)
        record.calendar_meeting(session, "elevhalsa", "040000008200E00074C5B7101A82E008@outlook.com", "", 2,
                                date(2025, 7, 1), time(13, 30), time(15), "Teams", False, mail.id)  # fmt: skip
        record.calendar_meeting(session, "grundskola", "abc-123@example.se", "", 0, date(2025, 5, 9), time(9),
                                time(11), "Lidköping", False, mail.id)  # fmt: skip
        record.calendar_meeting(session, "grundskola", "abc-123@example.se", "", 1, date(2025, 5, 9), time(9),
                                time(11), "Lidköping", True, mail.id)  # fmt: skip
        session.commit()
    engine.dispose()
    config = tmp_path / "mailbot.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    yield config


def unfolded_events(data: bytes) -> list[dict[str, str]]:
    """An independent reader: unfold lines (RFC 5545 3.1), split VEVENTs, name -> (params, value)."""
    text = data.decode("utf-8")
    assert "\r\n" in text and not re.search(r"(?<!\r)\n", text), "lines end in CRLF"
    lines = re.sub(r"\r\n[ \t]", "", text).split("\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n")), "folded at 75 octets"
    events: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            assert current is not None
            events.append(current)
            current = None
        elif current is not None and ":" in line:
            name_params, value = line.split(":", 1)
            current[name_params.split(";")[0]] = line
            current[name_params.split(";")[0] + "_value"] = value
    assert lines[0] == "BEGIN:VCALENDAR" and "END:VCALENDAR" in lines
    return events


def write(cfg: Path, tmp_path: Path, *extra: str) -> bytes:
    out = tmp_path / "feed.ics"
    result = CliRunner().invoke(app, ["--config", str(cfg), "calendar", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_every_meeting_with_stable_uid_place_times_and_cancellations(cfg: Path, tmp_path: Path) -> None:
    data = write(cfg, tmp_path)
    cal = Calendar.from_ical(data)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert len(events) == 4
    outlook = events["040000008200E00074C5B7101A82E008@outlook.com"]
    assert outlook["DTSTART"].dt == datetime(2025, 7, 1, 13, 30, tzinfo=outlook["DTSTART"].dt.tzinfo)
    assert str(outlook["DTSTART"].params["TZID"]) == "Europe/Stockholm"
    assert str(outlook["LOCATION"]) == "Teams"
    assert str(outlook["SUMMARY"]).endswith(" – nätverksträff")
    assert str(events["abc-123@example.se"]["STATUS"]) == "CANCELLED"
    ours = [e for uid, e in events.items() if uid.startswith("meeting-")]
    assert all(uid.endswith("@mailbot.skaraborg.se") for uid in events if uid.startswith("meeting-"))
    all_day = [e for e in ours if not isinstance(e["DTSTART"].dt, datetime)]
    assert [e["DTSTART"].dt for e in all_day] == [date(2025, 3, 21)]
    assert all_day[0]["DTEND"].dt == date(2025, 3, 22)
    timed = [e for e in ours if isinstance(e["DTSTART"].dt, datetime)][0]
    assert timed["DTSTART"].dt.utcoffset().total_seconds() == 3600  # CET in February
    assert [c.name for c in cal.walk("VTIMEZONE")] == ["VTIMEZONE"]
    # the same meetings give the same UIDs on the next run
    again = {str(e["UID"]) for e in Calendar.from_ical(write(cfg, tmp_path)).walk("VEVENT")}
    assert again == set(events)


def test_a_second_independent_reader_agrees(cfg: Path, tmp_path: Path) -> None:
    events = unfolded_events(write(cfg, tmp_path))
    assert len(events) == 4
    assert all("UID" in e and "DTSTART" in e and "DTSTAMP" in e for e in events)
    timed = [e for e in events if "TZID=Europe/Stockholm" in e["DTSTART"]]
    assert {e["DTSTART_value"] for e in timed} == {"20250207T090000", "20250701T133000", "20250509T090000"}
    assert [e["DTSTART"] for e in events if "VALUE=DATE" in e["DTSTART"]] == ["DTSTART;VALUE=DATE:20250321"]
    assert [e["UID_value"] for e in events if e.get("STATUS_value") == "CANCELLED"] == ["abc-123@example.se"]
    assert any(e.get("LOCATION_value") == "Stadshuset\\, Skövde" for e in events)


def test_one_network(cfg: Path, tmp_path: Path) -> None:
    cal = Calendar.from_ical(write(cfg, tmp_path, "--network", "grundskola"))
    assert [str(e["UID"]) for e in cal.walk("VEVENT")] == ["abc-123@example.se"]
