"""Run one corpus case through the whole pipeline (parse -> understand -> record) and read back what was recorded.

Not a test module: tests/test_corpus.py and benchmarks/accuracy.py use it. Each case runs in a fresh registry
loaded with baseline.json, then its `preceded_by` mails, then the case mail, as tests/fixtures/corpus/README.md
describes; the outcome comes back in the shape of the case's expected .json. The fresh registry is a copy of a
baseline made once per process: a SQLite file copied, or on PostgreSQL (`postgres=` a tests/servers.py
PostgresServer) a database created with the baseline database as its TEMPLATE.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from mailbot.intake import Intake, PassReport
from mailbot.settings import Settings
from mailbot.sources import RawMail
from registry import queries, record
from registry.config import Registry, load_registry
from registry.db import make_engine, open_registry
from registry.domain import MailStatus
from registry.models import BouncingAddress, InboundMail, Meeting, MemberList
from registry.paths import config_dir

if TYPE_CHECKING:
    from servers import PostgresServer

CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
BASELINE_SENDER = "utbildning@skaraborg.se"
BASELINE_DAY = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
TZ = ZoneInfo("Europe/Stockholm")


@dataclass
class CaseResult:
    """What the pipeline recorded for the case mail, in the expected .json's shape (plus extras for diagnosis)."""

    name: str
    expected: dict[str, Any]
    status: str
    network: str | None
    kinds: list[str]
    reason: str
    members: list[dict[str, Any]] | None = None  # the list in force for the network on the mail's date
    rejected_rows: int | None = None
    meetings: list[dict[str, Any]] = field(default_factory=list)  # the network's meetings on the expected dates
    touched_meetings: list[dict[str, Any]] = field(default_factory=list)  # announced meetings this mail created/changed
    # network -> meetings this mail created or changed in a network other than its own (headed sections per network)
    other_meetings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    minutes: list[dict[str, Any]] = field(default_factory=list)  # minutes this mail recorded
    bounced: list[str] = field(default_factory=list)
    member_list_recorded: bool = False  # this mail registered a member list
    period: str | None = None  # the period of the member list this mail registered ("HT 2025")
    details: dict[str, Any] = field(default_factory=dict)

    def as_expected_shape(self) -> dict[str, Any]:
        """The actual outcome with exactly the keys the expectation uses."""
        out: dict[str, Any] = {"status": self.status, "network": self.network, "kinds": self.kinds}
        if "members" in self.expected:
            out["members"] = self.members
        if "rejected_rows" in self.expected:
            out["rejected_rows"] = self.rejected_rows
        if "meetings" in self.expected:
            out["meetings"] = self.meetings
        if "minutes" in self.expected:
            out["minutes"] = self.minutes[0] if len(self.minutes) == 1 else self.minutes
        if "bounced" in self.expected:
            out["bounced"] = self.bounced
        if self.other_meetings or "other_networks" in self.expected:
            out["other_networks"] = self.other_meetings
        return out


def case_paths() -> list[Path]:
    """The authors' cases (tests/fixtures/corpus/*.eml), then the blind helpers' (corpus/blind/bN/*.eml)."""
    return sorted(CORPUS.glob("*.eml")) + sorted(CORPUS.glob("blind/*/*.eml"))


def author_group(expected: dict[str, Any]) -> str:
    """ "helpers" for a mail written blind by a helper (its .json names an "author"), else "authors"."""
    return "helpers" if expected.get("author") else "authors"


_CLASS_OF_KIND = {
    "auto_reply": "auto_reply", "bulk": "bulk", "minutes": "minutes", "member_list": "member_list",
    "meeting_dates": "meeting_dates", "meeting_invite": "meeting_change", "meeting_cancel": "meeting_change",
}  # fmt: skip


def case_class(expected: dict[str, Any]) -> str:
    """The class of issue 12 a case tests: its "class" key, else read off its kinds."""
    if expected.get("class"):
        return str(expected["class"])
    for kind in ("auto_reply", "bulk", "minutes", "member_list", "meeting_invite", "meeting_cancel", "meeting_dates"):
        if kind in expected["kinds"]:
            return _CLASS_OF_KIND[kind]
    return "other"


