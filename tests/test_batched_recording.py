"""Issue 14 point 3: the mails of a pass are recorded in runs of one transaction each (`intake.batch_mails`,
`intake.batch_seconds`), with the folder's position and the reading counts in the same transactions.

What a run of mails in one transaction must not change: a mail that breaks its own recording goes to review alone;
a pass stopped in the middle keeps exactly the committed runs (a prefix of the UIDs, the position with them) and
leaves no mail counted as a suspect; mails in one run see what the mails before them recorded (a member list);
and a command that waits for SQLite's write lock gets it while a long pass goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from test_reader_budget import small_mail
from test_reexamine import NEW, mail, skis_list

from mailbot.intake import Intake, PassReport, _Unit
from mailbot.reader import InProcessReader, read_mail
from mailbot.settings import IntakeSettings, Settings
from mailbot.sources import RawMail
from registry.config import load_registry
from registry.db import open_registry, waiting_marker
from registry.models import InboundMail, MailboxState
from registry.models_ops import MailAttempt
from registry.paths import config_dir

TZ = ZoneInfo("Europe/Stockholm")
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def raw_mails(raws: list[bytes]) -> list[RawMail]:
    return [RawMail(folder="INBOX", uidvalidity=1, uid=uid, raw=raw, size=len(raw), internal_date=None, flags=())
            for uid, raw in enumerate(raws, start=1)]  # fmt: skip


@pytest.fixture
def intake(database_url: str) -> Iterator[Intake]:
    registry = load_registry(config_dir())
    engine = open_registry(database_url, registry)
    settings = Settings(intake=IntakeSettings(batch_mails=3, batch_seconds=30))
    made = Intake(engine=engine, settings=settings, registry=registry, tz=TZ)
    made._reader = InProcessReader()
    yield made
    engine.dispose()


def recorded_uids(intake: Intake) -> list[int]:
    with Session(intake.engine) as session:
        return sorted(session.exec(select(InboundMail.uid)).all())


def position(intake: Intake) -> int:
    with Session(intake.engine) as session:
        state = session.get(MailboxState, "INBOX")
        return state.last_uid if state else 0


def attempt_rows(intake: Intake) -> int:
    with Session(intake.engine) as session:
        return len(session.exec(select(MailAttempt)).all())


def test_a_mail_that_breaks_its_own_recording_goes_to_review_and_the_rest_of_its_run_is_recorded(
    intake: Intake,
) -> None:
    secretary = "Johan Lindberg <johan.lindberg@falkoping.se>"
    raws = [mail(secretary, "Förteckning SKIS 2025", skis_list(True), NOW - timedelta(days=3), "list-1"),
            small_mail(2), small_mail(3)]  # fmt: skip

    def broken_receipt(session, mail, parsed, understanding, now):  # type: ignore[no-untyped-def]
        raise ValueError("a receipt template that cannot be rendered")

    intake.on_recorded = broken_receipt
    report = PassReport(folder="INBOX")
    statuses = list(intake.record_mails(raw_mails(raws), 1, NOW, report))

    assert statuses[0] == "review" and report.new == 3
    with Session(intake.engine) as session:
        broken = session.exec(select(InboundMail).where(InboundMail.uid == 1)).one()
        assert broken.reason is not None and "internal error while processing: ValueError" in broken.reason
        assert broken.raw == raws[0], "kept verbatim"
        others = session.exec(select(InboundMail).where(InboundMail.uid != 1)).all()
        assert sorted(m.uid for m in others) == [2, 3]
        lists = session.exec(text("SELECT count(*) FROM member_list")).scalar()  # type: ignore[call-overload]
        assert lists == 0, "the broken mail's facts were undone with it"
    assert position(intake) == 3 and attempt_rows(intake) == 0


def test_a_pass_stopped_mid_run_keeps_exactly_the_committed_runs_and_no_suspects(intake: Intake) -> None:
    raws = [small_mail(n) for n in range(1, 9)]
    statuses = intake.record_mails(raw_mails(raws), 1, NOW, PassReport(folder="INBOX"))
    for _ in range(5):  # runs of 3: mails 1-3 committed, 4-5 recorded in the open transaction
        next(statuses)
    statuses.close()  # the consumer stops, as a pass does when its lease is lost

    assert recorded_uids(intake) == [1, 2, 3], "the committed run, not the open one"
    assert position(intake) == 3, "the position moved with the committed mails only"
    assert attempt_rows(intake) == 0, "a stopped pass leaves no mail counted as cut short by a death"

    report = PassReport(folder="INBOX")
    rest = raw_mails(raws)[3:]
    assert len(list(intake.record_mails(rest, 1, NOW, report))) == 5
    assert recorded_uids(intake) == list(range(1, 9)) and report.new == 5 and position(intake) == 8


def test_a_death_in_a_run_makes_its_unrecorded_mails_suspects_that_are_read_alone(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = [small_mail(n) for n in range(1, 6)]
    statuses = intake.record_mails(raw_mails(raws), 1, NOW, PassReport(folder="INBOX"))
    next(statuses)
    # A death: the open transaction is lost and nothing of ours gets to clean up (SIGKILL is tested end to end in
    # test_reader_budget.py and test_crash_safety.py).
    monkeypatch.setattr(_Unit, "_forget_counts", lambda self: None)
    statuses.close()
    monkeypatch.undo()
    with Session(intake.engine) as session:
        counted = {row.uid: row.attempts for row in session.exec(select(MailAttempt)).all()}
    assert counted == {1: 1, 2: 1, 3: 1}, "the run's readings were counted before any of them started"

    report = PassReport(folder="INBOX")
    list(intake.record_mails(raw_mails(raws), 1, NOW, report))
    assert report.new == 5 and recorded_uids(intake) == [1, 2, 3, 4, 5]
    assert attempt_rows(intake) == 0


def test_a_mail_sees_the_member_list_recorded_before_it_in_the_same_run(intake: Intake) -> None:
    secretary = "Johan Lindberg <johan.lindberg@falkoping.se>"
    minutes_day = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
    raws = [
        mail(secretary, "Förteckning SKIS 2025", skis_list(True), datetime(2025, 3, 3, 8, 0, tzinfo=UTC), "list-1"),
        mail(f"{NEW[0]} <{NEW[1]}>", "Minnesanteckningar SKIS 2025-03-14",
             "Minnesanteckningar SKIS 2025-03-14\r\n\r\nNärvarande: Nils Holm (Hjo), Anna Svensson (Skövde)\r\n\r\n"
             "§ 1 Mötets öppnande", minutes_day, "minutes-1"),
    ]  # fmt: skip
    statuses = list(intake.record_mails(raw_mails(raws), 1, minutes_day + timedelta(hours=1), PassReport("INBOX")))
    assert statuses == ["registered", "registered"], "the new member's minutes are registered in the same run"


def test_a_writer_waiting_for_sqlite_gets_the_lock_during_a_long_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The intake's open transaction holds SQLite's write lock; a command that waits for it says so (the marker)
    and the intake leaves the lock to it at its next commit, long before the pass ends."""
    registry = load_registry(config_dir())
    engine = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite3'}", registry)
    # Runs committed by time only; without the marker the next mail would take the lock again at once, and the
    # command would wait until the pass ends.
    settings = Settings(intake=IntakeSettings(batch_mails=10_000, batch_seconds=0.1))
    # Each mail's recording takes a moment inside the transaction, and the readings are all done before (as when
    # the reader's workers are ahead of the main process): the lock is free only when the intake leaves it free.
    intake = SlowIntake(engine=engine, settings=settings, registry=registry, tz=TZ)
    intake._reader = ReadAhead()
    marker = waiting_marker(engine)
    assert marker is not None and marker.name == "registry.sqlite3-waiting"
    raws = raw_mails([small_mail(n) for n in range(1, 151)])
    order: list[str] = []
    started = threading.Event()

    def command() -> None:
        started.wait(30)
        with engine.begin() as connection:  # what `registry forget` or the lease's renewal does
            connection.execute(text("UPDATE mailbox_state SET consecutive_failures = 0"))
        order.append(f"command after {len(recorded_uids_fast(engine))} mails")

    other = threading.Thread(target=command)
    other.start()
    try:
        for number, _status in enumerate(intake.record_mails(raws, 1, NOW, PassReport(folder="INBOX")), start=1):
            if number == 2:
                started.set()
        order.append("pass done")
    finally:
        other.join(60)
        engine.dispose()
    assert order[-1] == "pass done" and order[0].startswith("command after"), order
    # It began to wait after mail 2; the next commit (every 0.1 s, 5 mails) leaves it the lock. Without that, it
    # could get the lock only by chance in a gap of microseconds (seen: after 62 of 80 mails).
    assert int(order[0].split()[2]) < 25, f"the command waited for most of the pass: {order}"
    assert marker.exists(), "the waiting command left its mark"


class SlowIntake(Intake):
    """Each mail's recording takes 20 ms inside the open transaction (a registered mail's facts and receipt)."""

    def _recorded(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        return super()._recorded(*args, **kwargs)


class ReadAhead(InProcessReader):
    """Reads every job before the first is recorded (the in-process reader, all at once)."""

    def read_many(self, items, settle=None):  # type: ignore[no-untyped-def]
        done = [(tag, read_mail(job) if job is not None else None) for tag, job in items]
        yield from done


def recorded_uids_fast(engine) -> list[int]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT uid FROM inbound_mail")).scalars())
