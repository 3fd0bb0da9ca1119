"""The registry database: migrations on open, SQLite pragmas, and the writes of registry/record.py.

Real databases: a SQLite file, and the same tests on PostgreSQL (tests/conftest.py starts one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from servers import PostgresServer, free_port
from sqlalchemy import Engine, func, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry import queries, record
from registry.config import Registry, load_registry
from registry.db import DatabaseError, open_registry
from registry.domain import ObligationKind, State
from registry.models import Document, InboundMail, Meeting, MemberList, Membership, Minutes, NetworkRow, Person
from registry.paths import config_dir
from registry.rules import evaluate

TZ = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any table (database_url's PostgreSQL one is a copy of a migrated template)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def engine(db_url: str, registry: Registry) -> Iterator[Engine]:
    engine = open_registry(db_url, registry)
    yield engine
    engine.dispose()


@pytest.fixture
def new_engine(empty_db_url: str, registry: Registry) -> Iterator[Engine]:
    """A registry opened on an empty database: every migration runs."""
    engine = open_registry(empty_db_url, registry)
    yield engine
    engine.dispose()


def add_mail(session: Session, received: datetime = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)) -> int:
    mail = InboundMail(
        sha256=os.urandom(32).hex(), message_id=f"<{os.urandom(6).hex()}@skovde.se>", folder="INBOX",
        from_address="anna.svensson@skovde.se", subject="Medlemslista", received=received, first_seen=received,
        status="registered", kinds="member_list", network_key="grundskola",
    )  # fmt: skip
    session.add(mail)
    session.flush()
    assert mail.id is not None
    return mail.id


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


# --- opening ----------------------------------------------------------------------------------------


def test_open_creates_the_schema_through_alembic(new_engine: Engine) -> None:
    engine = new_engine
    tables = set(inspect(engine).get_table_names())
    assert "alembic_version" in tables
    assert {"network", "municipality", "person", "membership", "member_list", "meeting", "minutes", "document",
            "inbound_mail", "outbound_mail"} <= tables  # fmt: skip
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_open_mirrors_the_configured_networks(new_engine: Engine) -> None:
    with Session(new_engine) as session:
        assert sorted(row.key for row in session.exec(select(NetworkRow))) == sorted(
            ["skis", "grundskola", "elevhalsa", "introduktion", "vux"]
        )
        assert session.exec(select(func.count()).select_from(text("municipality"))).one() == 15


def test_opening_twice_is_harmless(db_url: str, engine: Engine, registry: Registry) -> None:
    with Session(engine) as session:
        mail_id = add_mail(session)
        session.commit()
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    again = open_registry(db_url, registry, create=False)
    try:
        with Session(again) as session:
            assert count(session, NetworkRow) == 5
            assert session.get(InboundMail, mail_id) is not None
        with again.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [version]
    finally:
        again.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(MemberList(network_key="grundskola", effective_from=date(2025, 1, 1),
                               received=datetime(2025, 1, 1, tzinfo=UTC), source_mail_id=999_999))  # fmt: skip
        with pytest.raises(IntegrityError):
            session.commit()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path, registry: Registry) -> None:
    # SQLite only: pragmas and the file's folder are SQLite's; PostgreSQL enforces foreign keys itself (above).
    engine = open_registry(f"sqlite:///{tmp_path / 'sub' / 'registry.sqlite3'}", registry)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
    finally:
        engine.dispose()
    assert (tmp_path / "sub" / "registry.sqlite3").is_file()


def test_a_missing_sqlite_file_without_create_is_a_clear_error(tmp_path: Path, registry: Registry) -> None:
    # SQLite only: a missing file; a missing PostgreSQL database is the next test's case.
    path = tmp_path / "nothing-here.sqlite3"
    with pytest.raises(DatabaseError, match=rf"no registry database at {path} \(run `mailbot demo`"):
        open_registry(f"sqlite:///{path}", registry, create=False)
    assert not path.exists()


def test_an_unreachable_database_is_a_database_error(tmp_path: Path, registry: Registry) -> None:
    # SQLite: a file that is not a database; PostgreSQL's missing or unreachable database is the next test.
    (tmp_path / "not-a-db.sqlite3").write_bytes(b"this is not a database file" * 100)
    with pytest.raises(DatabaseError, match="registry database"):
        open_registry(f"sqlite:///{tmp_path / 'not-a-db.sqlite3'}", registry, create=False)


def test_a_missing_or_unreachable_postgresql_database_is_a_database_error(
    postgres_server: PostgresServer, registry: Registry
) -> None:
    missing = postgres_server.url("no_such_registry")
    with pytest.raises(DatabaseError, match=r"cannot open the registry database .*no_such_registry.* does not exist"):
        open_registry(missing, registry)
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/mailbot"
    with pytest.raises(DatabaseError, match="cannot open the registry database"):
        open_registry(closed, registry)


# --- member lists -------------------------------------------------------------------------------------


def new_list(session: Session, received: datetime, *people: tuple[str, str, str | None, str]) -> MemberList:
    mail_id = add_mail(session, received)
    members = [record.NewMember(name=n, email=e, municipality=m, role=r) for n, e, m, r in people]
    return record.member_list(session, "grundskola", members, [], received, "lista.xlsx", mail_id, TZ)


ANNA = ("Anna Svensson", "anna.svensson@skovde.se", "Skövde", "chair")
BO = ("Bo Ek", "bo.ek@hjo.se", "Hjo", "member")
CECILIA = ("Cecilia Lind", "cecilia.lind@tibro.se", "Tibro", "secretary")


def test_a_new_member_list_replaces_the_one_in_force_and_keeps_history(engine: Engine) -> None:
    with Session(engine) as session:
        first = new_list(session, datetime(2025, 1, 10, 9, 0, tzinfo=UTC), ANNA, BO)
        second = new_list(session, datetime(2025, 3, 3, 14, 0, tzinfo=UTC), ("Anna S. Svensson", *ANNA[1:]), CECILIA)
        session.commit()
        assert (first.effective_from, second.effective_from) == (date(2025, 1, 10), date(2025, 3, 3))

        def emails(on: date) -> list[str]:
            return [row["email"] for row in queries.members_in_force(session, "grundskola", on)]

        assert emails(date(2025, 1, 9)) == []
        assert emails(date(2025, 1, 10)) == ["anna.svensson@skovde.se", "bo.ek@hjo.se"]
        assert emails(date(2025, 3, 2)) == ["anna.svensson@skovde.se", "bo.ek@hjo.se"]
        assert emails(date(2025, 3, 3)) == ["anna.svensson@skovde.se", "cecilia.lind@tibro.se"]
        row = queries.members_in_force(session, "grundskola", date(2025, 6, 1))[0]
        assert {k: row[k] for k in ("name", "email", "municipality", "role")} == {
            "name": "Anna S. Svensson", "email": "anna.svensson@skovde.se", "municipality": "Skövde", "role": "chair",
        }  # fmt: skip
        assert queries.members_in_force(session, "skis", date(2025, 6, 1)) == []

        # history: the old memberships end the day the new list took over; one person per address
        old = session.exec(select(Membership).where(Membership.member_list_id == first.id)).all()
        assert {m.valid_to for m in old} == {date(2025, 3, 3)}
        new = session.exec(select(Membership).where(Membership.member_list_id == second.id)).all()
        assert {m.valid_to for m in new} == {None}
        assert count(session, Person) == 3
        assert count(session, MemberList) == 2
        assert all(m.source_mail_id for m in old + new)


def test_a_member_list_takes_effect_on_its_local_day(engine: Engine, registry: Registry) -> None:
    """23:30 UTC on 31 January is 00:30 on 1 February in Stockholm: the list arrived late."""
    with Session(engine) as session:
        item = new_list(session, datetime(2025, 1, 31, 23, 30, tzinfo=UTC), ANNA)
        session.commit()
        assert item.effective_from == date(2025, 2, 1)
        facts = queries.network_facts(session, "grundskola", TZ)
    assert [(f.received_on, len(f.members)) for f in facts.member_lists] == [(date(2025, 2, 1), 1)]
    names = registry.municipality_index().names
    finding = evaluate(registry.network("grundskola"), facts, date(2025, 2, 1), names)[0]
    assert (finding.obligation, finding.state) == (ObligationKind.MEMBER_LIST, State.OK)
    assert finding.detail == (
        "Medlemsförteckningen för 2025 kom in 1 februari 2025 (1 person). Den kom in 1 dag efter fristen "
        "(31 januari 2025)."
    )
    before = evaluate(registry.network("grundskola"), facts, date(2025, 1, 31), names)[0]
    assert before.state is State.OPEN


# --- meetings ---------------------------------------------------------------------------------------


def test_calendar_meeting_created_moved_stale_cancelled(engine: Engine) -> None:
    uid = "040000008200E00074C5B7101A82E008@outlook.com"
    with Session(engine) as session:
        mail = add_mail(session)

        def invite(sequence: int, day: date, cancelled: bool = False) -> tuple[Meeting, str]:
            return record.calendar_meeting(session, "grundskola", uid, "", sequence, day, time(9, 0), time(12, 0),
                                           "Stadshuset, Skövde", cancelled, mail)  # fmt: skip

        meeting, what = invite(0, date(2025, 3, 14))
        assert what == "created"
        meeting, what = invite(1, date(2025, 3, 21))
        assert (what, meeting.date) == ("moved", date(2025, 3, 21))
        meeting, what = invite(1, date(2025, 3, 21))
        assert what == "updated"
        meeting, what = invite(0, date(2025, 3, 28))  # an older invitation arriving late
        assert (what, meeting.date) == ("stale", date(2025, 3, 21))
        meeting, what = invite(2, date(2025, 3, 21), cancelled=True)
        assert (what, meeting.status) == ("cancelled", "cancelled")
        session.commit()
        assert count(session, Meeting) == 1
        rows = queries.meetings(session, "grundskola", 2025, date(2025, 4, 1))
        assert [(r["date"], r["status"], r["start"], r["place"], r["has_minutes"]) for r in rows] == [
            ("2025-03-21", "cancelled", "09:00", "Stadshuset, Skövde", False)
        ]


def test_an_invitation_adopts_the_meeting_from_a_list_of_dates(engine: Engine) -> None:
    with Session(engine) as session:
        mail = add_mail(session)
        announced, created = record.announced_meeting(session, "grundskola", date(2025, 3, 14), None, None, None, mail)
        again, created_again = record.announced_meeting(session, "grundskola", date(2025, 3, 14), time(13, 0), None,
                                                        "Hjo", mail)  # fmt: skip
        assert (created, created_again, again.id) == (True, False, announced.id)
        adopted, what = record.calendar_meeting(session, "grundskola", "uid-1", "", 0, date(2025, 3, 14), time(13, 0),
                                                time(15, 0), None, False, mail)  # fmt: skip
        session.commit()
        assert (adopted.id, what, adopted.calendar_uid, adopted.place) == (announced.id, "updated", "uid-1", "Hjo")
        assert count(session, Meeting) == 1
        rows = queries.meetings(session, "grundskola", None, date(2025, 3, 14))
        assert [(r["date"], r["status"], r["start"]) for r in rows] == [("2025-03-14", "planned", "13:00")]
        assert queries.meetings(session, "grundskola", None, date(2025, 3, 15))[0]["status"] == "held"


def test_a_dates_mail_fills_in_a_meeting_on_file_and_replaces_only_when_it_changes_it(engine: Engine) -> None:
    with Session(engine) as session:
        mail = add_mail(session)
        record.announced_meeting(session, "grundskola", date(2025, 3, 20), time(13, 0), None, "Rådhuset Skövde", mail)
        kept, _ = record.announced_meeting(session, "grundskola", date(2025, 3, 20), time(8, 30), None, None, mail)
        assert (kept.start, kept.place) == (time(13, 0), "Rådhuset Skövde")
        changed, created = record.announced_meeting(session, "grundskola", date(2025, 3, 20), time(8, 30),
                                                    time(11, 45), None, mail, replace=True)  # fmt: skip
        assert (created, changed.start, changed.end, changed.place) == (False, time(8, 30), time(11, 45),
                                                                         "Rådhuset Skövde")  # fmt: skip


def test_a_cancel_without_a_known_uid_keeps_the_time_and_place_on_file(engine: Engine) -> None:
    """b2_017: the CANCEL of an invitation the registry never saw cancels the meeting the dates mail announced;
    its LOCATION ("Skövde, Kulturhuset") does not rewrite the place on file ("Skövde (Kulturhuset)")."""
    with Session(engine) as session:
        mail = add_mail(session)
        announced, _ = record.announced_meeting(session, "vux", date(2025, 10, 23), time(13, 0), time(16, 0),
                                                "Skövde (Kulturhuset)", mail)  # fmt: skip
        cancelled, what = record.calendar_meeting(session, "vux", "uid-unknown", "", 0, date(2025, 10, 23),
                                                  time(13, 30), time(16, 0), "Skövde, Kulturhuset", True, mail)  # fmt: skip
        session.commit()
        assert (cancelled.id, what, cancelled.status) == (announced.id, "cancelled", "cancelled")
        assert (cancelled.start, cancelled.place) == (time(13, 0), "Skövde (Kulturhuset)")


# --- documents and minutes --------------------------------------------------------------------------


def test_the_same_document_is_stored_once(engine: Engine) -> None:
    payload = b"%PDF-1.4 protokoll\x00\xff"
    with Session(engine) as session:
        mail = add_mail(session)
        first, new = record.document(session, "protokoll.pdf", "application/pdf", payload, "protokoll", mail)
        second, new_again = record.document(session, "kopia.pdf", "application/pdf", payload, "protokoll", mail)
        session.commit()
        assert (new, new_again, second.id) == (True, False, first.id)
        assert count(session, Document) == 1
        stored = session.get(Document, first.id)
        assert stored is not None and stored.content == payload and stored.sha256 == record.sha256(payload)


def test_minutes_link_to_the_meeting_or_record_an_unannounced_one(engine: Engine, registry: Registry) -> None:
    received = datetime(2025, 3, 20, 8, 0, tzinfo=UTC)
    with Session(engine) as session:
        mail = add_mail(session, received)
        meeting, _ = record.announced_meeting(session, "grundskola", date(2025, 3, 14), time(9, 0), None, "Hjo", mail)
        doc, _ = record.document(session, "protokoll-14-mars.pdf", "application/pdf", b"march", "", mail)
        item, new, announced = record.minutes(session, "grundskola", date(2025, 3, 14), doc, ["Hjo", "Skövde"],
                                              received, mail)  # fmt: skip
        assert (new, announced, item.meeting_id) == (True, True, meeting.id)
        # the same document again: nothing new
        again, new_again, _ = record.minutes(session, "grundskola", date(2025, 3, 14), doc, [], received, mail)
        assert (again.id, new_again) == (item.id, False)
        # minutes of a meeting nobody announced: the meeting is recorded, flagged
        other, _ = record.document(session, "protokoll-april.pdf", "application/pdf", b"april", "", mail)
        item2, new2, announced2 = record.minutes(session, "grundskola", date(2025, 4, 11), other, [], received, mail)
        session.commit()
        assert (new2, announced2) == (True, False)
        unannounced = session.get(Meeting, item2.meeting_id)
        assert unannounced is not None and (unannounced.date, unannounced.announced) == (date(2025, 4, 11), False)
        assert count(session, Minutes) == 2

        rows = queries.minutes(session, "grundskola", 2025)
        assert [(r["meeting_date"], r["filename"], r["municipalities_present"]) for r in rows] == [
            ("2025-03-14", "protokoll-14-mars.pdf", ["Hjo", "Skövde"]),
            ("2025-04-11", "protokoll-april.pdf", []),
        ]
        assert queries.minutes(session, "grundskola", 2024) == []
        meetings = queries.meetings(session, "grundskola", 2025, date(2025, 5, 1))
        assert [(m["date"], m["has_minutes"], m["announced"]) for m in meetings] == [
            ("2025-03-14", True, True), ("2025-04-11", True, False),
        ]  # fmt: skip
        facts = queries.network_facts(session, "grundskola", TZ)

    findings = evaluate(registry.network("grundskola"), facts, date(2025, 5, 1), registry.municipality_index().names)
    minutes = [(f.meeting_date, f.state) for f in findings if f.obligation is ObligationKind.MINUTES]
    assert minutes == [(date(2025, 3, 14), State.OK), (date(2025, 4, 11), State.OK)]
    dates = next(f for f in findings if f.obligation is ObligationKind.MEETING_DATES)
    assert dates.detail == "1 mötesdatum för 2025 finns registrerade."  # the unannounced meeting is not a date sent


def test_save_minutes_document_writes_the_original_bytes(engine: Engine, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4
    with Session(engine) as session:
        mail = add_mail(session)
        doc, _ = record.document(session, "protokoll.docx", "application/octet-stream", payload, "", mail)
        item, _, _ = record.minutes(session, "grundskola", date(2025, 3, 14), doc, [], datetime.now(UTC), mail)
        session.commit()
        out = tmp_path / "out.docx"
        assert queries.save_minutes_document(session, item.id or 0, out) == ("protokoll.docx", len(payload))
        assert out.read_bytes() == payload
        with pytest.raises(queries.DocumentNotFound, match="no minutes with id 4242"):
            queries.save_minutes_document(session, 4242, tmp_path / "x")


def test_every_fact_points_to_its_mail(engine: Engine) -> None:
    with Session(engine) as session:
        new_list(session, datetime(2025, 1, 10, tzinfo=UTC), ANNA)
        mail = add_mail(session)
        record.announced_meeting(session, "grundskola", date(2025, 3, 14), None, None, None, mail)
        session.commit()
        for model in (MemberList, Membership, Meeting):
            assert session.exec(select(model).where(col(model.source_mail_id).is_(None))).all() == []


def test_two_sessions_creating_a_folders_state_at_once_make_one_row(engine: Engine) -> None:
    """Three `mailbot poll` starting together on a new PostgreSQL database each inserted the folder's state, and
    all but one failed on its primary key. Here the second session asks for the state while the first has
    created it and not committed: it waits for the first and gets that row."""
    import threading
    import time as clock

    from registry.db import row_of
    from registry.models import MailboxState

    outcome: list[object] = []

    def second() -> None:
        try:
            with Session(engine) as session:
                state = row_of(session, MailboxState, folder="INBOX/ny")
                state.consecutive_failures += 1
                session.add(state)
                session.commit()
                outcome.append(state.consecutive_failures)
        except Exception as error:  # noqa: BLE001 - the test reports it
            outcome.append(error)

    with Session(engine) as first:
        state = row_of(first, MailboxState, folder="INBOX/ny")
        state.last_uid = 7
        first.add(state)
        first.flush()
        other = threading.Thread(target=second)
        other.start()
        clock.sleep(0.5)  # lets the second session reach the row before this one commits (ordering, not timing)
        first.commit()
    other.join(timeout=60)

    assert outcome == [1]
    with Session(engine) as session:
        rows = session.exec(select(MailboxState).where(MailboxState.folder == "INBOX/ny")).all()
    assert [(r.last_uid, r.consecutive_failures) for r in rows] == [(7, 1)]