def expected_of(eml_path: Path) -> dict[str, Any]:
    return json.loads(eml_path.with_suffix(".json").read_text(encoding="utf-8"))


@cache
def baseline() -> dict[str, list[dict[str, Any]]]:
    return json.loads((CORPUS / "baseline.json").read_text(encoding="utf-8"))["networks"]


@cache
def _registry() -> Registry:
    return load_registry(config_dir())


def mail_date(raw: bytes) -> datetime:
    """The Date header of a raw mail, aware (the corpus always has one)."""
    message = message_from_bytes(raw, policy=policy.compat32)
    return parsedate_to_datetime(message["Date"])


def _load_baseline(session: Session) -> None:
    source = InboundMail(
        sha256=record.sha256(b"corpus baseline.json"),
        message_id="baseline@corpus.invalid",
        folder="baseline",
        from_address=BASELINE_SENDER,
        subject="baseline.json",
        received=BASELINE_DAY,
        first_seen=BASELINE_DAY,
        status=MailStatus.REGISTERED.value,
        kinds="member_list",
    )
    session.add(source)
    session.flush()
    for key, rows in baseline().items():
        members = [record.NewMember(r["name"], r["email"], r["municipality"], r["role"]) for r in rows]
        record.member_list(session, key, members, [], BASELINE_DAY, "baseline.json", source.id or 0, TZ)
    session.commit()


@cache
def _template() -> Path:
    """A migrated registry with the baseline loaded, made once per process and copied for each case."""
    folder = Path(tempfile.mkdtemp(prefix="mailbot-corpus-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "baseline.sqlite3"
    engine = open_registry(f"sqlite:///{path}", _registry())
    try:
        with Session(engine) as session:
            _load_baseline(session)
    finally:
        engine.dispose()
    # Everything into the main file, so that a copy is complete (outside any transaction: the engine's
    # connections now begin one at once, and a checkpoint inside it fails with 'database table is locked').
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return path


@cache
def _postgres_template(server: PostgresServer) -> str:
    """The name of a database on `server`, migrated with the baseline loaded, made once per server; each case
    gets a CREATE DATABASE … TEMPLATE copy of it (no connection to it may stay open)."""
    name = server.create_database("corpus_baseline")
    engine = open_registry(server.url(name), _registry())
    try:
        with Session(engine) as session:
            _load_baseline(session)
    finally:
        engine.dispose()
    return name


def _settings() -> Settings:
    # The corpus runs with the built-in defaults, whatever the environment says.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MAILBOT_")}
    try:
        return Settings()
    finally:
        os.environ.update(saved)


def run_case(eml_path: Path, tmp_path: Path, postgres: PostgresServer | None = None) -> CaseResult:
    """Process the case (baseline, preceded_by, the mail) in a fresh registry: a SQLite file under `tmp_path`,
    or with `postgres` a database of its own on that server, dropped afterwards."""
    eml_path = Path(eml_path)
    expected = expected_of(eml_path)
    registry = _registry()
    if postgres is None:
        database = tmp_path / (eml_path.stem + ".sqlite3")
        shutil.copyfile(_template(), database)
        url, drop = f"sqlite:///{database}", None
    else:
        drop = postgres.copy_of(_postgres_template(postgres))
        url = postgres.url(drop)
    engine = make_engine(url)
    try:
        intake = Intake(engine=engine, settings=_settings(), registry=registry, tz=TZ)
        sequence = [eml_path.parent / name for name in expected.get("preceded_by", [])] + [eml_path]
        report = PassReport(folder="INBOX")
        for uid, path in enumerate(sequence, start=1):
            raw = path.read_bytes()
            now = mail_date(raw) + timedelta(hours=1)
            mail = RawMail(folder="INBOX", uidvalidity=1, uid=uid, raw=raw, size=len(raw), internal_date=None, flags=())
            intake.record_mail(mail, 1, now, report)
        raw = eml_path.read_bytes()
        with Session(engine) as session:
            return _collect(session, eml_path, expected, raw)
    finally:
        engine.dispose()
        if postgres is not None and drop is not None:  # (drop is None only for SQLite)
            postgres.drop_database(drop)


def _collect(session: Session, eml_path: Path, expected: dict[str, Any], raw: bytes) -> CaseResult:
    digest = record.sha256(raw)
    mail = session.exec(select(InboundMail).where(InboundMail.sha256 == digest)).one()
    details = json.loads(mail.details) if mail.details else {}
    network = mail.network_key
    received = mail.received if mail.received.tzinfo else mail.received.replace(tzinfo=UTC)  # SQLite: naive UTC
    day = received.astimezone(TZ).date()
    result = CaseResult(
        name=eml_path.stem,
        expected=expected,
        status=mail.status,
        network=network,
        kinds=sorted(k for k in mail.kinds.split(",") if k),
        reason=mail.reason or "",
        details=details,
    )
    rejected = details.get("rejected_rows")
    result.rejected_rows = len(rejected) if isinstance(rejected, list) else None
    result.member_list_recorded = "members" in details
    member_network = network or expected.get("network")
    if "members" in expected and member_network:
        # The list this mail registered may take over later than the mail (a list for 2026 sent in November).
        registered = session.exec(select(MemberList).where(MemberList.source_mail_id == mail.id)).first()
        if registered is not None:
            day = max(day, registered.effective_from)
            result.period = getattr(registered, "period_label", None)  # (None before migration 0007)
        result.members = [
            {k: m[k] for k in ("name", "email", "municipality", "role")}
            for m in queries.members_in_force(session, member_network, day)
        ]
    if network:
        # Stored status (planned/cancelled); "held" is derived from the date and is not what a mail says.
        rows = queries.meetings(session, network, None, date.min)
        wanted = {m["date"] for m in expected.get("meetings", [])}
        result.meetings = [_meeting_shape(m) for m in rows if m["date"] in wanted]
        touched = session.exec(
            select(Meeting).where(
                Meeting.network_key == network,
                col(Meeting.announced).is_(True),
                (Meeting.source_mail_id == mail.id) | (Meeting.updated_by_mail_id == mail.id),
            )
        ).all()
        touched_dates = {m.date.isoformat() for m in touched}
        result.touched_meetings = [_meeting_shape(m) for m in rows if m["date"] in touched_dates]
        result.minutes = [
            {"meeting_date": m["meeting_date"], "municipalities_present": sorted(m["municipalities_present"])}
            for m in queries.minutes(session, network, None)
            if m["source_mail_id"] == mail.id or _same_document_again(details, m)
        ]
    elsewhere = session.exec(
        select(Meeting).where(
            Meeting.network_key != (network or ""),
            col(Meeting.announced).is_(True),
            (Meeting.source_mail_id == mail.id) | (Meeting.updated_by_mail_id == mail.id),
        )
    ).all()
    for other in sorted({m.network_key for m in elsewhere}):
        dates = {m.date.isoformat() for m in elsewhere if m.network_key == other}
        result.other_meetings[other] = [
            _meeting_shape(m) for m in queries.meetings(session, other, None, date.min) if m["date"] in dates
        ]
    result.bounced = sorted(row.email for row in session.exec(select(BouncingAddress)).all())
    return result


def _same_document_again(details: dict[str, Any], minutes_row: dict[str, Any]) -> bool:
    """Minutes already on file that this mail sent again (recorded once, so its source is the first mail)."""
    return any(
        item.get("meeting_date") == minutes_row["meeting_date"] and not item.get("new")
        for item in details.get("minutes", [])
    )


def _meeting_shape(row: dict[str, Any]) -> dict[str, Any]:
    return {"date": row["date"], "start": row["start"], "place": row["place"], "status": row["status"]}
